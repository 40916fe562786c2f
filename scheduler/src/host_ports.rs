//! Host ports a pod claims on its node, and conflicts between them (upstream NodePorts plugin).

use k8s_openapi::api::core::v1::PodSpec;

/// One `hostPort` claim: IP (`0.0.0.0` when unset), protocol (`TCP` when unset) and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub ip: String,
    pub protocol: String,
    pub port: i32,
}

impl HostPort {
    /// Whether two claims cannot share a node: same port and protocol on overlapping IPs
    /// (the wildcard address overlaps every IP).
    pub fn conflicts(&self, other: &HostPort) -> bool {
        self.port == other.port
            && self.protocol == other.protocol
            && (self.ip == other.ip || self.ip == WILDCARD || other.ip == WILDCARD)
    }
}

const WILDCARD: &str = "0.0.0.0";

/// The host ports of a pod's containers and sidecars (restartable init containers).
pub fn pod_host_ports(spec: &PodSpec) -> Vec<HostPort> {
    let sidecars = spec.init_containers.iter().flatten().filter(|c| c.restart_policy.as_deref() == Some("Always"));
    spec.containers
        .iter()
        .chain(sidecars)
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            let port = p.host_port.filter(|p| *p > 0)?;
            Some(HostPort {
                ip: p.host_ip.clone().filter(|ip| !ip.is_empty() && ip != "::").unwrap_or_else(|| WILDCARD.into()),
                protocol: p.protocol.clone().filter(|p| !p.is_empty()).unwrap_or_else(|| "TCP".into()),
                port,
            })
        })
        .collect()
}

/// Whether any of `wanted` conflicts with any of `used`.
pub fn any_conflict(wanted: &[HostPort], used: &[HostPort]) -> bool {
    wanted.iter().any(|w| used.iter().any(|u| w.conflicts(u)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, ContainerPort};

    fn hp(ip: &str, protocol: &str, port: i32) -> HostPort {
        HostPort { ip: ip.into(), protocol: protocol.into(), port }
    }

    #[test]
    fn conflicts() {
        let cases = [
            (hp("0.0.0.0", "TCP", 80), hp("0.0.0.0", "TCP", 80), true),
            (hp("0.0.0.0", "TCP", 80), hp("10.0.0.1", "TCP", 80), true),
            (hp("10.0.0.2", "TCP", 80), hp("10.0.0.1", "TCP", 80), false),
            (hp("10.0.0.1", "TCP", 80), hp("10.0.0.1", "TCP", 80), true),
            (hp("0.0.0.0", "UDP", 80), hp("0.0.0.0", "TCP", 80), false),
            (hp("0.0.0.0", "TCP", 81), hp("0.0.0.0", "TCP", 80), false),
        ];
        for (a, b, want) in cases {
            assert_eq!(a.conflicts(&b), want, "{a:?} vs {b:?}");
            assert_eq!(b.conflicts(&a), want, "{b:?} vs {a:?}");
        }
    }

    #[test]
    fn ports_of_a_pod() {
        let port = |host: Option<i32>, ip: Option<&str>, proto: Option<&str>| ContainerPort {
            container_port: 80,
            host_port: host,
            host_ip: ip.map(String::from),
            protocol: proto.map(String::from),
            name: None,
        };
        let spec = PodSpec {
            containers: vec![Container {
                name: "a".into(),
                ports: Some(vec![
                    port(None, None, None),
                    port(Some(8080), None, None),
                    port(Some(53), Some("10.0.0.1"), Some("UDP")),
                ]),
                ..Default::default()
            }],
            init_containers: Some(vec![
                Container { name: "init".into(), ports: Some(vec![port(Some(1), None, None)]), ..Default::default() },
                Container {
                    name: "sidecar".into(),
                    restart_policy: Some("Always".into()),
                    ports: Some(vec![port(Some(9090), None, None)]),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        };
        assert_eq!(
            pod_host_ports(&spec),
            vec![hp("0.0.0.0", "TCP", 8080), hp("10.0.0.1", "UDP", 53), hp("0.0.0.0", "TCP", 9090)]
        );
        assert!(any_conflict(&[hp("0.0.0.0", "TCP", 9090)], &pod_host_ports(&spec)));
        assert!(!any_conflict(&[hp("0.0.0.0", "TCP", 9091)], &pod_host_ports(&spec)));
    }
}
