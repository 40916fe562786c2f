//! Image garbage collection, as upstream's image GC manager: when the image filesystem's usage
//! reaches `--image-gc-high-threshold` percent, unused images (no container record names them)
//! are removed, least recently used first (never-used ones by when they were first seen), until
//! usage would be at `--image-gc-low-threshold`; under DiskPressure every unused image goes (the
//! eviction manager's reclaim). Then blobs no remaining image or container reaches and unpacked
//! layers no remaining image uses are removed.

use std::collections::HashSet;
use std::time::{Duration, Instant};

/// An image (one manifest digest, whatever references name it) as GC weighs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// `sha256:<manifest digest>`.
    pub digest: String,
    pub size: u64,
    /// When a container last used it (since this agent started).
    pub last_used: Option<Instant>,
    /// When this agent first saw it.
    pub first_seen: Instant,
}

/// How many bytes to free for usage to go down to `low` percent, when it is at `high` percent or
/// more (upstream's `amountToFree`); 0 below `high`, or with `high` at 100 (GC off).
pub fn bytes_to_free(capacity: u64, available: u64, high: u8, low: u8) -> u64 {
    if capacity == 0 || high >= 100 {
        return 0;
    }
    let used = capacity.saturating_sub(available);
    let usage_percent = used.saturating_mul(100) / capacity;
    if usage_percent < u64::from(high) {
        return 0;
    }
    let target_available = capacity / 100 * u64::from(100 - low.min(100));
    target_available.saturating_sub(available)
}

/// The images to remove to free `to_free` bytes: unused ones first seen at least `min_age` before
/// `now` (upstream's ImageMinimumGCAge: a fresh pull waits for its container), least recently used
/// first (those never used by when they were first seen), until their sizes add up to `to_free`.
pub fn select(
    mut candidates: Vec<Candidate>,
    in_use: &HashSet<String>,
    to_free: u64,
    min_age: Duration,
    now: Instant,
) -> Vec<String> {
    if to_free == 0 {
        return Vec::new();
    }
    candidates.retain(|c| !in_use.contains(&c.digest) && now.saturating_duration_since(c.first_seen) >= min_age);
    // Never used (None) sorts before any use; then oldest use, then first seen.
    candidates.sort_by_key(|c| (c.last_used, c.first_seen));
    let mut freed = 0u64;
    let mut out = Vec::new();
    for c in candidates {
        if freed >= to_free {
            break;
        }
        freed = freed.saturating_add(c.size);
        out.push(c.digest);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_amount_to_free_follows_the_thresholds() {
        // 100 bytes, 90 used: above 85 → down to 80 used, i.e. 20 available: 10 to free.
        assert_eq!(bytes_to_free(100_000, 10_000, 85, 80), 10_000);
        assert_eq!(bytes_to_free(100_000, 15_000, 85, 80), 5_000, "at the high threshold GC runs");
        assert_eq!(bytes_to_free(100_000, 16_000, 85, 80), 0, "below the high threshold nothing");
        assert_eq!(bytes_to_free(100_000, 0, 100, 80), 0, "100 turns GC off");
        assert_eq!(bytes_to_free(0, 0, 85, 80), 0);
    }

    #[test]
    fn unused_images_go_least_recently_used_first_until_enough_is_freed() {
        let t0 = Instant::now();
        let at = |s| Some(t0 + Duration::from_secs(s));
        let c = |d: &str, size, last_used, first| Candidate {
            digest: d.into(),
            size,
            last_used,
            first_seen: t0 + Duration::from_secs(first),
        };
        let all = vec![
            c("recent", 50, at(30), 0),
            c("old", 50, at(10), 0),
            c("running", 500, at(5), 0),
            c("never-late", 10, None, 20),
            c("never-early", 10, None, 1),
        ];
        let in_use: HashSet<String> = ["running".to_string()].into();
        let now = t0 + Duration::from_secs(100);
        let pick = |to_free, min_age| select(all.clone(), &in_use, to_free, Duration::from_secs(min_age), now);
        assert_eq!(pick(15, 0), ["never-early", "never-late"]);
        assert_eq!(pick(21, 0), ["never-early", "never-late", "old"]);
        assert_eq!(pick(u64::MAX, 0), ["never-early", "never-late", "old", "recent"]);
        assert!(pick(0, 0).is_empty());
        assert!(!pick(u64::MAX, 0).contains(&"running".to_string()), "an image in use never goes");
        // First seen 80 s ago: younger than a 90 s minimum age, so it stays.
        assert_eq!(pick(u64::MAX, 90), ["never-early", "old", "recent"]);
    }
}
