//! Object-independent helpers: timestamps, generated names, uids.

use rand::Rng;

/// Now as RFC 3339 in UTC with whole seconds, as Kubernetes writes `metav1.Time`.
pub fn now_rfc3339() -> String {
    rfc3339(jiff::Timestamp::now())
}

pub fn rfc3339(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Now plus `secs` seconds, RFC 3339.
pub fn now_plus_rfc3339(secs: i64) -> String {
    let t = jiff::Timestamp::now();
    let t = t.checked_add(jiff::SignedDuration::from_secs(secs)).unwrap_or(t);
    rfc3339(t)
}

/// The random suffix upstream appends to `generateName`: 5 characters from an alphabet
/// without vowels or look-alikes.
pub fn name_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

pub fn new_uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_whole_seconds_utc() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.ends_with('Z'));
        assert_eq!(&t[10..11], "T");
    }

    #[test]
    fn suffixes_use_the_upstream_alphabet() {
        for _ in 0..100 {
            let s = name_suffix();
            assert_eq!(s.len(), 5);
            assert!(s.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
        }
    }
}
