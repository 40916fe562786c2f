//! ClusterIP and NodePort bookkeeping for Service writes: allocate what a Service needs before
//! it is stored, give back what a failed or dry-run write took, release what an update dropped.

use std::net::Ipv4Addr;

use serde_json::{json, Value};

use api::{ApiError, Cause};

use crate::ipalloc::{self, AllocError, Allocators};

/// What one Service write took and what it gives back once committed.
#[derive(Default)]
pub struct ServiceAlloc {
    taken_ips: Vec<String>,
    taken_ports: Vec<u16>,
    freed_ips: Vec<String>,
    freed_ports: Vec<u16>,
}

/// A 422 for `field`, worded as upstream: `Invalid value: <value>: <what went wrong>`.
fn invalid(name: &str, field: &str, value: &str, message: String) -> ApiError {
    ApiError::invalid("", "Service", name, vec![Cause::invalid(field, format!("Invalid value: {value}: {message}"))])
}

fn ip_error(name: &str, ip: Option<Ipv4Addr>, e: AllocError) -> ApiError {
    match ip {
        Some(ip) => invalid(
            name,
            "spec.clusterIPs",
            &format!("[]string{{\"{ip}\"}}"),
            format!("failed to allocate IP {ip}: {e}"),
        ),
        None => invalid(name, "spec.clusterIPs", "[]string(nil)", e.to_string()),
    }
}

fn wants_node_ports(svc: &Value) -> bool {
    matches!(svc.pointer("/spec/type").and_then(Value::as_str), Some("NodePort" | "LoadBalancer"))
}

impl ServiceAlloc {
    /// Fills in `spec.clusterIP(s)` and node ports of `svc`, carrying over what `old` had.
    pub fn prepare(a: &mut Allocators, svc: &mut Value, old: Option<&Value>) -> Result<ServiceAlloc, ApiError> {
        let mut out = ServiceAlloc::default();
        let name = svc.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
        match out.cluster_ip(a, svc, old, &name) {
            Ok(()) => {}
            Err(e) => {
                out.rollback(a);
                return Err(e);
            }
        }
        match out.node_ports(a, svc, old, &name) {
            Ok(()) => Ok(out),
            Err(e) => {
                out.rollback(a);
                Err(e)
            }
        }
    }

    fn cluster_ip(
        &mut self,
        a: &mut Allocators,
        svc: &mut Value,
        old: Option<&Value>,
        name: &str,
    ) -> Result<(), ApiError> {
        let is_external_name = svc.pointer("/spec/type").and_then(Value::as_str) == Some("ExternalName");
        let requested = svc.pointer("/spec/clusterIP").and_then(Value::as_str).unwrap_or("").to_string();
        let old_ip = old.and_then(|o| o.pointer("/spec/clusterIP")).and_then(Value::as_str).unwrap_or("").to_string();
        let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) else { return Ok(()) };
        if is_external_name {
            return Ok(());
        }
        if old.is_some() && (requested.is_empty() || requested == old_ip) {
            // An update keeps the allocated address (upstream's patchAllocatedValues).
            if !old_ip.is_empty() {
                spec.insert("clusterIP".into(), json!(old_ip));
                spec.insert("clusterIPs".into(), json!([old_ip]));
            }
            return Ok(());
        }
        if requested == "None" {
            spec.insert("clusterIPs".into(), json!(["None"]));
            return Ok(());
        }
        let ip = if requested.is_empty() {
            a.allocate_ip().map_err(|e| ip_error(name, None, e))?
        } else {
            let ip: Ipv4Addr = requested.parse().map_err(|_| {
                ApiError::invalid(
                    "",
                    "Service",
                    name,
                    vec![Cause::invalid(
                        "spec.clusterIPs",
                        format!("{requested:?}: must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"),
                    )],
                )
            })?;
            a.reserve_ip(ip).map_err(|e| ip_error(name, Some(ip), e))?;
            ip
        };
        self.taken_ips.push(ip.to_string());
        spec.insert("clusterIP".into(), json!(ip.to_string()));
        spec.insert("clusterIPs".into(), json!([ip.to_string()]));
        if !old_ip.is_empty() && old_ip != "None" {
            self.freed_ips.push(old_ip);
        }
        Ok(())
    }

    fn node_ports(
        &mut self,
        a: &mut Allocators,
        svc: &mut Value,
        old: Option<&Value>,
        name: &str,
    ) -> Result<(), ApiError> {
        let old_ports: Vec<(i64, String, u16)> = old
            .and_then(|o| o.pointer("/spec/ports"))
            .and_then(Value::as_array)
            .map(|ps| {
                ps.iter()
                    .filter_map(|p| {
                        let port = p.get("port").and_then(Value::as_i64)?;
                        let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP").to_string();
                        let np = p.get("nodePort").and_then(Value::as_u64).and_then(|n| u16::try_from(n).ok())?;
                        Some((port, proto, np))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let wants = wants_node_ports(svc);
        let mut kept: Vec<u16> = Vec::new();
        if let Some(ports) = svc.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
            for (i, p) in ports.iter_mut().enumerate() {
                let Some(obj) = p.as_object_mut() else { continue };
                if !wants {
                    obj.remove("nodePort");
                    continue;
                }
                let port = obj.get("port").and_then(Value::as_i64).unwrap_or(0);
                let proto = obj.get("protocol").and_then(Value::as_str).unwrap_or("TCP").to_string();
                let field = format!("spec.ports[{i}].nodePort");
                let requested = obj.get("nodePort").and_then(Value::as_u64).filter(|n| *n > 0);
                let previous = old_ports.iter().find(|(p2, pr2, _)| *p2 == port && *pr2 == proto).map(|(_, _, n)| *n);
                let np = match (requested, previous) {
                    (Some(r), Some(prev)) if r == u64::from(prev) => prev,
                    (None, Some(prev)) => prev,
                    (Some(r), _) => {
                        let r = u16::try_from(r).map_err(|_| {
                            ApiError::invalid(
                                "",
                                "Service",
                                name,
                                vec![Cause::invalid(&field, "must be between 1 and 65535, inclusive")],
                            )
                        })?;
                        a.reserve_port(r).map_err(|e| invalid(name, &field, &r.to_string(), e.to_string()))?;
                        self.taken_ports.push(r);
                        r
                    }
                    (None, None) => {
                        let n = a.allocate_port().map_err(|e| invalid(name, &field, "0", e.to_string()))?;
                        self.taken_ports.push(n);
                        n
                    }
                };
                kept.push(np);
                obj.insert("nodePort".into(), json!(np));
            }
        }
        for (_, _, np) in old_ports {
            if !kept.contains(&np) {
                self.freed_ports.push(np);
            }
        }
        Ok(())
    }

    /// The write failed or was a dry run: give back what was taken.
    pub fn rollback(&self, a: &mut Allocators) {
        for ip in &self.taken_ips {
            a.release_ip(ip);
        }
        for p in &self.taken_ports {
            a.release_port(*p);
        }
    }

    /// The write committed: release what the Service no longer holds.
    pub fn commit(&self, a: &mut Allocators) {
        for ip in &self.freed_ips {
            a.release_ip(ip);
        }
        for p in &self.freed_ports {
            a.release_port(*p);
        }
    }
}

/// A Service was deleted: free all it held.
pub fn release_all(a: &mut Allocators, svc: &Value) {
    for ip in ipalloc::cluster_ips(svc) {
        a.release_ip(&ip);
    }
    for p in ipalloc::node_ports(svc) {
        a.release_port(p);
    }
}
