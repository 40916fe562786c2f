//! The identity the server gives a new object: the random suffix of a `generateName` and the
//! `metadata.uid` (upstream's `names.SimpleNameGenerator` and `uuid.NewUUID`).

use rand::Rng;

/// The random suffix upstream appends to `generateName`: 5 characters from an alphabet
/// without vowels or look-alikes.
pub fn name_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

/// A new `metadata.uid` (a random UUID).
pub fn new_uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_use_the_upstream_alphabet() {
        for _ in 0..100 {
            let s = name_suffix();
            assert_eq!(s.len(), 5);
            assert!(s.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
        }
    }
}
