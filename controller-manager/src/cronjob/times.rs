//! When a CronJob runs (upstream `cronjob/utils.go`: `mostRecentScheduleTime`,
//! `nextScheduleTime`, `nextScheduleTimeDuration`): the latest missed start time, how many were
//! missed, and how long to wait for the next one.

use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use super::schedule::Schedule;

/// Upstream's `nextScheduleDelta`: wake up a little after the scheduled time.
const NEXT_SCHEDULE_DELTA: Duration = Duration::from_millis(100);

/// The inputs the timing depends on.
pub struct Timing<'a> {
    pub schedule: &'a Schedule,
    pub tz: &'a TimeZone,
    pub created: Timestamp,
    pub last_schedule: Option<Timestamp>,
    pub starting_deadline_seconds: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missed {
    /// Where the search started (last schedule, creation, or the starting deadline).
    pub earliest: Timestamp,
    /// The latest start time at or before now that has not run.
    pub most_recent: Option<Timestamp>,
    /// How many start times were missed (an estimate from the schedule's interval, as upstream).
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimesError {
    #[error("time difference between two schedules is less than 1 second")]
    TooClose,
}

impl Timing<'_> {
    fn next(&self, t: Timestamp) -> Option<Timestamp> {
        self.schedule.next_after(t, self.tz)
    }

    /// Missed start times up to `now` (the starting deadline narrows the search if asked).
    pub fn missed(&self, now: Timestamp, with_deadline: bool) -> Result<Missed, TimesError> {
        let mut earliest = self.last_schedule.unwrap_or(self.created);
        if let (true, Some(sd)) = (with_deadline, self.starting_deadline_seconds) {
            let deadline = now.checked_sub(SignedDuration::from_secs(sd)).unwrap_or(now);
            if deadline > earliest {
                earliest = deadline;
            }
        }
        let none = Missed { earliest, most_recent: None, count: 0 };
        let Some(t1) = self.next(earliest).filter(|t1| *t1 <= now) else { return Ok(none) };
        let Some(t2) = self.next(t1).filter(|t2| *t2 <= now) else {
            return Ok(Missed { earliest, most_recent: Some(t1), count: 1 });
        };
        let interval = t2.as_second() - t1.as_second();
        if interval < 1 {
            return Err(TimesError::TooClose);
        }
        let count = (now.as_second() - t1.as_second()) / interval + 1;
        Ok(Missed { earliest, most_recent: Some(self.latest_at_or_before(t1, interval, now)), count })
    }

    /// The last start time in `[t1, now]`, searching back from `now` in growing windows so
    /// that long outages cost little.
    fn latest_at_or_before(&self, t1: Timestamp, interval: i64, now: Timestamp) -> Timestamp {
        let mut window = interval.saturating_mul(2);
        loop {
            let from = Timestamp::from_second(now.as_second().saturating_sub(window)).unwrap_or(t1);
            let start = if from <= t1 { t1 } else { from };
            let mut latest = None;
            let mut t = if start == t1 { Some(t1) } else { self.next(start) };
            while let Some(cur) = t.filter(|c| *c <= now) {
                latest = Some(cur);
                t = self.next(cur);
            }
            match latest {
                Some(l) => return l,
                None if start == t1 => return t1,
                None => window = window.saturating_mul(4),
            }
        }
    }

    /// How long until the next start time after the last one that happened or was missed.
    pub fn requeue_after(&self, now: Timestamp) -> Option<Duration> {
        let missed = self.missed(now, false).ok()?;
        let base = missed.most_recent.unwrap_or(missed.earliest);
        let next = self.next(base)?;
        let wait = Duration::try_from(now.duration_until(next)).unwrap_or(Duration::ZERO);
        Some(wait + NEXT_SCHEDULE_DELTA)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn missed_start_times() {
        let hourly = Schedule::parse("0 * * * *").expect("schedule");
        let utc = TimeZone::UTC;
        // (created, last schedule, starting deadline, now, most recent, count)
        type Case = (&'static str, Option<&'static str>, Option<i64>, &'static str, Option<&'static str>, i64);
        let cases: &[Case] = &[
            ("2024-01-01T10:30:00Z", None, None, "2024-01-01T10:59:00Z", None, 0),
            ("2024-01-01T10:30:00Z", None, None, "2024-01-01T11:00:00Z", Some("2024-01-01T11:00:00Z"), 1),
            ("2024-01-01T10:30:00Z", None, None, "2024-01-01T11:30:00Z", Some("2024-01-01T11:00:00Z"), 1),
            ("2024-01-01T10:30:00Z", Some("2024-01-01T11:00:00Z"), None, "2024-01-01T11:30:00Z", None, 0),
            ("2024-01-01T10:30:00Z", None, None, "2024-01-01T14:10:00Z", Some("2024-01-01T14:00:00Z"), 4),
            // Days of outage: still the latest time, and the count exceeds 100.
            ("2024-01-01T10:30:00Z", None, None, "2024-01-08T10:10:00Z", Some("2024-01-08T10:00:00Z"), 168),
            // A starting deadline of 10 minutes hides older missed times.
            ("2024-01-01T10:30:00Z", None, Some(600), "2024-01-01T14:20:00Z", None, 0),
            ("2024-01-01T10:30:00Z", None, Some(600), "2024-01-01T14:05:00Z", Some("2024-01-01T14:00:00Z"), 1),
        ];
        for (created, last, sd, now, want, count) in cases {
            let timing = Timing {
                schedule: &hourly,
                tz: &utc,
                created: ts(created),
                last_schedule: last.map(ts),
                starting_deadline_seconds: *sd,
            };
            let got = timing.missed(ts(now), true).expect("missed");
            assert_eq!(
                (got.most_recent, got.count),
                (want.map(ts), *count),
                "created {created} last {last:?} now {now}"
            );
        }
    }

    #[test]
    fn irregular_schedule_after_long_outage() {
        // Runs on the 1st and 2nd: consecutive runs are a day apart, then a month.
        let sched = Schedule::parse("0 0 1,2 * *").expect("schedule");
        let timing = Timing {
            schedule: &sched,
            tz: &TimeZone::UTC,
            created: ts("2023-01-01T12:00:00Z"),
            last_schedule: None,
            starting_deadline_seconds: None,
        };
        let got = timing.missed(ts("2024-03-20T00:00:00Z"), false).expect("missed");
        assert_eq!(got.most_recent, Some(ts("2024-03-02T00:00:00Z")));
    }

    #[test]
    fn requeue_waits_for_the_next_start() {
        let every_minute = Schedule::parse("*/1 * * * *").expect("schedule");
        let timing = Timing {
            schedule: &every_minute,
            tz: &TimeZone::UTC,
            created: ts("2024-01-01T10:00:30Z"),
            last_schedule: None,
            starting_deadline_seconds: None,
        };
        assert_eq!(timing.requeue_after(ts("2024-01-01T10:00:40Z")), Some(Duration::from_millis(20_100)));
        let late = Timing { last_schedule: Some(ts("2024-01-01T10:01:00Z")), ..timing };
        assert_eq!(late.requeue_after(ts("2024-01-01T10:01:00.5Z")), Some(Duration::from_millis(59_600)));
    }
}
