//! Service ClusterIP and NodePort allocation. The allocation state is derived from the stored
//! Services at start-up and kept in memory; an allocation is released when its Service is
//! deleted or its write fails, so no address or port is ever handed out twice.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use api::cidr::Cidr;
use serde_json::Value;

use crate::storage::Store;
use crate::{Error, Opts};

/// The address of the `kubernetes` Service: the first address of the range.
pub fn first_service_ip(net: &Cidr) -> Ipv4Addr {
    Ipv4Addr::from(bounds(net).0.saturating_add(1))
}

/// The network and broadcast addresses of an IPv4 range (`--service-cidr` is read as IPv4 only;
/// an IPv6 range would be empty here).
fn bounds(net: &Cidr) -> (u32, u32) {
    match (net.network(), net.last()) {
        (IpAddr::V4(network), IpAddr::V4(broadcast)) => (u32::from(network), u32::from(broadcast)),
        _ => (1, 0),
    }
}

pub struct Allocators {
    net: Cidr,
    ips: BTreeSet<u32>,
    ip_cursor: u32,
    ports: (u16, u16),
    used_ports: BTreeSet<u16>,
    port_cursor: u16,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AllocError {
    #[error("failed to allocate a serviceIP: range is full")]
    IpRangeFull,
    #[error("failed to allocate a nodePort: range is full")]
    PortRangeFull,
    #[error("the provided IP ({0}) is not in the valid range. The range of valid IPs is {1}")]
    IpOutOfRange(String, String),
    #[error("provided IP is already allocated")]
    IpInUse,
    #[error("provided port is not in the valid range. The range of valid ports is {0}-{1}")]
    PortOutOfRange(u16, u16),
    #[error("provided port is already allocated")]
    PortInUse,
}

fn parse_port_range(s: &str) -> Option<(u16, u16)> {
    let (a, b) = s.split_once('-')?;
    let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a <= b && a > 0).then_some((a, b))
}

impl Allocators {
    pub fn new(net: Cidr, ports: (u16, u16)) -> Self {
        Allocators {
            net,
            ips: BTreeSet::new(),
            ip_cursor: bounds(&net).0.saturating_add(2),
            ports,
            used_ports: BTreeSet::new(),
            port_cursor: ports.0,
        }
    }

    /// The allocator with every address and port of the stored Services marked used.
    pub fn from_store(store: &Store, opts: &Opts) -> Result<Self, Error> {
        let ports = parse_port_range(&opts.service_node_port_range).ok_or_else(|| {
            Error::Setup(format!("--service-node-port-range {:?}: want FIRST-LAST", opts.service_node_port_range))
        })?;
        let mut a = Allocators::new(opts.service_cidr, ports);
        let (_, services, _) = store.list("/registry/services/", None, usize::MAX, &|_| true);
        for svc in services {
            let v = svc.value()?;
            for ip in cluster_ips(&v) {
                if let Ok(ip) = ip.parse::<Ipv4Addr>() {
                    if a.net.contains(IpAddr::V4(ip)) {
                        a.ips.insert(u32::from(ip));
                    }
                }
            }
            for p in node_ports(&v) {
                a.used_ports.insert(p);
            }
        }
        Ok(a)
    }

    pub fn range(&self) -> String {
        self.net.to_string()
    }

    fn first(&self) -> u32 {
        bounds(&self.net).0.saturating_add(1)
    }
    fn last(&self) -> u32 {
        bounds(&self.net).1.saturating_sub(1)
    }

    pub fn allocate_ip(&mut self) -> Result<Ipv4Addr, AllocError> {
        let (first, last) = (self.first(), self.last());
        if first > last {
            return Err(AllocError::IpRangeFull);
        }
        let span = u64::from(last - first) + 1;
        let mut candidate = self.ip_cursor.clamp(first, last);
        for _ in 0..span {
            if !self.ips.contains(&candidate) {
                self.ips.insert(candidate);
                self.ip_cursor = if candidate >= last { first } else { candidate + 1 };
                return Ok(Ipv4Addr::from(candidate));
            }
            candidate = if candidate >= last { first } else { candidate + 1 };
        }
        Err(AllocError::IpRangeFull)
    }

    pub fn reserve_ip(&mut self, ip: Ipv4Addr) -> Result<(), AllocError> {
        let n = u32::from(ip);
        if n < self.first() || n > self.last() {
            return Err(AllocError::IpOutOfRange(ip.to_string(), self.range()));
        }
        if !self.ips.insert(n) {
            return Err(AllocError::IpInUse);
        }
        Ok(())
    }

    pub fn release_ip(&mut self, ip: &str) {
        if let Ok(ip) = ip.parse::<Ipv4Addr>() {
            self.ips.remove(&u32::from(ip));
        }
    }

    pub fn allocate_port(&mut self) -> Result<u16, AllocError> {
        let (lo, hi) = self.ports;
        let mut p = self.port_cursor.clamp(lo, hi);
        for _ in 0..=(hi - lo) {
            if self.used_ports.insert(p) {
                self.port_cursor = if p >= hi { lo } else { p + 1 };
                return Ok(p);
            }
            p = if p >= hi { lo } else { p + 1 };
        }
        Err(AllocError::PortRangeFull)
    }

    pub fn reserve_port(&mut self, port: u16) -> Result<(), AllocError> {
        if port < self.ports.0 || port > self.ports.1 {
            return Err(AllocError::PortOutOfRange(self.ports.0, self.ports.1));
        }
        if !self.used_ports.insert(port) {
            return Err(AllocError::PortInUse);
        }
        Ok(())
    }

    pub fn release_port(&mut self, port: u16) {
        self.used_ports.remove(&port);
    }
}

/// `spec.clusterIP` and `spec.clusterIPs` of a Service, without `None` and empty values.
pub fn cluster_ips(svc: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if let Some(ip) = svc.pointer("/spec/clusterIP").and_then(Value::as_str) {
        out.push(ip.to_string());
    }
    if let Some(ips) = svc.pointer("/spec/clusterIPs").and_then(Value::as_array) {
        for ip in ips.iter().filter_map(Value::as_str) {
            if !out.iter().any(|o| o == ip) {
                out.push(ip.to_string());
            }
        }
    }
    out.retain(|ip| !ip.is_empty() && ip != "None");
    out
}

/// The node ports a Service holds.
pub fn node_ports(svc: &Value) -> Vec<u16> {
    svc.pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|ports| {
            ports
                .iter()
                .filter_map(|p| p.get("nodePort").and_then(Value::as_u64))
                .filter_map(|p| u16::try_from(p).ok())
                .filter(|p| *p > 0)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alloc() -> Allocators {
        Allocators::new("10.96.0.0/29".parse().unwrap_or_else(|_| unreachable!()), (30000, 30002))
    }

    #[test]
    fn ips_are_unique_until_released() {
        let mut a = alloc();
        let mut got = Vec::new();
        // /29: .1 is the kubernetes Service's, .7 broadcast; .1–.6 usable.
        while let Ok(ip) = a.allocate_ip() {
            got.push(ip);
        }
        assert_eq!(got.len(), 6);
        let mut dedup = got.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), 6);
        assert_eq!(a.allocate_ip(), Err(AllocError::IpRangeFull));
        a.release_ip("10.96.0.3");
        assert_eq!(a.allocate_ip(), Ok(Ipv4Addr::new(10, 96, 0, 3)));
    }

    #[test]
    fn reservations_check_range_and_use() {
        let mut a = alloc();
        assert!(a.reserve_ip(Ipv4Addr::new(10, 96, 0, 1)).is_ok());
        assert_eq!(a.reserve_ip(Ipv4Addr::new(10, 96, 0, 1)), Err(AllocError::IpInUse));
        assert!(matches!(a.reserve_ip(Ipv4Addr::new(10, 97, 0, 1)), Err(AllocError::IpOutOfRange(..))));
        assert_eq!(a.reserve_port(30001), Ok(()));
        assert_eq!(a.reserve_port(30001), Err(AllocError::PortInUse));
        assert_eq!(a.reserve_port(80), Err(AllocError::PortOutOfRange(30000, 30002)));
        assert_eq!(a.allocate_port(), Ok(30000));
        assert_eq!(a.allocate_port(), Ok(30002));
        assert_eq!(a.allocate_port(), Err(AllocError::PortRangeFull));
    }
}
