//! Deployment, ReplicaSet and DaemonSet defaults (`pkg/apis/apps/v1/defaults.go`).

use super::pod;
use crate::admission::json::{self, default, default_str};
use serde_json::{json, Value};

fn template(spec: &mut Value) {
    if let Some(t) = json::ensure_obj(spec, "template") {
        pod::template(t);
    }
}

pub fn deployment(obj: &mut Value) {
    let Some(spec) = json::ensure_obj(obj, "spec") else { return };
    default(spec, "replicas", json!(1));
    if let Some(strategy) = json::ensure_obj(spec, "strategy") {
        default_str(strategy, "type", "RollingUpdate");
        if json::s(strategy, "type") == "RollingUpdate" {
            if let Some(ru) = json::ensure_obj(strategy, "rollingUpdate") {
                default(ru, "maxUnavailable", json!("25%"));
                default(ru, "maxSurge", json!("25%"));
            }
        }
    }
    default(spec, "revisionHistoryLimit", json!(10));
    default(spec, "progressDeadlineSeconds", json!(600));
    template(spec);
}

pub fn replica_set(obj: &mut Value) {
    let Some(spec) = json::ensure_obj(obj, "spec") else { return };
    default(spec, "replicas", json!(1));
    template(spec);
}

pub fn daemon_set(obj: &mut Value) {
    let Some(spec) = json::ensure_obj(obj, "spec") else { return };
    if let Some(strategy) = json::ensure_obj(spec, "updateStrategy") {
        default_str(strategy, "type", "RollingUpdate");
        if json::s(strategy, "type") == "RollingUpdate" {
            if let Some(ru) = json::ensure_obj(strategy, "rollingUpdate") {
                default(ru, "maxUnavailable", json!(1));
                default(ru, "maxSurge", json!(0));
            }
        }
    }
    default(spec, "revisionHistoryLimit", json!(10));
    template(spec);
}
