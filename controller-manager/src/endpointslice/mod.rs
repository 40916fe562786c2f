//! The EndpointSlice controller ("endpointslice"): for every Service with a selector, slices
//! named `<service>-<random>` holding at most [`MAX_ENDPOINTS_PER_SLICE`] endpoints — one per
//! pod with an IP, conditions ready/serving/terminating — grouped by the ports the pods resolve
//! (upstream pkg/controller/endpointslice and k8s.io/endpointslice's reconciler). Slices are
//! owned by their Service (the garbage collector removes them with it) and updated in place
//! ([`packing`]).

pub mod desired;
pub mod packing;

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::{EndpointPort, EndpointSlice};
use kube::api::{Api, DeleteParams, PostParams};
use tracing::{debug, info, warn};

use crate::service_endpoints::{self as pods, trigger, IpFamily};
use client_runtime::{Action, Change, Controller, Informers, ObjectRef, Store};

use crate::Context;
use desired::{CONTROLLER_NAME, MANAGED_BY_LABEL, SERVICE_NAME_LABEL};

/// Upstream's default `--max-endpoints-per-slice`.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;
/// Upstream's `--concurrent-service-endpoint-syncs`.
const WORKERS: u16 = 5;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{action} endpointslice for service {namespace}/{service}: {source}")]
    Write { action: &'static str, namespace: String, service: String, source: kube::Error },
    #[error("service {namespace}/{service}: pods on unknown nodes left out: {pods:?}")]
    NodeNotFound { namespace: String, service: String, pods: Vec<String> },
}

struct State {
    ctx: Arc<Context>,
    pods: Store<Pod>,
    nodes: Store<Node>,
    slices: Store<EndpointSlice>,
}

pub fn controller(inf: &mut Informers, ctx: Arc<Context>) -> BoxFuture<'static, ()> {
    let services = inf.store::<Service>();
    let (pods, nodes, slices) = (inf.store::<Pod>(), inf.store::<Node>(), inf.store::<EndpointSlice>());
    let state = Arc::new(State { ctx, pods, nodes, slices });
    Controller::new("endpointslice", inf)
        .watches(inf, move |c: &Change<Pod>| pods::services_of(&services, c))
        .watches(inf, |c: &Change<EndpointSlice>| service_of(c.object()))
        .workers(WORKERS)
        .run(inf, reconcile, state)
}

/// The Service a slice this controller manages belongs to.
fn service_of(slice: &EndpointSlice) -> Option<ObjectRef<Service>> {
    let labels = slice.metadata.labels.as_ref()?;
    if labels.get(MANAGED_BY_LABEL).map(String::as_str) != Some(CONTROLLER_NAME) {
        return None;
    }
    Some(ObjectRef::new(labels.get(SERVICE_NAME_LABEL)?).within(slice.metadata.namespace.as_deref()?))
}

async fn reconcile(svc: Arc<Service>, state: Arc<State>) -> Result<Action, Error> {
    let ns = svc.metadata.namespace.clone().unwrap_or_default();
    let name = svc.metadata.name.clone().unwrap_or_default();
    {
        if !pods::managed(&svc) {
            return Ok(Action::await_change());
        }
        let selected = pods::selected_pods(&state.pods, &svc);
        let families = pods::service_families(&svc);
        let mut existing: BTreeMap<&str, Vec<EndpointSlice>> = BTreeMap::new();
        let mut plan = packing::Plan::default();
        let this = ObjectRef::<Service>::from_obj(svc.as_ref());
        let mine: Vec<_> = state.slices.state().into_iter().filter(|s| service_of(s) == Some(this.clone())).collect();
        let previous = mine.iter().filter_map(|s| trigger_annotation(s)).max();
        for slice in mine {
            let family = families.iter().find(|f| f.address_type() == slice.address_type);
            match family {
                // Slices of another Service of the same name, or of a family no longer served, go.
                Some(f) if owned_by(&slice, &svc) => {
                    existing.entry(f.address_type()).or_default().push((*slice).clone())
                }
                _ => plan.delete.push((*slice).clone()),
            }
        }
        let mut missing_nodes = Vec::new();
        for family in &families {
            let groups = desired_groups(&svc, &selected, &state.nodes, *family, &mut missing_nodes);
            let template = Template { svc: &svc, family: *family };
            let slices = existing.remove(family.address_type()).unwrap_or_default();
            let part = packing::plan(&slices, groups, &template, MAX_ENDPOINTS_PER_SLICE);
            plan.create.extend(part.create);
            plan.update.extend(part.update);
            plan.delete.extend(part.delete);
        }
        let at = trigger::last_change(&svc, &selected, previous.as_deref(), jiff::Timestamp::now());
        write(&state, &svc, &ns, &name, plan, &at).await?;
        if !missing_nodes.is_empty() {
            return Err(Error::NodeNotFound { namespace: ns, service: name, pods: missing_nodes });
        }
        Ok(Action::await_change())
    }
}

fn trigger_annotation(slice: &EndpointSlice) -> Option<String> {
    slice.metadata.annotations.as_ref()?.get(trigger::ANNOTATION).cloned()
}

fn owned_by(slice: &EndpointSlice, svc: &Service) -> bool {
    let refs = slice.metadata.owner_references.iter().flatten();
    refs.into_iter().any(|o| Some(&o.uid) == svc.metadata.uid.as_ref() && o.kind == "Service" && o.api_version == "v1")
}

/// The endpoints of `family` grouped by resolved ports. Pods on a node the cache does not know
/// are left out (and reported, so the Service is retried), unless not-ready addresses are
/// published anyway.
fn desired_groups(
    svc: &Service,
    selected: &[Arc<Pod>],
    nodes: &Store<Node>,
    family: IpFamily,
    missing_nodes: &mut Vec<String>,
) -> BTreeMap<desired::PortsKey, packing::Group> {
    let mut groups: BTreeMap<desired::PortsKey, packing::Group> = BTreeMap::new();
    for pod in selected {
        if !pods::should_be_in_endpoints(pod, true) {
            continue;
        }
        let node_name = pod.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default();
        let node = nodes.get(&ObjectRef::new(&node_name));
        if node.is_none() && !pods::publish_not_ready(svc) {
            let pod_name = pod.metadata.name.clone().unwrap_or_default();
            if !missing_nodes.contains(&pod_name) {
                missing_nodes.push(pod_name);
            }
            continue;
        }
        let ports = desired::ports(svc, pod);
        let group = groups.entry(desired::ports_key(&ports)).or_default();
        group.ports = ports;
        let ep = desired::endpoint(pod, node.as_deref(), svc, family);
        if !ep.addresses.is_empty() {
            group.endpoints.insert(desired::endpoint_key(&ep), ep);
        }
    }
    groups
}

struct Template<'a> {
    svc: &'a Service,
    family: IpFamily,
}

impl packing::SliceTemplate for Template<'_> {
    fn new_slice(&self, ports: &[EndpointPort]) -> EndpointSlice {
        let svc_name = self.svc.metadata.name.clone().unwrap_or_default();
        let mut slice = EndpointSlice {
            address_type: self.family.address_type().to_string(),
            ports: Some(ports.to_vec()),
            endpoints: Vec::new(),
            ..Default::default()
        };
        let meta = &mut slice.metadata;
        // Upstream drops the dash when it would make the prefix an invalid name.
        meta.generate_name = Some(if svc_name.len() < 253 { format!("{svc_name}-") } else { svc_name });
        meta.namespace = self.svc.metadata.namespace.clone();
        meta.owner_references = Some(vec![api::owner::controller_ref(self.svc)]);
        meta.labels = Some(desired::labels(None, self.svc).0);
        slice
    }

    fn labels(&self, slice: &EndpointSlice) -> (BTreeMap<String, String>, bool) {
        desired::labels(slice.metadata.labels.as_ref(), self.svc)
    }
}

async fn write(state: &State, svc: &Service, ns: &str, name: &str, plan: packing::Plan, at: &str) -> Result<(), Error> {
    let api: Api<EndpointSlice> = Api::namespaced(state.ctx.client.clone(), ns);
    let err = |action: &'static str| {
        move |source| Error::Write { action, namespace: ns.to_string(), service: name.to_string(), source }
    };
    let stamp = |mut slice: EndpointSlice| {
        slice.metadata.annotations.get_or_insert_with(Default::default).insert(trigger::ANNOTATION.into(), at.into());
        slice
    };
    // No new slices for a Service on its way out: they would race the garbage collector.
    if svc.metadata.deletion_timestamp.is_none() {
        for slice in plan.create {
            match api.create(&PostParams::default(), &stamp(slice)).await {
                Ok(created) => info!(slice = created.metadata.name.as_deref().unwrap_or(""), "created endpointslice"),
                Err(kube::Error::Api(e)) if e.code == 403 && e.message.contains("terminat") => {
                    debug!("namespace terminating; not creating endpointslices");
                    return Ok(());
                }
                Err(e) => return Err(err("create")(e)),
            }
        }
    }
    for slice in plan.update {
        let slice_name = slice.metadata.name.clone().unwrap_or_default();
        api.replace(&slice_name, &PostParams::default(), &stamp(slice)).await.map_err(err("update"))?;
        info!(slice = %slice_name, "updated endpointslice");
    }
    for slice in plan.delete {
        let slice_name = slice.metadata.name.clone().unwrap_or_default();
        match api.delete(&slice_name, &DeleteParams::default()).await {
            Ok(_) => info!(slice = %slice_name, "deleted endpointslice"),
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => {
                warn!(slice = %slice_name, error = %e, "deleting endpointslice failed");
                return Err(err("delete")(e));
            }
        }
    }
    Ok(())
}
