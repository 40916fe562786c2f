//! Service IP and port allocation: ClusterIPs from `--service-cidr`, NodePorts from
//! 30000–32767, never a duplicate, requested values checked, both freed on delete, kept on
//! update; the `kubernetes` Service at the range's first address.

mod common;

use std::collections::HashSet;
use std::net::Ipv4Addr;

use common::{service, Server};
use serde_json::{json, Value};

const SVCS: &str = "/api/v1/namespaces/default/services";

fn ip_of(svc: &Value) -> Ipv4Addr {
    let ip = svc["spec"]["clusterIP"].as_str().unwrap_or_else(|| panic!("no spec.clusterIP: {svc}"));
    ip.parse().unwrap_or_else(|_| panic!("clusterIP {ip:?} is not an IPv4 address: {svc}"))
}

fn in_cidr(ip: Ipv4Addr, net: Ipv4Addr, bits: u32) -> bool {
    let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
    u32::from(ip) & mask == u32::from(net) & mask
}

fn node_ports(svc: &Value) -> Vec<u16> {
    svc["spec"]["ports"]
        .as_array()
        .unwrap_or_else(|| panic!("no ports: {svc}"))
        .iter()
        .map(|p| p["nodePort"].as_u64().unwrap_or_else(|| panic!("port without nodePort: {svc}")) as u16)
        .collect()
}

#[test]
fn cluster_ips_are_distinct_and_inside_the_default_range() {
    let server = Server::start();
    let api = server.api();

    let k = api.get_json("/api/v1/namespaces/default/services/kubernetes");
    assert_eq!(k["spec"]["clusterIP"], "10.96.0.1", "the kubernetes Service is at the first address: {k}");
    assert_eq!(k["spec"]["type"], "ClusterIP", "{k}");
    assert_eq!(k["spec"]["ports"][0]["port"], 443, "{k}");
    assert_eq!(k["spec"]["ports"][0]["name"], "https", "{k}");

    let net: Ipv4Addr = "10.96.0.0".parse().unwrap();
    let mut seen = HashSet::new();
    for i in 0..20 {
        let s = api.create(SVCS, &service(&format!("svc-{i}"), json!({})));
        let ip = ip_of(&s);
        assert!(in_cidr(ip, net, 12), "svc-{i} got {ip}, outside 10.96.0.0/12");
        assert_ne!(ip, Ipv4Addr::new(10, 96, 0, 1), "svc-{i} got the kubernetes Service's address");
        assert_eq!(s["spec"]["clusterIPs"], json!([ip.to_string()]), "clusterIPs mirrors clusterIP: {s}");
        assert!(seen.insert(ip), "svc-{i} got {ip}, already handed out");
    }
    // The stored objects agree with the create responses.
    let list = api.get_json(SVCS);
    let stored: HashSet<Ipv4Addr> =
        list["items"].as_array().unwrap().iter().filter(|s| s["metadata"]["name"] != "kubernetes").map(ip_of).collect();
    assert_eq!(stored, seen);
}

#[test]
fn requested_cluster_ip_in_use_or_out_of_range_is_rejected() {
    let server = Server::start();
    let api = server.api();

    let a = api.create(SVCS, &service("a", json!({"clusterIP": "10.96.7.7"})));
    assert_eq!(a["spec"]["clusterIP"], "10.96.7.7", "a requested free address is honoured: {a}");

    let before = api.snapshot(SVCS);
    let st = api.post_json(SVCS, &service("b", json!({"clusterIP": "10.96.7.7"}))).expect_status(422, "Invalid");
    assert!(
        st["details"]["causes"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["field"].as_str().is_some_and(|f| f.starts_with("spec.clusterIP")))),
        "details.causes names the clusterIP field: {st}"
    );
    // The kubernetes Service's address is in use too.
    api.post_json(SVCS, &service("c", json!({"clusterIP": "10.96.0.1"}))).expect_status(422, "Invalid");
    // Outside the service range.
    api.post_json(SVCS, &service("d", json!({"clusterIP": "192.168.1.10"}))).expect_status(422, "Invalid");
    assert_eq!(api.snapshot(SVCS), before, "rejected creates change nothing");
    // Upstream: `spec.clusterIPs: Invalid value: []string{"10.96.7.7"}: failed to allocate IP
    // 10.96.7.7: provided IP is already allocated`.
    assert!(st["message"].as_str().unwrap().contains("10.96.7.7"), "the message names the address: {st}");
}

#[test]
fn node_ports_are_allocated_in_range_distinct_and_checked() {
    let server = Server::start();
    let api = server.api();

    let mut seen = HashSet::new();
    for i in 0..5 {
        let s = api.create(
            SVCS,
            &service(
                &format!("np-{i}"),
                json!({"type": "NodePort", "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]}),
            ),
        );
        assert_eq!(s["spec"]["type"], "NodePort");
        assert!(s["spec"]["clusterIP"].is_string(), "a NodePort Service has a clusterIP too: {s}");
        assert_eq!(s["spec"]["externalTrafficPolicy"], "Cluster", "upstream default: {s}");
        for p in node_ports(&s) {
            assert!((30000..=32767).contains(&p), "np-{i}: nodePort {p} outside 30000-32767");
            assert!(seen.insert(p), "np-{i}: nodePort {p} handed out twice");
        }
    }

    let taken = *seen.iter().next().unwrap();
    let before = api.snapshot(SVCS);
    let st = api
        .post_json(SVCS, &service("dup", json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": taken}]})))
        .expect_status(422, "Invalid");
    api.post_json(SVCS, &service("low", json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 8080}]})))
        .expect_status(422, "Invalid");
    assert_eq!(api.snapshot(SVCS), before, "rejected creates change nothing");

    // A free requested nodePort is honoured.
    let free = (30000..=32767).find(|p| !seen.contains(p)).unwrap();
    let s = api.create(SVCS, &service("mine", json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": free}]})));
    assert_eq!(node_ports(&s), vec![free]);
    // Upstream: `spec.ports[0].nodePort: Invalid value: 31234: provided port is already allocated`.
    assert!(st["message"].as_str().unwrap().contains(&taken.to_string()), "the message names the port: {st}");
}

#[test]
fn cluster_ip_and_node_port_are_freed_on_delete() {
    let server = Server::start();
    let api = server.api();

    let spec = json!({"type": "NodePort", "clusterIP": "10.96.100.100", "ports": [{"port": 80, "nodePort": 31234}]});
    let a = api.create(SVCS, &service("first", spec.clone()));
    assert_eq!(a["spec"]["clusterIP"], "10.96.100.100");
    assert_eq!(node_ports(&a), vec![31234]);
    api.post_json(SVCS, &service("second", spec.clone())).expect_status(422, "Invalid");

    api.delete(&format!("{SVCS}/first")).expect(200);
    api.get(&format!("{SVCS}/first")).expect_status(404, "NotFound");

    let b = api.create(SVCS, &service("second", spec));
    assert_eq!(b["spec"]["clusterIP"], "10.96.100.100", "the address was freed with the Service: {b}");
    assert_eq!(node_ports(&b), vec![31234], "the node port was freed with the Service: {b}");
}

#[test]
fn update_without_cluster_ip_keeps_the_allocated_values() {
    let server = Server::start();
    let api = server.api();

    let s = api.create(SVCS, &service("keep", json!({"type": "NodePort"})));
    let ip = s["spec"]["clusterIP"].clone();
    let ports = node_ports(&s);

    // A PUT of the original manifest (no clusterIP, no nodePort), as `kubectl replace` sends it.
    let mut body = service("keep", json!({"type": "NodePort", "ports": [{"name": "http", "port": 80}]}));
    body["metadata"]["resourceVersion"] = s["metadata"]["resourceVersion"].clone();
    body["metadata"]["labels"] = json!({"touched": "yes"});
    let u = api.put_json(&format!("{SVCS}/keep"), &body).expect(200).json();
    assert_eq!(u["spec"]["clusterIP"], ip, "the allocated clusterIP is kept: {u}");
    assert_eq!(u["spec"]["clusterIPs"], json!([ip]), "{u}");
    assert_eq!(node_ports(&u), ports, "the allocated nodePort is kept: {u}");
    assert_eq!(u["metadata"]["labels"]["touched"], "yes");

    // Changing the clusterIP of an existing Service is refused (the field is immutable).
    let mut change = u.clone();
    change["spec"]["clusterIP"] = json!("10.96.55.55");
    change["spec"]["clusterIPs"] = json!(["10.96.55.55"]);
    api.put_json(&format!("{SVCS}/keep"), &change).expect_status(422, "Invalid");
    assert_eq!(api.get_json(&format!("{SVCS}/keep"))["spec"]["clusterIP"], ip);
}

#[test]
fn service_cidr_flag_changes_the_range() {
    let server = Server::start_with(&["--service-cidr", "10.100.0.0/24"]);
    let api = server.api();

    let k = api.get_json("/api/v1/namespaces/default/services/kubernetes");
    assert_eq!(k["spec"]["clusterIP"], "10.100.0.1", "the kubernetes Service is at the first address: {k}");

    let net: Ipv4Addr = "10.100.0.0".parse().unwrap();
    let mut seen = HashSet::new();
    for i in 0..10 {
        let s = api.create(SVCS, &service(&format!("s{i}"), json!({})));
        let ip = ip_of(&s);
        assert!(in_cidr(ip, net, 24), "s{i} got {ip}, outside --service-cidr 10.100.0.0/24");
        assert!(seen.insert(ip), "duplicate {ip}");
    }
    // An address of the default range is now outside the range.
    api.post_json(SVCS, &service("old-range", json!({"clusterIP": "10.96.0.50"}))).expect_status(422, "Invalid");
}
