//! The shared caches of the kinds in the graph, and their change streams as graph nodes.

use std::sync::Arc;

use futures::stream::BoxStream;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::Resource;

use super::graph::{Item, Kind};
use crate::runtime::Informers;

fn object_ref<K: Resource<DynamicType = ()>>(item: &Item) -> ObjectRef<K> {
    let r = ObjectRef::new(&item.name);
    match item.namespace() {
        Some(ns) => r.within(ns),
        None => r,
    }
}

macro_rules! stores {
    ($($field:ident: $kind:ident),* $(,)?) => {
        #[derive(Clone)]
        pub struct Stores {
            $($field: Store<$kind>,)*
        }

        impl Stores {
            /// Registers the shared caches; returns them and one stream of every change as a graph node.
            pub fn register(inf: &mut Informers) -> (Stores, BoxStream<'static, Item>) {
                let stores = Stores { $($field: inf.store::<$kind>(),)* };
                let streams: Vec<BoxStream<'static, Item>> = vec![$(
                    inf.subscribe::<$kind>()
                        .filter_map(|o: Arc<$kind>| async move { Item::new(Kind::$kind, o.meta()) })
                        .boxed(),
                )*];
                (stores, futures::stream::select_all(streams).boxed())
            }

            /// Whether the object of `item` (same uid) is still in its cache.
            pub fn contains(&self, item: &Item) -> bool {
                let uid = match item.kind {
                    $(Kind::$kind => self.$field.get(&object_ref(item)).and_then(|o| o.meta().uid.clone()),)*
                };
                uid.as_deref() == Some(item.uid())
            }

            /// Resolves once every cache has listed.
            pub async fn wait_until_ready(&self) {
                $(let _ = self.$field.wait_until_ready().await;)*
            }
        }
    };
}

stores! {
    pods: Pod,
    replica_sets: ReplicaSet,
    deployments: Deployment,
    daemon_sets: DaemonSet,
    jobs: Job,
    cron_jobs: CronJob,
    services: Service,
    endpoint_slices: EndpointSlice,
}
