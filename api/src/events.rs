//! Recording core/v1 Events about objects, as `kubectl describe` shows them (feature `client`).
//!
//! Like client-go's recorder, a repeat of the same (object, type, reason, message) within the
//! series window bumps `count` and `lastTimestamp` of the existing Event instead of creating
//! another. Recording never fails the caller: errors are logged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};

const SERIES_WINDOW: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

type SeriesKey = (String, String, String, EventType, String, String);
/// Event name, count so far, last seen.
type Series = HashMap<SeriesKey, (String, i32, Instant)>;

/// Writes Events for one component (`deployment-controller`, `default-scheduler`, ...).
#[derive(Clone)]
pub struct Recorder {
    client: Client,
    component: String,
    /// The node the component runs on (the kubelet's), for `source.host`.
    host: Option<String>,
    series: Arc<Mutex<Series>>,
}

impl Recorder {
    pub fn new(client: Client, component: impl Into<String>) -> Self {
        Recorder { client, component: component.into(), host: None, series: Arc::new(Mutex::new(HashMap::new())) }
    }

    /// The same recorder, naming `host` as the events' source host (as the kubelet's do).
    pub fn on_host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// Records an event about `object` (which must carry namespace, name, uid and kind).
    pub async fn record(&self, object: &ObjectReference, kind: EventType, reason: &str, message: &str) {
        let ns = object.namespace.clone().unwrap_or_else(|| "default".to_string());
        let name = object.name.clone().unwrap_or_default();
        let key: SeriesKey = (
            ns.clone(),
            object.kind.clone().unwrap_or_default(),
            // One series per object instance and part of it (a container's field path).
            format!(
                "{name}/{}/{}",
                object.uid.as_deref().unwrap_or_default(),
                object.field_path.as_deref().unwrap_or_default()
            ),
            kind,
            reason.to_string(),
            message.to_string(),
        );
        let now = jiff::Timestamp::now();
        let time = Time(now);
        let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
        let existing = {
            let mut series = self.series.lock().unwrap_or_else(|p| p.into_inner());
            series.retain(|_, (_, _, at)| at.elapsed() < SERIES_WINDOW);
            series.get_mut(&key).map(|entry| {
                entry.1 += 1;
                entry.2 = Instant::now();
                (entry.0.clone(), entry.1)
            })
        };
        if let Some((event_name, count)) = existing {
            let patch = serde_json::json!({"count": count, "lastTimestamp": time});
            match api.patch(&event_name, &PatchParams::default(), &Patch::Merge(&patch)).await {
                Ok(_) => return,
                Err(e) => {
                    tracing::debug!(error = %e, event = %event_name, "event series update failed; recording anew")
                }
            }
        }
        let event_name = format!("{name}.{:x}{:04x}", now.as_nanosecond(), rand::random::<u16>());
        let ev = Event {
            metadata: ObjectMeta { name: Some(event_name.clone()), namespace: Some(ns), ..Default::default() },
            involved_object: object.clone(),
            reason: Some(reason.to_string()),
            message: Some(message.to_string()),
            type_: Some(kind.as_str().to_string()),
            count: Some(1),
            first_timestamp: Some(time.clone()),
            last_timestamp: Some(time),
            source: Some(EventSource { component: Some(self.component.clone()), host: self.host.clone() }),
            reporting_component: Some(self.component.clone()),
            reporting_instance: Some(self.host.clone().unwrap_or_else(|| self.component.clone())),
            ..Default::default()
        };
        match api.create(&PostParams::default(), &ev).await {
            Ok(_) => {
                let mut series = self.series.lock().unwrap_or_else(|p| p.into_inner());
                series.insert(key, (event_name, 1, Instant::now()));
            }
            Err(e) => tracing::warn!(error = %e, reason, "could not record event"),
        }
    }
}

/// An ObjectReference to a typed object, for [`Recorder::record`].
pub fn reference<K: kube::Resource<DynamicType = ()>>(obj: &K) -> ObjectReference {
    let meta = obj.meta();
    ObjectReference {
        api_version: Some(K::api_version(&()).to_string()),
        kind: Some(K::kind(&()).to_string()),
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
        field_path: None,
    }
}
