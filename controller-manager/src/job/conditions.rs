//! Job conditions as upstream 1.33 sets them: the interim `SuccessCriteriaMet`/`FailureTarget`
//! as soon as the outcome is known, the terminal `Complete`/`Failed` once no pod is left
//! running or uncounted; `Suspended` while suspended.

use k8s_openapi::api::batch::v1::JobCondition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

pub const COMPLETE: &str = "Complete";
pub const FAILED: &str = "Failed";
pub const SUCCESS_CRITERIA_MET: &str = "SuccessCriteriaMet";
pub const FAILURE_TARGET: &str = "FailureTarget";
pub const SUSPENDED: &str = "Suspended";

/// Why a Job ends, once known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finish {
    /// `SuccessCriteriaMet` or `FailureTarget`.
    pub interim: &'static str,
    pub reason: String,
    pub message: String,
}

impl Finish {
    pub fn backoff_limit() -> Self {
        Finish {
            interim: FAILURE_TARGET,
            reason: "BackoffLimitExceeded".into(),
            message: "Job has reached the specified backoff limit".into(),
        }
    }
    pub fn deadline() -> Self {
        Finish {
            interim: FAILURE_TARGET,
            reason: "DeadlineExceeded".into(),
            message: "Job was active longer than specified deadline".into(),
        }
    }
    pub fn completions() -> Self {
        Finish {
            interim: SUCCESS_CRITERIA_MET,
            reason: "CompletionsReached".into(),
            message: "Reached expected number of succeeded pods".into(),
        }
    }
    /// The terminal condition type that follows the interim one.
    pub fn terminal(&self) -> &'static str {
        if self.interim == SUCCESS_CRITERIA_MET {
            COMPLETE
        } else {
            FAILED
        }
    }
}

pub fn is_true(conds: &[JobCondition], type_: &str) -> bool {
    conds.iter().any(|c| c.type_ == type_ && c.status == "True")
}

pub use client_runtime::jobs::is_finished;

/// The finish already decided by an earlier sync (interim condition present).
pub fn decided(conds: &[JobCondition]) -> Option<Finish> {
    conds.iter().filter(|c| c.status == "True").find_map(|c| {
        let interim = match c.type_.as_str() {
            SUCCESS_CRITERIA_MET => SUCCESS_CRITERIA_MET,
            FAILURE_TARGET => FAILURE_TARGET,
            _ => return None,
        };
        Some(Finish {
            interim,
            reason: c.reason.clone().unwrap_or_default(),
            message: c.message.clone().unwrap_or_default(),
        })
    })
}

/// Sets condition `type_` to `status`; returns whether anything changed. The transition time
/// moves only when the status does.
pub fn set(conds: &mut Vec<JobCondition>, type_: &str, status: &str, reason: &str, message: &str, now: &Time) -> bool {
    if let Some(c) = conds.iter_mut().find(|c| c.type_ == type_) {
        if c.status == status && c.reason.as_deref() == Some(reason) {
            return false;
        }
        if c.status != status {
            c.last_transition_time = Some(now.clone());
        }
        c.status = status.into();
        c.reason = Some(reason.into());
        c.message = Some(message.into());
        c.last_probe_time = Some(now.clone());
        return true;
    }
    conds.push(JobCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_probe_time: Some(now.clone()),
        last_transition_time: Some(now.clone()),
    });
    true
}
