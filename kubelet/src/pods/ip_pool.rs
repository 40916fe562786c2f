//! Pod IPs from the node's podCIDR, host-local style: `.1` is the node bridge's gateway, pods get
//! `.2` up to the last address before broadcast. Allocation is next-fit (a cursor that moves
//! on), so a released IP is not handed out again until the range wraps; an IP held by a live pod
//! is never handed out twice, even across a podCIDR change.

use std::collections::HashMap;
use std::net::IpAddr;

use api::cidr::Cidr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("the node has no podCIDR yet")]
    NoCidr,
    #[error("podCIDR {0} has no free address")]
    Exhausted(Cidr),
}

/// The IPs of one node's pods, keyed by pod uid.
#[derive(Debug, Default)]
pub struct IpPool {
    cidr: Option<Cidr>,
    by_owner: HashMap<String, IpAddr>,
    owner_of: HashMap<IpAddr, String>,
    /// Offset in the CIDR where the next search starts.
    cursor: u128,
}

impl IpPool {
    pub fn cidr(&self) -> Option<Cidr> {
        self.cidr
    }

    /// Switches the range new IPs come from; IPs already handed out stay reserved.
    pub fn set_cidr(&mut self, cidr: Cidr) {
        if self.cidr != Some(cidr) {
            self.cidr = Some(cidr);
            self.cursor = 2;
        }
    }

    /// The gateway (first host address) of the current range.
    pub fn gateway(&self) -> Option<IpAddr> {
        self.cidr.and_then(|c| c.nth(1))
    }

    /// The IP of `owner`: the one it already has, else `preferred` when free and in range, else
    /// the next free one.
    pub fn allocate(&mut self, owner: &str, preferred: Option<IpAddr>) -> Result<IpAddr, PoolError> {
        if let Some(ip) = self.by_owner.get(owner) {
            return Ok(*ip);
        }
        let cidr = self.cidr.ok_or(PoolError::NoCidr)?;
        let (first, last) = (2u128, cidr.size().saturating_sub(2));
        if last < first {
            return Err(PoolError::Exhausted(cidr));
        }
        if let Some(ip) = preferred {
            let in_range = cidr.offset(ip).is_some_and(|offset| (first..=last).contains(&offset));
            if in_range && !self.owner_of.contains_key(&ip) {
                self.take(owner, ip);
                return Ok(ip);
            }
        }
        let span = last - first + 1;
        let start = self.cursor.clamp(first, last);
        for i in 0..span {
            let offset = first + (start - first + i) % span;
            let Some(ip) = cidr.nth(offset) else { continue };
            if !self.owner_of.contains_key(&ip) {
                self.cursor = if offset == last { first } else { offset + 1 };
                self.take(owner, ip);
                return Ok(ip);
            }
        }
        Err(PoolError::Exhausted(cidr))
    }

    /// Records that `owner` already holds `ip` (a sandbox adopted at start), whatever the range;
    /// false if another owner holds it, or `owner` holds a different one.
    pub fn reserve(&mut self, owner: &str, ip: IpAddr) -> bool {
        if let Some(held) = self.by_owner.get(owner) {
            return *held == ip;
        }
        if self.owner_of.contains_key(&ip) {
            return false;
        }
        self.take(owner, ip);
        true
    }

    fn take(&mut self, owner: &str, ip: IpAddr) {
        self.by_owner.insert(owner.to_string(), ip);
        self.owner_of.insert(ip, owner.to_string());
    }

    /// Frees the IP of `owner` (no-op if it has none).
    pub fn release(&mut self, owner: &str) {
        if let Some(ip) = self.by_owner.remove(owner) {
            self.owner_of.remove(&ip);
        }
    }

    pub fn in_use(&self) -> usize {
        self.by_owner.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(cidr: &str) -> IpPool {
        let mut p = IpPool::default();
        p.set_cidr(cidr.parse().expect("cidr"));
        p
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn without_cidr_nothing_is_allocated() {
        assert_eq!(IpPool::default().allocate("a", None), Err(PoolError::NoCidr));
    }

    #[test]
    fn skips_network_gateway_and_broadcast() {
        let mut p = pool("10.244.1.0/29");
        assert_eq!(p.gateway(), Some(ip("10.244.1.1")));
        let got: Vec<_> = (0..5).map(|i| p.allocate(&format!("p{i}"), None)).collect();
        let want: Vec<Result<IpAddr, PoolError>> =
            ["10.244.1.2", "10.244.1.3", "10.244.1.4", "10.244.1.5", "10.244.1.6"].iter().map(|s| Ok(ip(s))).collect();
        assert_eq!(got, want);
        assert!(matches!(p.allocate("p5", None), Err(PoolError::Exhausted(_))));
    }

    #[test]
    fn same_owner_same_ip_and_no_immediate_reuse() {
        let mut p = pool("10.244.1.0/24");
        let a = p.allocate("a", None);
        assert_eq!(p.allocate("a", None), a);
        p.release("a");
        // Next-fit: the released .2 is not handed out right away.
        assert_eq!(p.allocate("b", None), Ok(ip("10.244.1.3")));
        assert_eq!(p.in_use(), 1);
    }

    #[test]
    fn wraps_around_to_released_addresses() {
        let mut p = pool("10.0.0.0/30"); // one usable pod address: .2
        assert_eq!(p.allocate("a", None), Ok(ip("10.0.0.2")));
        assert!(p.allocate("b", None).is_err());
        p.release("a");
        assert_eq!(p.allocate("b", None), Ok(ip("10.0.0.2")));
    }

    #[test]
    fn preferred_ip_only_when_free_and_in_range() {
        let mut p = pool("10.244.1.0/24");
        assert_eq!(p.allocate("a", Some(ip("10.244.1.77"))), Ok(ip("10.244.1.77")));
        // Taken, the gateway, out of range, broadcast: fall back to next-fit.
        for (owner, pref) in [("b", "10.244.1.77"), ("c", "10.244.1.1"), ("d", "10.9.9.9"), ("e", "10.244.1.255")] {
            let got = p.allocate(owner, Some(ip(pref)));
            assert!(matches!(got, Ok(a) if a != ip(pref)), "{owner}: {got:?}");
        }
    }

    #[test]
    fn live_ips_survive_a_cidr_change() {
        let mut p = pool("10.0.0.0/30");
        assert_eq!(p.allocate("a", None), Ok(ip("10.0.0.2")));
        p.set_cidr("10.0.0.0/29".parse().expect("cidr"));
        assert_eq!(p.allocate("b", None), Ok(ip("10.0.0.3")));
        assert_eq!(p.allocate("a", None), Ok(ip("10.0.0.2")));
    }

    #[test]
    fn reserved_ips_of_adopted_sandboxes_are_kept() {
        // Before the podCIDR is known (the kubelet adopts sandboxes at start).
        let mut p = IpPool::default();
        assert!(p.reserve("a", ip("10.0.0.2")));
        assert!(p.reserve("a", ip("10.0.0.2")), "idempotent");
        assert!(!p.reserve("a", ip("10.0.0.3")), "a holds another");
        assert!(!p.reserve("b", ip("10.0.0.2")), "held by a");
        p.set_cidr("10.0.0.0/29".parse().expect("cidr"));
        assert_eq!(p.allocate("a", None), Ok(ip("10.0.0.2")));
        assert_eq!(p.allocate("b", None), Ok(ip("10.0.0.3")));
        p.release("a");
        assert!(p.reserve("c", ip("10.0.0.2")));
    }
}
