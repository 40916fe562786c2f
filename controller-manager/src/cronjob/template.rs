//! The Job a CronJob starts for one scheduled time (upstream `getJobFromTemplate2`): a
//! deterministic name, so a start time is never run twice, the template's labels and
//! annotations, the scheduled-timestamp annotation and the controller reference.

use jiff::tz::TimeZone;
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::SCHEDULED_TIMESTAMP_ANNOTATION;
use api::owner::controller_ref;

/// `<cronjob>-<minutes since the epoch>`.
pub fn job_name(cj_name: &str, scheduled: Timestamp) -> String {
    format!("{cj_name}-{}", scheduled.as_second().div_euclid(60))
}

/// RFC 3339 in `tz` (`Z` for a zero offset, as Go prints it).
pub fn rfc3339_in(t: Timestamp, tz: &TimeZone) -> String {
    let z = t.to_zoned(tz.clone());
    if z.offset().seconds() == 0 {
        z.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }
}

/// The Job for `scheduled`. The annotation is in the CronJob's zone, UTC without one.
pub fn job_for(cj: &CronJob, scheduled: Timestamp, zone: Option<&TimeZone>) -> Job {
    let template = cj.spec.as_ref().map(|s| s.job_template.clone()).unwrap_or_default();
    let tmeta = template.metadata.unwrap_or_default();
    let mut annotations = tmeta.annotations.unwrap_or_default();
    annotations.insert(SCHEDULED_TIMESTAMP_ANNOTATION.into(), rfc3339_in(scheduled, zone.unwrap_or(&TimeZone::UTC)));
    Job {
        metadata: ObjectMeta {
            name: Some(job_name(cj.metadata.name.as_deref().unwrap_or_default(), scheduled)),
            namespace: cj.metadata.namespace.clone(),
            labels: tmeta.labels,
            annotations: Some(annotations),
            owner_references: Some(vec![controller_ref(cj)]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_timestamps() {
        let t: Timestamp = "2024-01-01T10:05:00Z".parse().expect("ts");
        assert_eq!(job_name("backup", t), format!("backup-{}", 1704103500 / 60));
        assert_eq!(rfc3339_in(t, &TimeZone::UTC), "2024-01-01T10:05:00Z");
        let tokyo = TimeZone::get("Asia/Tokyo").expect("tz");
        assert_eq!(rfc3339_in(t, &tokyo), "2024-01-01T19:05:00+09:00");
        let ny = TimeZone::get("America/New_York").expect("tz");
        assert_eq!(rfc3339_in(t, &ny), "2024-01-01T05:05:00-05:00");
    }
}
