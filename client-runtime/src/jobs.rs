//! Job predicates shared by the Job, TTL-after-finished and CronJob controllers (upstream
//! `jobutil.IsJobFinished`).

use k8s_openapi::api::batch::v1::Job;

/// Whether the Job has its terminal condition (`Complete` or `Failed` with status True).
pub fn is_finished(job: &Job) -> bool {
    let conds = job.status.as_ref().and_then(|s| s.conditions.as_deref()).unwrap_or_default();
    conds.iter().any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_true_terminal_condition_finishes_a_job() {
        let job = |conds: serde_json::Value| -> Job {
            serde_json::from_value(serde_json::json!({"metadata": {"name": "j"}, "status": {"conditions": conds}}))
                .expect("job")
        };
        assert!(!is_finished(&job(serde_json::json!([]))));
        assert!(!is_finished(&job(serde_json::json!([{"type": "Complete", "status": "False"}]))));
        assert!(!is_finished(&job(serde_json::json!([{"type": "SuccessCriteriaMet", "status": "True"}]))));
        assert!(is_finished(&job(serde_json::json!([{"type": "Complete", "status": "True"}]))));
        assert!(is_finished(&job(serde_json::json!([{"type": "Failed", "status": "True"}]))));
    }
}
