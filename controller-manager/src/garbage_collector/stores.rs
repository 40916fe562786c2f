//! The shared informers of the kinds in the graph, and their changes as graph nodes.

use client_runtime::{Change, Informers};
use futures::stream::BoxStream;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Resource;

use super::graph::{Item, Kind};

/// A change of an object in the graph.
pub enum GraphChange {
    Applied(Item),
    Deleted(Item),
}

fn graph_change<K: Resource>(kind: Kind, change: Change<K>) -> Option<GraphChange> {
    match change {
        Change::Applied { object, .. } => Item::new(kind, object.meta()).map(GraphChange::Applied),
        Change::Deleted(object) => Item::new(kind, object.meta()).map(GraphChange::Deleted),
    }
}

macro_rules! subscribe {
    ($($kind:ident),* $(,)?) => {
        /// Subscribes to the shared informers of every kind in the graph: one stream of their
        /// changes as graph nodes.
        pub fn subscribe(inf: &mut Informers) -> BoxStream<'static, GraphChange> {
            let streams: Vec<BoxStream<'static, GraphChange>> = vec![$(
                inf.subscribe::<$kind>()
                    .filter_map(|c: Change<$kind>| async move { graph_change(Kind::$kind, c) })
                    .boxed(),
            )*];
            futures::stream::select_all(streams).boxed()
        }
    };
}

subscribe!(Pod, ReplicaSet, Deployment, DaemonSet, Job, CronJob, Service, EndpointSlice);
