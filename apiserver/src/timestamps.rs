//! Timestamps as Kubernetes writes them (`metav1.Time`: RFC 3339, UTC, whole seconds).

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
}
