use super::*;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::discovery::v1::EndpointConditions;

struct Template;

impl SliceTemplate for Template {
    fn new_slice(&self, ports: &[EndpointPort]) -> EndpointSlice {
        let mut s = EndpointSlice { address_type: "IPv4".into(), ports: Some(ports.to_vec()), ..Default::default() };
        s.metadata.generate_name = Some("web-".into());
        s.metadata.labels = Some(labels());
        s
    }
    fn labels(&self, slice: &EndpointSlice) -> (BTreeMap<String, String>, bool) {
        (labels(), slice.metadata.labels.as_ref() != Some(&labels()))
    }
}

fn labels() -> BTreeMap<String, String> {
    BTreeMap::from([("kubernetes.io/service-name".to_string(), "web".to_string())])
}

fn port(n: i32) -> EndpointPort {
    EndpointPort { name: Some(String::new()), port: Some(n), protocol: Some("TCP".into()), app_protocol: None }
}

fn ep(i: u32, ready: bool) -> Endpoint {
    Endpoint {
        addresses: vec![format!("10.0.{}.{}", i / 250, i % 250)],
        conditions: Some(EndpointConditions { ready: Some(ready), serving: Some(ready), terminating: Some(false) }),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            name: Some(format!("p{i}")),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn group(ports: &[EndpointPort], ids: impl IntoIterator<Item = u32>) -> BTreeMap<PortsKey, Group> {
    let endpoints = ids.into_iter().map(|i| ep(i, true)).map(|e| (endpoint_key(&e), e)).collect();
    BTreeMap::from([(ports_key(ports), Group { ports: ports.to_vec(), endpoints })])
}

fn slice(name: &str, ports: &[EndpointPort], ids: impl IntoIterator<Item = u32>) -> EndpointSlice {
    let mut s = Template.new_slice(ports);
    s.metadata.name = Some(name.into());
    s.metadata.generate_name = None;
    s.metadata.resource_version = Some("1".into());
    s.endpoints = ids.into_iter().map(|i| ep(i, true)).collect();
    s
}

fn names(v: &[EndpointSlice]) -> Vec<&str> {
    v.iter().map(|s| s.metadata.name.as_deref().unwrap_or("<new>")).collect()
}

#[test]
fn new_service_packs_into_slices_of_at_most_max() {
    let p = plan(&[], group(&[port(80)], 0..250), &Template, 100);
    assert!(p.update.is_empty() && p.delete.is_empty());
    let sizes: Vec<usize> = p.create.iter().map(|s| s.endpoints.len()).collect();
    assert_eq!(sizes, [100, 100, 50]);
}

#[test]
fn nothing_changes_nothing_written() {
    let existing = [slice("web-a", &[port(80)], 0..3)];
    let p = plan(&existing, group(&[port(80)], 0..3), &Template, 100);
    assert!(p.create.is_empty() && p.update.is_empty() && p.delete.is_empty(), "{p:?}");
}

#[test]
fn changes_update_in_place() {
    // One removed, one added, one changed readiness: a single update of the existing slice.
    let existing = [slice("web-a", &[port(80)], 0..3)];
    let mut desired = group(&[port(80)], [0, 2, 7]);
    let changed = ep(2, false);
    desired.values_mut().for_each(|g| {
        g.endpoints.insert(endpoint_key(&changed), changed.clone());
    });
    let p = plan(&existing, desired, &Template, 100);
    assert!(p.create.is_empty() && p.delete.is_empty());
    assert_eq!(names(&p.update), ["web-a"]);
    let got: Vec<_> = p.update[0].endpoints.iter().map(|e| e.addresses[0].clone()).collect();
    assert_eq!(got, ["10.0.0.0", "10.0.0.2", "10.0.0.7"]);
    assert_eq!(p.update[0].endpoints[1].conditions.as_ref().and_then(|c| c.ready), Some(false));
    assert_eq!(p.update[0].metadata.resource_version.as_deref(), Some("1"));
}

#[test]
fn additions_go_to_the_best_fitting_unchanged_slice() {
    let existing = [slice("web-a", &[port(80)], 0..50), slice("web-b", &[port(80)], 100..190)];
    let p = plan(&existing, group(&[port(80)], (0..50).chain(100..190).chain([200, 201, 202])), &Template, 100);
    assert!(p.create.is_empty() && p.delete.is_empty());
    assert_eq!(names(&p.update), ["web-b"]);
    assert_eq!(p.update[0].endpoints.len(), 93);
}

#[test]
fn emptied_slice_is_deleted_and_others_kept() {
    let existing = [slice("web-a", &[port(80)], 0..2), slice("web-b", &[port(80)], 2..4)];
    let p = plan(&existing, group(&[port(80)], 2..4), &Template, 100);
    assert!(p.create.is_empty() && p.update.is_empty());
    assert_eq!(names(&p.delete), ["web-a"]);
}

#[test]
fn port_change_reuses_the_old_slice() {
    // The targetPort changed: the old slice would be deleted and a new one created; instead
    // the old one is rewritten.
    let existing = [slice("web-a", &[port(80)], 0..2)];
    let p = plan(&existing, group(&[port(8080)], 0..2), &Template, 100);
    assert!(p.create.is_empty() && p.delete.is_empty());
    assert_eq!(names(&p.update), ["web-a"]);
    assert_eq!(p.update[0].ports.as_deref(), Some(&[port(8080)][..]));
}

#[test]
fn no_endpoints_leaves_one_placeholder() {
    let p = plan(&[], BTreeMap::new(), &Template, 100);
    assert_eq!(p.create.len(), 1);
    assert!(p.create[0].endpoints.is_empty() && p.create[0].ports.as_deref() == Some(&[][..]));
    // An existing placeholder stays as it is.
    let existing = [slice("web-a", &[], [])];
    let p = plan(&existing, BTreeMap::new(), &Template, 100);
    assert!(p.create.is_empty() && p.update.is_empty() && p.delete.is_empty(), "{p:?}");
    // The last endpoints going away turn the slice into the placeholder.
    let existing = [slice("web-a", &[port(80)], 0..2), slice("web-b", &[port(80)], 2..4)];
    let p = plan(&existing, BTreeMap::new(), &Template, 100);
    assert_eq!(names(&p.update), ["web-a"]);
    assert_eq!(names(&p.delete), ["web-b"]);
    assert!(p.update[0].endpoints.is_empty());
}

#[test]
fn label_drift_is_repaired() {
    let mut s = slice("web-a", &[port(80)], 0..2);
    s.metadata.labels = Some(BTreeMap::from([("stale".to_string(), "x".to_string())]));
    let p = plan(&[s], group(&[port(80)], 0..2), &Template, 100);
    assert_eq!(names(&p.update), ["web-a"]);
    assert_eq!(p.update[0].metadata.labels, Some(labels()));
}
