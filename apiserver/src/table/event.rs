//! The core/v1 Event row (upstream `printEvent`): last/first seen with the eventTime and series
//! fallbacks, `kind/name` object, source, count.

use super::age::{since, time_of, Instant};
use super::json::{at, i, int_at, present, s, str_at};
use serde_json::Value;

fn first_non_empty<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() {
        b
    } else {
        a
    }
}

/// Upstream `formatEventSource`: "component" or "component, host".
fn source(ev: &Value) -> String {
    let component = first_non_empty(str_at(ev, &["source", "component"]), str_at(ev, &["reportingComponent"]));
    let instance = first_non_empty(str_at(ev, &["source", "host"]), str_at(ev, &["reportingInstance"]));
    if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    }
}

pub fn row(ev: &Value, now: Instant) -> Vec<Value> {
    let first_ts = time_of(at(ev, &["firstTimestamp"]));
    let first = match first_ts {
        Some(t) => since(Some(t), now),
        None => since(time_of(at(ev, &["eventTime"])), now),
    };
    let mut last = match time_of(at(ev, &["lastTimestamp"])) {
        Some(t) => since(Some(t), now),
        None => first.clone(),
    };
    let mut count = int_at(ev, &["count"]);
    if let Some(series) = present(ev, &["series"]) {
        last = since(time_of(at(series, &["lastObservedTime"])), now);
        count = int_at(series, &["count"]);
    } else if count == 0 {
        count = 1;
    }
    let kind = str_at(ev, &["involvedObject", "kind"]).to_lowercase();
    let object_name = str_at(ev, &["involvedObject", "name"]);
    let target = if object_name.is_empty() { kind } else { format!("{kind}/{object_name}") };
    vec![
        s(last),
        s(str_at(ev, &["type"])),
        s(str_at(ev, &["reason"])),
        s(target),
        s(str_at(ev, &["involvedObject", "fieldPath"])),
        s(source(ev)),
        s(str_at(ev, &["message"]).trim()),
        s(first),
        i(count),
        s(str_at(ev, &["metadata", "name"])),
    ]
}
