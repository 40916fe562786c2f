//! Table-driven tests of the pod → runtime config translation: each row is a pod fragment (merged
//! into a base pod, JSON merge-patch style) and the config fields it must give.

use super::*;
use crate::runtime::{
    Capability, LinuxContainerResources, LinuxContainerSecurityContext, LinuxSandboxSecurityContext, Mount,
    MountPropagation, NamespaceMode as Ns, NamespaceOption,
};
use serde_json::{json, Value};

/// JSON merge patch (RFC 7386): objects merge, everything else replaces, null deletes.
fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    b.remove(k);
                } else {
                    merge(b.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (b, p) => *b = p.clone(),
    }
}

/// The base pod with `fragment` merged in.
fn pod(fragment: Value) -> Pod {
    let mut base = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "team", "uid": "uid-1",
            "labels": {"app": "web", "tier": "front"}, "annotations": {"a/b": "x\"y"}},
        "spec": {"nodeName": "node-a", "serviceAccountName": "sa",
            "containers": [{"name": "main", "image": "busybox:1.36"}]}});
    merge(&mut base, &fragment);
    serde_json::from_value(base).expect("pod")
}

/// A pod whose only container is `main` with `container` merged in.
fn pod_with(container: Value) -> Pod {
    let mut c = json!({"name": "main", "image": "busybox:1.36"});
    merge(&mut c, &container);
    pod(json!({"spec": {"containers": [c]}}))
}

fn facts() -> NodeFacts {
    let q = |s: &str| Quantity(s.to_string());
    let allocatable = [("cpu", q("4")), ("memory", q("16Gi")), ("ephemeral-storage", q("100Gi")), ("pods", q("110"))]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let mut f = NodeFacts::new("node-a", "10.0.0.1".parse().expect("ip"), allocatable);
    f.host_dns = dns::parse_resolv_conf(
        "# host\nnameserver 192.168.1.1\nsearch corp.example. svc.cluster.local .\noptions edns0 ndots:1\n; x\noptions ndots:2\n",
    );
    f.log_root = Some("/data/agent/logs".into());
    f.pod_pids_limit = Some(4096);
    f
}

fn objects() -> Objects {
    let mut o = Objects::default();
    let cm: BTreeMap<String, String> = [("color", "blue"), ("size", "L"), ("1st", "one")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    o.config_maps.insert("cfg".into(), Ok(Some(cm)));
    o.config_maps.insert("missing".into(), Ok(None));
    o.config_maps.insert("broken".into(), Err(LookupError("connection refused".into())));
    let secret: BTreeMap<String, Vec<u8>> = [("password", &b"s3cret"[..]), ("user", b"admin"), ("bin", b"\xff")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_vec()))
        .collect();
    o.secrets.insert("creds".into(), Ok(Some(secret)));
    o.secrets.insert("nosecret".into(), Ok(None));
    o
}

const POD_IP: &str = "10.244.1.7";

fn container_cfg(p: &Pod, name: &str) -> Result<ContainerConfig, ConfigError> {
    let spec = p.spec.as_ref().expect("spec");
    let (c, role) = match spec.containers.iter().find(|c| c.name == name) {
        Some(c) => (c, ContainerRole::App),
        None => {
            (spec.init_containers.iter().flatten().find(|c| c.name == name).expect("container"), ContainerRole::Init)
        }
    };
    let ips: Vec<IpAddr> = vec![POD_IP.parse().expect("ip")];
    let node = facts();
    let objects = objects();
    container_config(&ContainerInput {
        pod: p,
        container: c,
        role,
        attempt: 3,
        node: &node,
        pod_ips: &ips,
        objects: &objects,
        service_env: &[],
    })
}

fn sandbox_cfg(p: &Pod) -> Result<PodSandboxConfig, ConfigError> {
    sandbox_config(p, &facts(), None)
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn basic_fields() {
    let p = pod(json!({"spec": {"restartPolicy": "OnFailure",
        "initContainers": [{"name": "setup", "image": "busybox:1.36"}],
        "containers": [{"name": "main", "image": "nginx:1.27", "command": ["nginx"], "args": ["-g", "daemon off;"],
            "workingDir": "/srv", "tty": true, "stdin": true, "stdinOnce": true}]}}));
    let sb = sandbox_cfg(&p).expect("sandbox");
    assert_eq!(
        sb.metadata,
        Some(SandboxMetadata { name: "web".into(), namespace: "team".into(), uid: "uid-1".into(), attempt: 0 })
    );
    assert_eq!(sb.log_directory, Some("/data/agent/logs/team_web_uid-1".into()));
    assert_eq!(sb.labels.get(LABEL_RESTART_POLICY).map(String::as_str), Some("OnFailure"));
    assert_eq!(sb.labels.get(LABEL_POD_UID).map(String::as_str), Some("uid-1"));
    assert_eq!(sb.annotations.get("a/b").map(String::as_str), Some("x\"y"));
    assert_eq!(sb.linux.resources.pids_limit, Some(4096));

    let c = container_cfg(&p, "main").expect("config");
    assert_eq!((c.name.as_str(), c.attempt, c.image.as_str()), ("main", 3, "nginx:1.27"));
    assert_eq!((c.command.clone(), c.args.clone()), (strings(&["nginx"]), strings(&["-g", "daemon off;"])));
    assert_eq!(c.working_dir.as_deref(), Some("/srv"));
    assert_eq!((c.tty, c.stdin, c.stdin_once), (true, true, true));
    assert_eq!(c.log_path, Some("main/3.log".into()));
    assert_eq!(c.labels.get(LABEL_CONTAINER_TYPE).map(String::as_str), Some("app"));
    assert_eq!(c.labels.get(LABEL_CONTAINER_NAME).map(String::as_str), Some("main"));
    assert_eq!(c.labels.get(LABEL_POD_NAME).map(String::as_str), Some("web"));
    let init = container_cfg(&p, "setup").expect("config");
    assert_eq!(init.labels.get(LABEL_CONTAINER_TYPE).map(String::as_str), Some("init"));
    assert_eq!((init.tty, init.stdin, init.working_dir), (false, false, None));
}

#[test]
fn resources_qos_and_cgroups() {
    // (pod fragment, container, expected (shares, quota, period, memory limit, oom_score_adj), cgroup tier)
    type Row = (Value, &'static str, (i64, i64, i64, i64, i64), &'static str);
    let res = |r: Value| json!({"spec": {"containers": [{"name": "main", "image": "i", "resources": r}]}});
    let gib = 1i64 << 30;
    let rows: Vec<Row> = vec![
        // BestEffort: the smallest weight, no quota, no limit, killed first.
        (json!({}), "main", (2, 0, 100_000, 0, 1000), "besteffort"),
        // Burstable: shares from the request; OOM score 1000 - 1000 × 1Gi / 16Gi = 938.
        (res(json!({"requests": {"cpu": "500m", "memory": "1Gi"}})), "main", (512, 0, 100_000, 0, 938), "burstable"),
        // Guaranteed: requests = limits for CPU and memory.
        (
            res(json!({"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}})),
            "main",
            (1024, 100_000, 100_000, gib, -997),
            "guaranteed",
        ),
        // No CPU request: shares from the limit. Quota = 250m × 100000 / 1000.
        (res(json!({"limits": {"cpu": "250m"}})), "main", (256, 25_000, 100_000, 0, 999), "burstable"),
        // Tiny values: shares at least 2, quota at least 1000 µs.
        (
            res(json!({"requests": {"cpu": "1m"}, "limits": {"cpu": "1m"}})),
            "main",
            (2, 1_000, 100_000, 0, 999),
            "burstable",
        ),
        // An explicit zero request gives the smallest weight, not the limit's.
        (
            res(json!({"requests": {"cpu": "0"}, "limits": {"cpu": "2"}})),
            "main",
            (2, 200_000, 100_000, 0, 999),
            "burstable",
        ),
        // Shares are capped.
        (res(json!({"requests": {"cpu": "1000"}})), "main", (262_144, 0, 100_000, 0, 999), "burstable"),
        // A request of the whole node: the score stays above Guaranteed's (3).
        (
            res(json!({"requests": {"memory": "16Gi"}, "limits": {"memory": "32Gi"}})),
            "main",
            (2, 0, 100_000, 32 * gib, 3),
            "burstable",
        ),
        // Memory limit only: 512Mi.
        (res(json!({"limits": {"memory": "512Mi"}})), "main", (2, 0, 100_000, 512 << 20, 999), "burstable"),
        // The class the API server recorded wins.
        (json!({"status": {"qosClass": "Guaranteed"}}), "main", (2, 0, 100_000, 0, -997), "guaranteed"),
        // A node-critical pod is protected whatever its class.
        (
            json!({"spec": {"priority": 2_000_001_000, "priorityClassName": "system-node-critical",
                "containers": [{"name": "main", "image": "i", "resources": {"requests": {"memory": "1Gi"}}}]}}),
            "main",
            (2, 0, 100_000, 0, -997),
            "burstable",
        ),
        // Critical priority without the node-critical class: the Burstable formula.
        (
            json!({"spec": {"priority": 2_000_001_000, "priorityClassName": "system-cluster-critical",
                "containers": [{"name": "main", "image": "i", "resources": {"requests": {"memory": "1Gi"}}}]}}),
            "main",
            (2, 0, 100_000, 0, 938),
            "burstable",
        ),
        // A sidecar scores at most like the smallest regular container (8Gi → 500).
        (
            json!({"spec": {"initContainers": [{"name": "side", "image": "i", "restartPolicy": "Always",
                    "resources": {"requests": {"memory": "1Gi"}}}],
                "containers": [{"name": "main", "image": "i", "resources": {"requests": {"memory": "8Gi"}}}]}}),
            "side",
            (2, 0, 100_000, 0, 500),
            "burstable",
        ),
        // Guaranteed only when every container has both limits.
        (
            json!({"spec": {"containers": [
                {"name": "main", "image": "i", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}},
                {"name": "other", "image": "i", "resources": {"requests": {"cpu": "1"}, "limits": {"cpu": "1"}}}]}}),
            "main",
            (1024, 100_000, 100_000, gib, 938),
            "burstable",
        ),
    ];
    for (i, (fragment, name, (shares, quota, period, memory, oom), tier)) in rows.into_iter().enumerate() {
        let p = pod(fragment);
        let c = container_cfg(&p, name).expect("config");
        let r = c.linux.resources;
        assert_eq!(
            (r.cpu_shares, r.cpu_quota, r.cpu_period, r.memory_limit_in_bytes, r.oom_score_adj),
            (shares, quota, period, memory, oom),
            "row {i}"
        );
        let sb = sandbox_cfg(&p).expect("sandbox");
        assert_eq!(sb.linux.cgroup_parent, format!("/skiff/{tier}/poduid-1"), "row {i}");
    }
}

#[test]
fn pod_level_resources() {
    // (pod fragment, expected sandbox resources (shares, quota, memory limit), overhead)
    type Row = (Value, (i64, i64, i64), Option<LinuxContainerResources>);
    let mib = 1i64 << 20;
    let rows: Vec<Row> = vec![
        (json!({}), (2, 0, 0), None),
        // App containers add up; a bigger init container wins for the request.
        (
            json!({"spec": {"initContainers": [{"name": "init", "image": "i", "resources": {"requests": {"cpu": "1"}}}],
                "containers": [
                    {"name": "a", "image": "i", "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "500m", "memory": "1Gi"}}},
                    {"name": "b", "image": "i", "resources": {"requests": {"cpu": "200m"}, "limits": {"memory": "1Gi"}}}]}}),
            (1024, 50_000, 2048 * mib),
            None,
        ),
        // A sidecar runs next to the app containers and the init containers after it.
        (
            json!({"spec": {"initContainers": [
                    {"name": "side", "image": "i", "restartPolicy": "Always", "resources": {"requests": {"cpu": "300m"}}},
                    {"name": "init", "image": "i", "resources": {"requests": {"cpu": "500m"}}}],
                "containers": [{"name": "a", "image": "i", "resources": {"requests": {"cpu": "100m"}}}]}}),
            (819, 0, 0),
            None,
        ),
        (
            json!({"spec": {"overhead": {"cpu": "250m", "memory": "120Mi"}}}),
            (2, 0, 0),
            Some(LinuxContainerResources {
                cpu_period: 100_000,
                cpu_quota: 25_000,
                cpu_shares: 256,
                memory_limit_in_bytes: 120 * mib,
                ..Default::default()
            }),
        ),
    ];
    for (i, (fragment, (shares, quota, memory), overhead)) in rows.into_iter().enumerate() {
        let sb = sandbox_cfg(&pod(fragment)).expect("sandbox");
        let r = sb.linux.resources;
        assert_eq!((r.cpu_shares, r.cpu_quota, r.memory_limit_in_bytes), (shares, quota, memory), "row {i}");
        assert_eq!(r.pids_limit, Some(4096), "row {i}");
        assert_eq!(sb.linux.overhead, overhead, "row {i}");
    }
}

#[test]
fn namespaces_and_security_contexts() {
    // (pod fragment, expected (network, pid, ipc))
    let ns_rows: Vec<(Value, (Ns, Ns, Ns))> = vec![
        (json!({}), (Ns::Pod, Ns::Container, Ns::Pod)),
        (json!({"spec": {"hostNetwork": true}}), (Ns::Node, Ns::Container, Ns::Pod)),
        (json!({"spec": {"hostPID": true}}), (Ns::Pod, Ns::Node, Ns::Pod)),
        (json!({"spec": {"hostIPC": true}}), (Ns::Pod, Ns::Container, Ns::Node)),
        (json!({"spec": {"shareProcessNamespace": true}}), (Ns::Pod, Ns::Pod, Ns::Pod)),
        (json!({"spec": {"hostPID": true, "shareProcessNamespace": true}}), (Ns::Pod, Ns::Node, Ns::Pod)),
    ];
    for (i, (fragment, (network, pid, ipc))) in ns_rows.into_iter().enumerate() {
        let p = pod(fragment);
        let want = NamespaceOption { network, pid, ipc };
        assert_eq!(sandbox_cfg(&p).expect("sandbox").linux.security_context.namespace_options, want, "row {i}");
        let c = container_cfg(&p, "main").expect("config");
        assert_eq!(c.linux.security_context.namespace_options, want, "row {i}");
    }

    let masked = strings(&security::DEFAULT_MASKED_PATHS);
    let readonly = strings(&security::DEFAULT_READONLY_PATHS);
    let pod_sc = json!({"runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000, "supplementalGroups": [4000, 5000]});
    // (pod securityContext, container securityContext, expected container context)
    let rows: Vec<(Value, Value, LinuxContainerSecurityContext)> = vec![
        (
            json!(null),
            json!(null),
            LinuxContainerSecurityContext {
                namespace_options: NamespaceOption { pid: Ns::Container, ..Default::default() },
                masked_paths: masked.clone(),
                readonly_paths: readonly.clone(),
                ..Default::default()
            },
        ),
        // Pod level only.
        (
            pod_sc.clone(),
            json!(null),
            LinuxContainerSecurityContext {
                namespace_options: NamespaceOption { pid: Ns::Container, ..Default::default() },
                run_as_user: Some(1000),
                run_as_group: Some(3000),
                supplemental_groups: vec![2000, 4000, 5000],
                masked_paths: masked.clone(),
                readonly_paths: readonly.clone(),
                ..Default::default()
            },
        ),
        // The container's settings win over the pod's.
        (
            pod_sc.clone(),
            json!({"runAsUser": 0, "privileged": true, "readOnlyRootFilesystem": true,
                "allowPrivilegeEscalation": false, "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}}),
            LinuxContainerSecurityContext {
                capabilities: Capability { add: strings(&["NET_ADMIN"]), drop: strings(&["ALL"]) },
                privileged: true,
                namespace_options: NamespaceOption { pid: Ns::Container, ..Default::default() },
                run_as_user: Some(0),
                run_as_group: Some(3000),
                readonly_rootfs: true,
                supplemental_groups: vec![2000, 4000, 5000],
                no_new_privs: true,
                masked_paths: masked.clone(),
                readonly_paths: readonly.clone(),
            },
        ),
        // allowPrivilegeEscalation: true (or unset) leaves no_new_privs off; Unmasked /proc.
        (
            json!(null),
            json!({"allowPrivilegeEscalation": true, "procMount": "Unmasked", "runAsGroup": 7}),
            LinuxContainerSecurityContext {
                namespace_options: NamespaceOption { pid: Ns::Container, ..Default::default() },
                run_as_group: Some(7),
                ..Default::default()
            },
        ),
    ];
    for (i, (pod_sc, c_sc, want)) in rows.into_iter().enumerate() {
        let mut c = json!({"name": "main", "image": "i"});
        if !c_sc.is_null() {
            c["securityContext"] = c_sc;
        }
        let mut spec = json!({"containers": [c]});
        if !pod_sc.is_null() {
            spec["securityContext"] = pod_sc;
        }
        let p = pod(json!({ "spec": spec }));
        let got = container_cfg(&p, "main").expect("config").linux.security_context;
        assert_eq!(got, want, "row {i}");
    }

    // The sandbox: the pod's user and groups, privileged when any container is, sysctls.
    let p = pod(json!({"spec": {"securityContext": {"runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000,
            "supplementalGroups": [4000], "sysctls": [{"name": "net.core.somaxconn", "value": "1024"}]},
        "initContainers": [{"name": "priv", "image": "i", "securityContext": {"privileged": true}}]}}));
    let sb = sandbox_cfg(&p).expect("sandbox").linux;
    assert_eq!(
        sb.security_context,
        LinuxSandboxSecurityContext {
            namespace_options: NamespaceOption { pid: Ns::Container, ..Default::default() },
            run_as_user: Some(1000),
            run_as_group: Some(3000),
            readonly_rootfs: false,
            supplemental_groups: vec![2000, 4000],
            privileged: true,
        }
    );
    assert_eq!(sb.sysctls.get("net.core.somaxconn").map(String::as_str), Some("1024"));
    assert!(!sandbox_cfg(&pod(json!({}))).expect("sandbox").linux.security_context.privileged);
}

#[test]
fn dns_and_hostname() {
    let cluster_search = ["team.svc.cluster.local", "svc.cluster.local", "cluster.local"];
    let host = DnsConfig {
        servers: strings(&["192.168.1.1"]),
        searches: strings(&["corp.example", "svc.cluster.local"]),
        options: strings(&["edns0", "ndots:2"]),
    };
    assert_eq!(facts().host_dns, host, "resolv.conf parsing");
    let mut cluster_with_host = strings(&cluster_search);
    cluster_with_host.push("corp.example".into());
    let cluster = DnsConfig {
        servers: strings(&["10.96.0.10"]),
        searches: cluster_with_host.clone(),
        options: strings(&["ndots:5"]),
    };
    let many: Vec<String> = (0..40).map(|i| format!("d{i}.example")).collect();
    // (pod fragment, expected resolv.conf)
    let rows: Vec<(Value, DnsConfig)> = vec![
        (json!({}), cluster.clone()),
        (json!({"spec": {"dnsPolicy": "ClusterFirst"}}), cluster.clone()),
        // hostNetwork falls back to the host's under ClusterFirst …
        (json!({"spec": {"hostNetwork": true}}), host.clone()),
        // … unless asked for ClusterFirstWithHostNet.
        (json!({"spec": {"hostNetwork": true, "dnsPolicy": "ClusterFirstWithHostNet"}}), cluster.clone()),
        (json!({"spec": {"dnsPolicy": "Default"}}), host.clone()),
        (
            json!({"spec": {"dnsPolicy": "None", "dnsConfig": {"nameservers": ["1.2.3.4"], "searches": ["a.example"],
                "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}}}),
            DnsConfig {
                servers: strings(&["1.2.3.4"]),
                searches: strings(&["a.example"]),
                options: strings(&["ndots:2", "edns0"]),
            },
        ),
        (json!({"spec": {"dnsPolicy": "None"}}), DnsConfig::default()),
        // dnsConfig is appended; an option of the same name replaces the policy's.
        (
            json!({"spec": {"dnsConfig": {"nameservers": ["8.8.8.8", "10.96.0.10"], "searches": ["cluster.local", "x.example"],
                "options": [{"name": "ndots", "value": "2"}, {"name": "timeout", "value": "1"}]}}}),
            DnsConfig {
                servers: strings(&["10.96.0.10", "8.8.8.8"]),
                searches: [cluster_with_host.clone(), strings(&["x.example"])].concat(),
                options: strings(&["ndots:2", "timeout:1"]),
            },
        ),
        // At most 3 servers and 32 search domains.
        (
            json!({"spec": {"dnsPolicy": "None", "dnsConfig": {"nameservers": ["1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4"],
                "searches": many}}}),
            DnsConfig {
                servers: strings(&["1.1.1.1", "2.2.2.2", "3.3.3.3"]),
                searches: (0..32).map(|i| format!("d{i}.example")).collect(),
                options: vec![],
            },
        ),
    ];
    for (i, (fragment, want)) in rows.into_iter().enumerate() {
        let sb = sandbox_cfg(&pod(fragment)).expect("sandbox");
        assert_eq!(sb.dns_config, Some(want), "row {i}");
    }

    let long = "a".repeat(60) + "-b-c";
    let long_dash = "a".repeat(62) + "-x";
    // (pod fragment, expected hostname or error fragment)
    let rows: Vec<(Value, Result<String, &str>)> = vec![
        (json!({}), Ok("web".into())),
        (json!({"spec": {"hostname": "db-0"}}), Ok("db-0".into())),
        (json!({"spec": {"hostNetwork": true, "hostname": "db-0"}}), Ok(String::new())),
        // Cut at 63 characters, then trailing dashes dropped.
        (json!({"metadata": {"name": long}}), Ok("a".repeat(60) + "-b")),
        (json!({"metadata": {"name": long_dash}}), Ok("a".repeat(62))),
        (json!({"spec": {"subdomain": "sub"}}), Ok("web".into())),
        (json!({"spec": {"subdomain": "sub", "setHostnameAsFQDN": true}}), Ok("web.sub.team.svc.cluster.local".into())),
        (
            json!({"spec": {"hostname": "h".repeat(40), "subdomain": "sub", "setHostnameAsFQDN": true}}),
            Err("is too long (64 characters is the max"),
        ),
    ];
    for (i, (fragment, want)) in rows.into_iter().enumerate() {
        match (sandbox_cfg(&pod(fragment)), want) {
            (Ok(sb), Ok(h)) => assert_eq!(sb.hostname, h, "row {i}"),
            (Err(e), Err(msg)) => assert!(e.to_string().contains(msg), "row {i}: {e}"),
            (got, want) => panic!("row {i}: got {:?}, want {want:?}", got.map(|s| s.hostname)),
        }
    }
}

#[test]
fn port_mappings_of_app_containers() {
    let p = pod(json!({"spec": {
        "initContainers": [{"name": "init", "image": "i", "ports": [{"containerPort": 1}]}],
        "containers": [
            {"name": "main", "image": "i", "ports": [
                {"name": "http", "containerPort": 80, "hostPort": 8080},
                {"name": "http", "containerPort": 81},
                {"containerPort": 53, "protocol": "UDP", "hostIP": "127.0.0.1", "hostPort": 5353},
                {"containerPort": 53, "protocol": "UDP", "hostIP": "127.0.0.1", "hostPort": 5353},
                {"containerPort": 53, "protocol": "UDP", "hostIP": "::1", "hostPort": 5353}]},
            {"name": "side", "image": "i", "ports": [{"name": "http", "containerPort": 9000, "protocol": "SCTP"}]}]}}));
    let got = sandbox_cfg(&p).expect("sandbox").port_mappings;
    let pm = |protocol, container_port, host_port, host_ip: &str| PortMapping {
        protocol,
        container_port,
        host_port,
        host_ip: host_ip.to_string(),
    };
    assert_eq!(
        got,
        vec![
            pm(Protocol::Tcp, 80, 8080, ""),
            pm(Protocol::Udp, 53, 5353, "127.0.0.1"),
            pm(Protocol::Udp, 53, 5353, "::1"),
            pm(Protocol::Sctp, 9000, 0, ""),
        ]
    );
}

/// `valueFrom: {fieldRef: {fieldPath: <path>}}`.
fn field(path: &str) -> Value {
    json!({"fieldRef": {"fieldPath": path}})
}

/// `valueFrom: {resourceFieldRef: ...}`.
fn resource(r: &str, divisor: Option<&str>, container: Option<&str>) -> Value {
    let mut v = json!({"resource": r});
    if let Some(d) = divisor {
        v["divisor"] = json!(d);
    }
    if let Some(c) = container {
        v["containerName"] = json!(c);
    }
    json!({ "resourceFieldRef": v })
}

#[test]
fn environment() {
    let var = |name: &str, value: &str| json!({"name": name, "value": value});
    let from = |name: &str, source: Value| json!({"name": name, "valueFrom": source});
    let cm_key = |name: &str, key: &str, optional: bool| json!({"configMapKeyRef": {"name": name, "key": key, "optional": optional}});
    let secret_key = |name: &str, key: &str| json!({"secretKeyRef": {"name": name, "key": key}});
    let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    };
    // (container fragment, expected env or error message)
    type Row = (Value, Result<Vec<(String, String)>, &'static str>);
    let rows: Vec<Row> = vec![
        // Plain values, $(VAR) of earlier variables, `$$` escapes, unknown and later references kept.
        (
            json!({"env": [var("A", "a"), var("B", "$(A)-$$(A)-$(C)-$(NOPE)"), var("C", "c"), var("EMPTY", "")]}),
            Ok(env(&[("A", "a"), ("B", "a-$(A)-$(C)-$(NOPE)"), ("C", "c"), ("EMPTY", "")])),
        ),
        // The downward API: pod fields.
        (
            json!({"env": [from("NAME", field("metadata.name")), from("NS", field("metadata.namespace")),
                from("UID", field("metadata.uid")), from("APP", field("metadata.labels['app']")),
                from("NOLABEL", field("metadata.labels['nope']")), from("ANN", field("metadata.annotations['a/b']")),
                from("NODE", field("spec.nodeName")), from("SA", field("spec.serviceAccountName")),
                from("HOST", field("status.hostIP")), from("HOSTS", field("status.hostIPs")),
                from("IP", field("status.podIP")), from("IPS", field("status.podIPs")),
                from("LABELS", field("metadata.labels")), from("ANNS", field("metadata.annotations"))]}),
            Ok(env(&[
                ("NAME", "web"),
                ("NS", "team"),
                ("UID", "uid-1"),
                ("APP", "web"),
                ("NOLABEL", ""),
                ("ANN", "x\"y"),
                ("NODE", "node-a"),
                ("SA", "sa"),
                ("HOST", "10.0.0.1"),
                ("HOSTS", "10.0.0.1"),
                ("IP", POD_IP),
                ("IPS", POD_IP),
                ("LABELS", "app=\"web\"\ntier=\"front\""),
                ("ANNS", "a/b=\"x\\\"y\""),
            ])),
        ),
        (
            json!({"env": [from("X", json!({"fieldRef": {"apiVersion": "v2", "fieldPath": "metadata.name"}}))]}),
            Err("unsupported pod version: v2"),
        ),
        (json!({"env": [from("X", field("spec.restartPolicy"))]}), Err("unsupported fieldPath: spec.restartPolicy")),
        (json!({"env": [from("X", field("metadata.name['x']"))]}), Err("unsupported fieldPath: metadata.name['x']")),
        // resourceFieldRef: rounded up to whole divisors; unset limits default to the node's allocatable.
        (
            json!({"resources": {"requests": {"memory": "64Mi"}, "limits": {"cpu": "500m"}},
                "env": [from("CPU", resource("limits.cpu", None, None)), from("MCPU", resource("limits.cpu", Some("1m"), None)),
                    from("MEM", resource("limits.memory", None, None)), from("MEMMI", resource("limits.memory", Some("1Mi"), None)),
                    from("REQMEM", resource("requests.memory", Some("1Mi"), None)), from("REQCPU", resource("requests.cpu", None, None)),
                    from("DISK", resource("limits.ephemeral-storage", Some("1Gi"), None)),
                    from("HUGE", resource("limits.hugepages-2Mi", None, None)),
                    from("ZERO", resource("limits.cpu", Some("0"), None))]}),
            Ok(env(&[
                ("CPU", "1"),
                ("MCPU", "500"),
                ("MEM", "17179869184"),
                ("MEMMI", "16384"),
                ("REQMEM", "64"),
                ("REQCPU", "0"),
                ("DISK", "100"),
                ("HUGE", "0"),
                ("ZERO", "1"),
            ])),
        ),
        (json!({"env": [from("X", resource("limits.cpu", None, Some("ghost")))]}), Err("container ghost not found")),
        (
            json!({"env": [from("X", resource("limits.gpu", None, None))]}),
            Err("unsupported container resource: limits.gpu"),
        ),
        (json!({"env": [from("X", resource("cpu", None, None))]}), Err("unsupported container resource: cpu")),
        // ConfigMap and Secret keys.
        (
            json!({"env": [from("COLOR", cm_key("cfg", "color", false)), from("PW", secret_key("creds", "password")),
                from("BIN", secret_key("creds", "bin")),
                from("OPT_KEY", cm_key("cfg", "nope", true)), from("OPT_MAP", cm_key("missing", "color", true)),
                var("REF", "$(COLOR)/$(OPT_KEY)")]}),
            Ok(env(&[("COLOR", "blue"), ("PW", "s3cret"), ("BIN", "\u{fffd}"), ("REF", "blue/$(OPT_KEY)")])),
        ),
        (
            json!({"env": [from("X", cm_key("cfg", "nope", false))]}),
            Err("couldn't find key nope in ConfigMap team/cfg"),
        ),
        (json!({"env": [from("X", cm_key("missing", "k", false))]}), Err("configmap \"missing\" not found")),
        (json!({"env": [from("X", secret_key("nosecret", "k"))]}), Err("secret \"nosecret\" not found")),
        (json!({"env": [from("X", secret_key("creds", "k"))]}), Err("couldn't find key k in Secret team/creds")),
        // A failed read fails the container even for an optional reference.
        (
            json!({"env": [from("X", cm_key("broken", "k", true))]}),
            Err("get configmap team/broken: connection refused"),
        ),
        // envFrom: every key (with the prefix), then env on top (a redefinition keeps its place).
        (
            json!({"envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}, {"secretRef": {"name": "creds"}},
                    {"configMapRef": {"name": "missing", "optional": true}}],
                "env": [var("user", "override"), var("X", "$(CFG_size)")]}),
            Ok(env(&[
                ("CFG_1st", "one"),
                ("CFG_color", "blue"),
                ("CFG_size", "L"),
                ("bin", "\u{fffd}"),
                ("password", "s3cret"),
                ("user", "override"),
                ("X", "L"),
            ])),
        ),
        (json!({"envFrom": [{"configMapRef": {"name": "missing"}}]}), Err("configmap \"missing\" not found")),
        (json!({"envFrom": [{"secretRef": {"name": "nosecret"}}]}), Err("secret \"nosecret\" not found")),
        (json!({"envFrom": [{"secretRef": {"name": "nosecret", "optional": true}}]}), Ok(vec![])),
    ];
    for (i, (fragment, want)) in rows.into_iter().enumerate() {
        let got = container_cfg(&pod_with(fragment), "main");
        match (got, want) {
            (Ok(c), Ok(env)) => assert_eq!(c.env, env, "row {i}"),
            (Err(e), Err(msg)) => assert_eq!(e.to_string(), msg, "row {i}"),
            (got, want) => panic!("row {i}: got {:?}, want {want:?}", got.map(|c| c.env)),
        }
    }

    // resourceFieldRef of another container, whose limits default to the node's.
    let p = pod(json!({"spec": {"containers": [
        {"name": "main", "image": "i", "env": [from("OTHER", resource("limits.cpu", Some("1m"), Some("other")))]},
        {"name": "other", "image": "i", "resources": {"limits": {"memory": "1Gi"}}}]}}));
    assert_eq!(container_cfg(&p, "main").expect("config").env, env(&[("OTHER", "4000")]));

    // What the worker must fetch first.
    let c: Container = serde_json::from_value(json!({"name": "main",
        "envFrom": [{"configMapRef": {"name": "a"}}, {"secretRef": {"name": "s1"}}],
        "env": [from("X", cm_key("b", "k", false)), from("Y", secret_key("s2", "k")), from("Z", field("metadata.name"))]}))
    .expect("container");
    let refs = env::references(&c);
    assert_eq!(refs.config_maps.into_iter().collect::<Vec<_>>(), strings(&["a", "b"]));
    assert_eq!(refs.secrets.into_iter().collect::<Vec<_>>(), strings(&["s1", "s2"]));
    assert!(env::references(&Container::default()).is_empty());
}

#[test]
fn command_and_args_are_expanded_with_the_final_environment() {
    let p = pod_with(json!({
        "env": [{"name": "GREETING", "value": "hi"}, {"name": "POD", "valueFrom": field("metadata.name")}],
        "command": ["sh", "-c", "echo $(GREETING) $(POD) $$HOME $(NOPE)"],
        "args": ["$(GREETING)$(POD)", "$$(POD)", "$("]}));
    let c = container_cfg(&p, "main").expect("config");
    assert_eq!(c.command, strings(&["sh", "-c", "echo hi web $HOME $(NOPE)"]));
    assert_eq!(c.args, strings(&["hiweb", "$(POD)", "$("]));
}

#[test]
fn host_path_mounts() {
    let vols = json!([
        {"name": "logs", "hostPath": {"path": "/var/log/app/"}},
        {"name": "data", "hostPath": {"path": "/data", "type": "DirectoryOrCreate"}},
        {"name": "scratch", "emptyDir": {}}]);
    let mount = |container_path: &str, host_path: &str, readonly, propagation| Mount {
        container_path: container_path.into(),
        host_path: host_path.into(),
        readonly,
        propagation,
    };
    // (volume mounts, expected mounts or error message)
    let rows: Vec<(Value, Result<Vec<Mount>, &str>)> = vec![
        (
            json!([{"name": "logs", "mountPath": "/logs", "readOnly": true, "mountPropagation": "HostToContainer"}]),
            Ok(vec![mount("/logs", "/var/log/app/", true, MountPropagation::HostToContainer)]),
        ),
        (
            json!([{"name": "data", "mountPath": "/d", "mountPropagation": "Bidirectional"},
                {"name": "data", "mountPath": "/e", "mountPropagation": "None"}]),
            Ok(vec![
                mount("/d", "/data", false, MountPropagation::Bidirectional),
                mount("/e", "/data", false, MountPropagation::Private),
            ]),
        ),
        (
            json!([{"name": "logs", "mountPath": "/l", "subPath": "web/x"}]),
            Ok(vec![mount("/l", "/var/log/app/web/x", false, MountPropagation::Private)]),
        ),
        // subPathExpr expands the container's environment.
        (
            json!([{"name": "data", "mountPath": "/d", "subPathExpr": "pods/$(POD_NAME)"}]),
            Ok(vec![mount("/d", "/data/pods/web", false, MountPropagation::Private)]),
        ),
        (
            json!([{"name": "data", "mountPath": "/d", "subPathExpr": "$(NOPE)/$(EMPTY)"}]),
            Err("volume mount /d: missing value for EMPTY, NOPE"),
        ),
        (
            json!([{"name": "data", "mountPath": "/d", "subPath": "../etc"}]),
            Err("volume mount /d: SubPath \"../etc\" must not contain '..'"),
        ),
        (
            json!([{"name": "data", "mountPath": "/d", "subPath": "/etc"}]),
            Err("volume mount /d: SubPath `/etc` must not be an absolute path"),
        ),
        // Volumes of the volume manager (a later issue) are not mounted yet.
        (json!([{"name": "scratch", "mountPath": "/tmp"}]), Ok(vec![])),
        (
            json!([{"name": "ghost", "mountPath": "/g"}]),
            Err("cannot find volume \"ghost\" to mount into container \"main\""),
        ),
        (
            json!([{"name": "data", "mountPath": "/d", "mountPropagation": "Sideways"}]),
            Err("invalid MountPropagation mode: \"Sideways\""),
        ),
    ];
    for (i, (mounts, want)) in rows.into_iter().enumerate() {
        let p =
            pod(json!({"spec": {"volumes": vols, "containers": [{"name": "main", "image": "i", "volumeMounts": mounts,
            "env": [{"name": "POD_NAME", "valueFrom": field("metadata.name")}, {"name": "EMPTY", "value": ""}]}]}}));
        match (container_cfg(&p, "main"), want) {
            (Ok(c), Ok(m)) => assert_eq!(c.mounts, m, "row {i}"),
            (Err(e), Err(msg)) => assert_eq!(e.to_string(), msg, "row {i}"),
            (got, want) => panic!("row {i}: got {:?}, want {want:?}", got.map(|c| c.mounts)),
        }
    }
}

fn service(ns: &str, name: &str, ip: &str, ports: &[(Option<&str>, i32, &str)]) -> k8s_openapi::api::core::v1::Service {
    use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
    Service {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            cluster_ip: Some(ip.into()),
            ports: Some(
                ports
                    .iter()
                    .map(|(n, port, proto)| ServicePort {
                        name: n.map(str::to_string),
                        port: *port,
                        protocol: Some(proto.to_string()),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn service_variables_follow_upstream() {
    use crate::pods::config::env::service_env;
    let services = [
        service("default", "kubernetes", "10.96.0.1", &[(Some("https"), 443, "TCP")]),
        service("apps", "my-web", "10.96.0.20", &[(Some("http"), 80, "TCP"), (None, 53, "UDP")]),
        service("apps", "headless", "None", &[(None, 80, "TCP")]),
        service("other", "elsewhere", "10.96.0.30", &[(None, 80, "TCP")]),
    ];
    let env: std::collections::BTreeMap<String, String> = service_env("apps", true, &services).into_iter().collect();
    let want = [
        ("KUBERNETES_SERVICE_HOST", "10.96.0.1"),
        ("KUBERNETES_SERVICE_PORT", "443"),
        ("KUBERNETES_SERVICE_PORT_HTTPS", "443"),
        ("KUBERNETES_PORT", "tcp://10.96.0.1:443"),
        ("KUBERNETES_PORT_443_TCP", "tcp://10.96.0.1:443"),
        ("KUBERNETES_PORT_443_TCP_PROTO", "tcp"),
        ("KUBERNETES_PORT_443_TCP_PORT", "443"),
        ("KUBERNETES_PORT_443_TCP_ADDR", "10.96.0.1"),
        ("MY_WEB_SERVICE_HOST", "10.96.0.20"),
        ("MY_WEB_SERVICE_PORT", "80"),
        ("MY_WEB_SERVICE_PORT_HTTP", "80"),
        ("MY_WEB_PORT", "tcp://10.96.0.20:80"),
        ("MY_WEB_PORT_80_TCP", "tcp://10.96.0.20:80"),
        ("MY_WEB_PORT_80_TCP_PROTO", "tcp"),
        ("MY_WEB_PORT_80_TCP_PORT", "80"),
        ("MY_WEB_PORT_80_TCP_ADDR", "10.96.0.20"),
        ("MY_WEB_PORT_53_UDP", "udp://10.96.0.20:53"),
        ("MY_WEB_PORT_53_UDP_PROTO", "udp"),
        ("MY_WEB_PORT_53_UDP_PORT", "53"),
        ("MY_WEB_PORT_53_UDP_ADDR", "10.96.0.20"),
    ];
    let want: std::collections::BTreeMap<String, String> =
        want.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    assert_eq!(env, want);
    // Without service links only the master service remains.
    let env = service_env("apps", false, &services);
    assert!(env.iter().all(|(k, _)| k.starts_with("KUBERNETES_")), "{env:?}");
    assert_eq!(env.len(), 8);
}

#[test]
fn service_variables_come_last_and_never_override_the_containers_own() {
    use crate::pods::config::env::{environment, EnvInput};
    let p = pod_with(json!({"env": [
        {"name": "WEB_SERVICE_HOST", "value": "mine"},
        {"name": "URL", "value": "http://$(WEB_SERVICE_HOST):$(WEB_SERVICE_PORT)"}
    ]}));
    let service_env = vec![
        ("WEB_SERVICE_HOST".to_string(), "10.96.0.5".to_string()),
        ("WEB_SERVICE_PORT".to_string(), "80".to_string()),
    ];
    let node = facts();
    let objects = objects();
    let c = &p.spec.as_ref().expect("spec").containers[0];
    let env = environment(&EnvInput {
        pod: &p,
        container: c,
        node: &node,
        pod_ips: &[],
        objects: &objects,
        service_env: &service_env,
    })
    .expect("env");
    assert_eq!(
        env,
        vec![
            ("WEB_SERVICE_HOST".to_string(), "mine".to_string()),
            ("URL".to_string(), "http://mine:80".to_string()),
            ("WEB_SERVICE_PORT".to_string(), "80".to_string()),
        ]
    );
}
