//! Data-driven tests of cron parsing and next-time computation (cases from robfig/cron's
//! `spec_test.go` where they carry over, including New York's DST transitions).

use super::*;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap_or_else(|e| panic!("bad timestamp {s}: {e}"))
}

#[test]
fn next_times() {
    // (schedule, time zone, after, expected next)
    let cases: &[(&str, &str, &str, Option<&str>)] = &[
        ("*/1 * * * *", "UTC", "2024-01-01T00:00:30Z", Some("2024-01-01T00:01:00Z")),
        ("* * * * *", "UTC", "2024-01-01T00:01:00Z", Some("2024-01-01T00:02:00Z")),
        ("*/15 * * * *", "UTC", "2024-01-01T00:16:00Z", Some("2024-01-01T00:30:00Z")),
        ("5/20 * * * *", "UTC", "2024-01-01T00:26:00Z", Some("2024-01-01T00:45:00Z")),
        ("0 9-17/4 * * *", "UTC", "2024-01-01T10:00:00Z", Some("2024-01-01T13:00:00Z")),
        ("0 0 * * mon-fri", "UTC", "2024-01-05T12:00:00Z", Some("2024-01-08T00:00:00Z")), // Fri → Mon
        ("30 8 1,15 * *", "UTC", "2024-01-01T09:00:00Z", Some("2024-01-15T08:30:00Z")),
        ("0 0 1 JAN,jul *", "UTC", "2024-02-01T00:00:00Z", Some("2024-07-01T00:00:00Z")),
        // Both day fields restricted: either matches (the 13th, or any Friday).
        ("0 0 13 * 5", "UTC", "2024-01-01T00:00:00Z", Some("2024-01-05T00:00:00Z")),
        // Day-of-week `*` : day of month alone decides.
        ("0 0 31 * *", "UTC", "2024-04-01T00:00:00Z", Some("2024-05-31T00:00:00Z")),
        ("0 0 29 2 *", "UTC", "2024-03-01T00:00:00Z", Some("2028-02-29T00:00:00Z")),
        ("0 0 30 2 *", "UTC", "2024-01-01T00:00:00Z", None),
        ("@hourly", "UTC", "2024-01-01T00:00:00Z", Some("2024-01-01T01:00:00Z")),
        ("@daily", "UTC", "2024-01-01T00:00:00Z", Some("2024-01-02T00:00:00Z")),
        ("@weekly", "UTC", "2024-01-01T00:00:00Z", Some("2024-01-07T00:00:00Z")),
        ("@monthly", "UTC", "2024-01-15T00:00:00Z", Some("2024-02-01T00:00:00Z")),
        ("@yearly", "UTC", "2024-01-15T00:00:00Z", Some("2025-01-01T00:00:00Z")),
        ("@annually", "UTC", "2024-01-15T00:00:00Z", Some("2025-01-01T00:00:00Z")),
        // Time zones: midnight in Tokyo is 15:00 UTC the day before.
        ("0 0 * * *", "Asia/Tokyo", "2024-01-01T00:00:00Z", Some("2024-01-01T15:00:00Z")),
        ("0 9 * * *", "Asia/Kolkata", "2024-01-01T00:00:00Z", Some("2024-01-01T03:30:00Z")),
        // New York springs forward 2012-03-11 02:00 EST → 03:00 EDT.
        ("0 * * * *", "America/New_York", "2012-03-11T05:00:00Z", Some("2012-03-11T06:00:00Z")), // 01:00 EST
        ("0 * * * *", "America/New_York", "2012-03-11T06:00:00Z", Some("2012-03-11T07:00:00Z")), // 03:00 EDT
        ("0 1 * * *", "America/New_York", "2012-03-11T05:00:00Z", Some("2012-03-11T06:00:00Z")),
        // 02:00 does not exist that day: the next 02:00 is the day after.
        ("0 2 * * *", "America/New_York", "2012-03-11T05:00:00Z", Some("2012-03-12T06:00:00Z")),
        ("30 2 11 3 *", "America/New_York", "2012-03-11T05:00:00Z", Some("2013-03-11T06:30:00Z")),
        // New York falls back 2012-11-04 02:00 EDT → 01:00 EST: 01:xx happens twice.
        ("30 2 4 11 *", "America/New_York", "2012-11-04T04:00:00Z", Some("2012-11-04T07:30:00Z")),
        ("30 1 4 11 *", "America/New_York", "2012-11-04T05:45:00Z", Some("2012-11-04T06:30:00Z")),
        ("0 * * * *", "America/New_York", "2012-11-04T04:00:00Z", Some("2012-11-04T05:00:00Z")), // 01:00 EDT
        ("0 * * * *", "America/New_York", "2012-11-04T05:00:00Z", Some("2012-11-04T06:00:00Z")), // 01:00 EST
        ("0 * * * *", "America/New_York", "2012-11-04T06:00:00Z", Some("2012-11-04T07:00:00Z")), // 02:00 EST
        ("0 1 * * *", "America/New_York", "2012-11-04T05:00:00Z", Some("2012-11-04T06:00:00Z")),
        ("0 1 * * *", "America/New_York", "2012-11-04T06:00:00Z", Some("2012-11-05T06:00:00Z")),
    ];
    for (spec, zone, after, want) in cases {
        let tz = TimeZone::get(zone).unwrap_or_else(|e| panic!("zone {zone}: {e}"));
        let sched = Schedule::parse(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
        let got = sched.next_after(ts(after), &tz);
        assert_eq!(got, want.map(ts), "{spec} in {zone} after {after}");
    }
}

#[test]
fn parse_errors() {
    for bad in [
        "",
        "* * * *",
        "* * * * * *",
        "60 * * * *",
        "* 24 * * *",
        "* * 0 * *",
        "* * * 13 *",
        "* * * * 7",
        "5-1 * * * *",
        "*/0 * * * *",
        "a * * * *",
        "* * * foo *",
        "@every 5m",
        "@reboot",
        "TZ=UTC * * * * *",
        "CRON_TZ=Europe/Paris 0 0 * * *",
    ] {
        assert!(Schedule::parse(bad).is_err(), "{bad:?} should not parse");
    }
}

#[test]
fn equivalent_spellings() {
    let same = [
        ("0 0 * * sun", "0 0 * * 0"),
        ("0 0 * * SUN", "0 0 ? * 0"),
        ("0 0 1 jan *", "0 0 1 1 *"),
        ("@midnight", "0 0 * * *"),
        ("0-59/30 * * * *", "0,30 * * * *"),
        ("*/1 * * * *", "* * * * *"),
        ("1/4294967295 * * * *", "1 * * * *"),
    ];
    for (a, b) in same {
        assert_eq!(Schedule::parse(a), Schedule::parse(b), "{a} vs {b}");
    }
}
