//! Resource amounts of pods and nodes: what a pod requests (upstream's `PodRequests`: containers
//! summed, init containers by the max rule, sidecars alongside, plus overhead) and what a node
//! can give (`status.allocatable`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// CPU assumed for a container that requests none, when scoring (upstream `DefaultMilliCPURequest`).
pub const DEFAULT_MILLI_CPU: i64 = 100;
/// Memory assumed for a container that requests none, when scoring (upstream `DefaultMemoryRequest`).
pub const DEFAULT_MEMORY: i64 = 200 * 1024 * 1024;

/// An amount of each resource. For a node it is what is allocatable; for a pod what it requests.
/// `pods` is the number of pods (a node's allowance; 1 for a pod).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    pub pods: i64,
    /// Extended resources (`example.com/gpu`, `hugepages-2Mi`, ...), sorted by name.
    pub scalars: Vec<(String, i64)>,
}

impl Resources {
    /// Parses a `requests`/`limits`/`allocatable` map. Unparsable quantities count as zero
    /// (the API server validates them).
    pub fn from_map(map: &BTreeMap<String, Quantity>) -> Self {
        let mut r = Resources::default();
        for (name, q) in map {
            r.set(name, q);
        }
        r
    }

    fn set(&mut self, name: &str, q: &Quantity) {
        // CPU in millicores, everything else in units, rounded up (upstream MilliValue / Value).
        let v =
            api::quantity::parse(&q.0).map(|q| if name == "cpu" { q.milli_value() } else { q.value() }).unwrap_or(0);
        match name {
            "cpu" => self.milli_cpu = v,
            "memory" => self.memory = v,
            "ephemeral-storage" => self.ephemeral_storage = v,
            "pods" => self.pods = v,
            _ => self.set_scalar(name, v),
        }
    }

    /// The amount of extended resource `name` (0 if absent).
    pub fn scalar(&self, name: &str) -> i64 {
        match self.scalars.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            Ok(i) => self.scalars[i].1,
            Err(_) => 0,
        }
    }

    fn set_scalar(&mut self, name: &str, v: i64) {
        match self.scalars.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            Ok(i) => self.scalars[i].1 = v,
            Err(i) => self.scalars.insert(i, (name.to_string(), v)),
        }
    }

    /// Adds `other` to `self`, resource by resource.
    pub fn add(&mut self, other: &Resources) {
        self.milli_cpu = self.milli_cpu.saturating_add(other.milli_cpu);
        self.memory = self.memory.saturating_add(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.saturating_add(other.ephemeral_storage);
        self.pods = self.pods.saturating_add(other.pods);
        for (name, v) in &other.scalars {
            let cur = self.scalar(name);
            self.set_scalar(name, cur.saturating_add(*v));
        }
    }

    /// Subtracts `other` from `self`, resource by resource.
    pub fn sub(&mut self, other: &Resources) {
        self.milli_cpu = self.milli_cpu.saturating_sub(other.milli_cpu);
        self.memory = self.memory.saturating_sub(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.saturating_sub(other.ephemeral_storage);
        self.pods = self.pods.saturating_sub(other.pods);
        for (name, v) in &other.scalars {
            let cur = self.scalar(name);
            self.set_scalar(name, cur.saturating_sub(*v));
        }
        self.scalars.retain(|(_, v)| *v != 0);
    }

    /// Raises each resource of `self` to at least that of `other`.
    pub fn max_with(&mut self, other: &Resources) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        self.pods = self.pods.max(other.pods);
        for (name, v) in &other.scalars {
            let cur = self.scalar(name);
            self.set_scalar(name, cur.max(*v));
        }
    }
}

/// What one pod takes from the node it runs on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodRequests {
    /// Requests for the fit filter (`pods` is 1).
    pub requests: Resources,
    /// CPU and memory with containers that request none counted at the defaults, for scoring
    /// (upstream's non-zero requests).
    pub non_zero_milli_cpu: i64,
    pub non_zero_memory: i64,
}

/// The requests of a pod with `spec`.
pub fn pod_requests(spec: &PodSpec) -> PodRequests {
    let mut requests = aggregate(spec, |c| container_requests(c, false));
    let non_zero = aggregate(spec, |c| container_requests(c, true));
    requests.pods = 1;
    PodRequests { requests, non_zero_milli_cpu: non_zero.milli_cpu, non_zero_memory: non_zero.memory }
}

/// Upstream's aggregation: containers summed; each init container needs its own requests plus
/// the sidecars (restartable init containers) started before it; sidecars also run alongside the
/// containers; the pod needs the larger of the two; overhead on top.
fn aggregate(spec: &PodSpec, per_container: impl Fn(&Container) -> Resources) -> Resources {
    let mut total = Resources::default();
    for c in &spec.containers {
        total.add(&per_container(c));
    }
    let mut sidecars = Resources::default();
    let mut init_peak = Resources::default();
    for c in spec.init_containers.iter().flatten() {
        let own = per_container(c);
        let need = if c.restart_policy.as_deref() == Some("Always") {
            total.add(&own);
            sidecars.add(&own);
            sidecars.clone()
        } else {
            let mut need = own;
            need.add(&sidecars);
            need
        };
        init_peak.max_with(&need);
    }
    total.max_with(&init_peak);
    if let Some(overhead) = &spec.overhead {
        total.add(&Resources::from_map(overhead));
    }
    total
}

/// A container's requests; a resource with a limit but no request requests its limit (the API
/// defaulting rule). With `non_zero`, missing CPU and memory count at the scoring defaults.
fn container_requests(c: &Container, non_zero: bool) -> Resources {
    let mut r = Resources::default();
    let mut has_cpu = false;
    let mut has_memory = false;
    if let Some(res) = &c.resources {
        if let Some(limits) = &res.limits {
            r = Resources::from_map(limits);
            has_cpu |= limits.contains_key("cpu");
            has_memory |= limits.contains_key("memory");
        }
        if let Some(requests) = &res.requests {
            for (name, q) in requests {
                r.set(name, q);
            }
            has_cpu |= requests.contains_key("cpu");
            has_memory |= requests.contains_key("memory");
        }
    }
    r.pods = 0;
    if non_zero {
        if !has_cpu {
            r.milli_cpu = DEFAULT_MILLI_CPU;
        }
        if !has_memory {
            r.memory = DEFAULT_MEMORY;
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ResourceRequirements;

    fn container(requests: &[(&str, &str)], limits: &[(&str, &str)], sidecar: bool) -> Container {
        let map = |kv: &[(&str, &str)]| -> Option<BTreeMap<String, Quantity>> {
            (!kv.is_empty()).then(|| kv.iter().map(|(k, v)| (k.to_string(), Quantity(v.to_string()))).collect())
        };
        Container {
            name: "c".into(),
            resources: Some(ResourceRequirements { requests: map(requests), limits: map(limits), claims: None }),
            restart_policy: sidecar.then(|| "Always".to_string()),
            ..Default::default()
        }
    }

    struct Case {
        name: &'static str,
        containers: Vec<Container>,
        init: Vec<Container>,
        overhead: &'static [(&'static str, &'static str)],
        cpu: i64,
        memory: i64,
        gpu: i64,
        non_zero_cpu: i64,
        non_zero_memory: i64,
    }

    #[test]
    fn requests() {
        const MI: i64 = 1024 * 1024;
        let cases = vec![
            Case {
                name: "no requests",
                containers: vec![container(&[], &[], false)],
                init: vec![],
                overhead: &[],
                cpu: 0,
                memory: 0,
                gpu: 0,
                non_zero_cpu: 100,
                non_zero_memory: 200 * MI,
            },
            Case {
                name: "containers summed",
                containers: vec![
                    container(&[("cpu", "250m"), ("memory", "64Mi")], &[], false),
                    container(&[("cpu", "1")], &[], false),
                ],
                init: vec![],
                overhead: &[],
                cpu: 1250,
                memory: 64 * MI,
                gpu: 0,
                non_zero_cpu: 1250,
                non_zero_memory: 264 * MI,
            },
            Case {
                name: "limit without request",
                containers: vec![container(&[], &[("cpu", "2"), ("example.com/gpu", "1")], false)],
                init: vec![],
                overhead: &[],
                cpu: 2000,
                memory: 0,
                gpu: 1,
                non_zero_cpu: 2000,
                non_zero_memory: 200 * MI,
            },
            Case {
                name: "init container larger than containers",
                containers: vec![container(&[("cpu", "500m")], &[], false)],
                init: vec![container(&[("cpu", "2"), ("memory", "1Gi")], &[], false)],
                overhead: &[],
                cpu: 2000,
                memory: 1024 * MI,
                gpu: 0,
                non_zero_cpu: 2000,
                non_zero_memory: 1024 * MI,
            },
            Case {
                name: "sidecar adds to containers and later init containers",
                containers: vec![container(&[("cpu", "1")], &[], false)],
                init: vec![container(&[("cpu", "500m")], &[], true), container(&[("cpu", "1200m")], &[], false)],
                overhead: &[],
                cpu: 1700,
                memory: 0,
                gpu: 0,
                non_zero_cpu: 1700,
                non_zero_memory: 400 * MI,
            },
            Case {
                name: "overhead",
                containers: vec![container(&[("cpu", "100m"), ("memory", "10Mi")], &[], false)],
                init: vec![],
                overhead: &[("cpu", "250m"), ("memory", "120Mi")],
                cpu: 350,
                memory: 130 * MI,
                gpu: 0,
                non_zero_cpu: 350,
                non_zero_memory: 130 * MI,
            },
        ];
        for c in cases {
            let spec = PodSpec {
                containers: c.containers,
                init_containers: (!c.init.is_empty()).then_some(c.init),
                overhead: (!c.overhead.is_empty())
                    .then(|| c.overhead.iter().map(|(k, v)| (k.to_string(), Quantity(v.to_string()))).collect()),
                ..Default::default()
            };
            let r = pod_requests(&spec);
            assert_eq!(r.requests.milli_cpu, c.cpu, "{}: cpu", c.name);
            assert_eq!(r.requests.memory, c.memory, "{}: memory", c.name);
            assert_eq!(r.requests.scalar("example.com/gpu"), c.gpu, "{}: gpu", c.name);
            assert_eq!(r.requests.pods, 1, "{}: pods", c.name);
            assert_eq!(r.non_zero_milli_cpu, c.non_zero_cpu, "{}: non-zero cpu", c.name);
            assert_eq!(r.non_zero_memory, c.non_zero_memory, "{}: non-zero memory", c.name);
        }
    }

    #[test]
    fn arithmetic() {
        let mut a = Resources { milli_cpu: 1000, memory: 10, scalars: vec![("x/y".into(), 2)], ..Default::default() };
        let b = Resources {
            milli_cpu: 500,
            pods: 1,
            scalars: vec![("a/b".into(), 1), ("x/y".into(), 1)],
            ..Default::default()
        };
        a.add(&b);
        assert_eq!(a.milli_cpu, 1500);
        assert_eq!(a.pods, 1);
        assert_eq!(a.scalars, vec![("a/b".to_string(), 1), ("x/y".to_string(), 3)]);
        a.sub(&b);
        assert_eq!(a.milli_cpu, 1000);
        assert_eq!(a.scalars, vec![("x/y".to_string(), 2)]);
    }
}
