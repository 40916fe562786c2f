//! The node IPAM controller's cluster range cut into equal IPv4 node subnets, addressed by index
//! (upstream `pkg/controller/nodeipam/ipam/cidrset`). CIDRs are read by `api::cidr`.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::Range;

use api::cidr::Cidr;

/// Node subnets are limited to 2^MAX_SUBNET_BITS per range, as upstream limits the difference
/// between the cluster and node mask sizes.
const MAX_SUBNET_BITS: u8 = 24;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("invalid CIDR {0:?}: expected an IPv4 address/prefix")]
    Parse(String),
    #[error("node mask size /{node} must be between the cluster mask /{cluster} and /32 and at most {MAX_SUBNET_BITS} bits longer")]
    MaskSize { cluster: u8, node: u8 },
}

/// Parses `a.b.c.d/n` into the network address (host bits cleared, as upstream reads the
/// cluster CIDR and podCIDRs) and the prefix length.
fn parse(cidr: &str) -> Result<(u32, u8), CidrError> {
    let err = || CidrError::Parse(cidr.to_string());
    let net = Cidr::parse_sloppy_ipv4(cidr).map_err(|_| err())?;
    match net.network() {
        IpAddr::V4(addr) => Ok((u32::from(addr), net.prefix())),
        IpAddr::V6(_) => Err(err()),
    }
}

/// The cluster range cut into subnets of one prefix length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CidrSet {
    base: u32,
    prefix: u8,
    node_prefix: u8,
}

impl CidrSet {
    pub fn new(cluster_cidr: &str, node_mask_size: u8) -> Result<Self, CidrError> {
        let (base, prefix) = parse(cluster_cidr.trim())?; // a flag: surrounding blanks forgiven
        if node_mask_size < prefix || node_mask_size > 32 || node_mask_size - prefix > MAX_SUBNET_BITS {
            return Err(CidrError::MaskSize { cluster: prefix, node: node_mask_size });
        }
        Ok(CidrSet { base, prefix, node_prefix: node_mask_size })
    }

    /// How many node subnets the range holds.
    pub fn capacity(&self) -> u32 {
        1u32 << (self.node_prefix - self.prefix)
    }

    /// The subnet at `index` as `a.b.c.d/n`.
    pub fn cidr_at(&self, index: u32) -> String {
        let step = 1u64 << (32 - u32::from(self.node_prefix));
        let addr = (u64::from(self.base) + u64::from(index) * step) as u32;
        format!("{}/{}", Ipv4Addr::from(addr), self.node_prefix)
    }

    /// The indices of the subnets that `cidr` overlaps (empty when it lies outside the range or
    /// does not parse). A node subnet of another size marks every subnet it touches as used.
    pub fn covered(&self, cidr: &str) -> Range<u32> {
        let Ok((addr, len)) = parse(cidr) else { return 0..0 };
        let start = u64::from(addr);
        let end = start + (1u64 << (32 - u32::from(len))); // exclusive
        let lo = u64::from(self.base);
        let hi = lo + (1u64 << (32 - u32::from(self.prefix)));
        let (start, end) = (start.max(lo), end.min(hi));
        if start >= end {
            return 0..0;
        }
        let shift = 32 - u32::from(self.node_prefix);
        let first = ((start - lo) >> shift) as u32;
        let last = ((end - 1 - lo) >> shift) as u32;
        first..last + 1
    }

    /// The first index not in `used`, searching round-robin from `start` (as upstream does, so a
    /// released subnet is not handed out again at once).
    pub fn first_free(&self, used: &HashSet<u32>, start: u32) -> Option<u32> {
        let cap = self.capacity();
        (0..cap).map(|i| (start.wrapping_add(i)) % cap).find(|i| !used.contains(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ipv4_and_clears_host_bits() {
        // The grammar itself is api::cidr's (tested there); here: IPv4 only, host bits cleared.
        assert_eq!(parse("10.244.3.7/16"), Ok((u32::from(Ipv4Addr::new(10, 244, 0, 0)), 16)));
        assert_eq!(parse("0.0.0.0/0"), Ok((0, 0)));
        for bad in ["10.244.0.0", "10.244.0.0/33", "fd00::/64", "x/8", ""] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(CidrSet::new(" 10.244.0.0/16 ", 24).map(|s| s.capacity()), Ok(256));
        assert!(CidrSet::new("fd00::/64", 80).is_err());
    }

    #[test]
    fn cuts_the_range() {
        let set = CidrSet::new("10.244.0.0/16", 24).unwrap();
        assert_eq!(set.capacity(), 256);
        assert_eq!(set.cidr_at(0), "10.244.0.0/24");
        assert_eq!(set.cidr_at(1), "10.244.1.0/24");
        assert_eq!(set.cidr_at(255), "10.244.255.0/24");
        let small = CidrSet::new("192.168.0.0/24", 26).unwrap();
        assert_eq!(small.capacity(), 4);
        assert_eq!(small.cidr_at(3), "192.168.0.192/26");
        assert_eq!(CidrSet::new("10.0.0.0/8", 32).unwrap().capacity(), 1 << 24);
    }

    #[test]
    fn rejects_bad_mask_sizes() {
        assert!(CidrSet::new("10.244.0.0/16", 15).is_err());
        assert!(CidrSet::new("10.244.0.0/16", 33).is_err());
        assert!(CidrSet::new("0.0.0.0/0", 25).is_err());
        assert!(CidrSet::new("10.244.0.0/16", 16).is_ok());
    }

    #[test]
    fn finds_covered_subnets() {
        let set = CidrSet::new("10.244.0.0/16", 24).unwrap();
        let cases = [
            ("10.244.5.0/24", 5..6),
            ("10.244.5.128/25", 5..6),
            ("10.244.4.0/23", 4..6),
            ("10.244.0.0/16", 0..256),
            ("10.0.0.0/8", 0..256),
            ("10.245.0.0/24", 0..0),
            ("garbage", 0..0),
        ];
        for (cidr, want) in cases {
            assert_eq!(set.covered(cidr), want, "{cidr}");
        }
    }

    #[test]
    fn allocates_round_robin_and_reports_full() {
        let set = CidrSet::new("10.0.0.0/30", 32).unwrap();
        let mut used = HashSet::new();
        assert_eq!(set.first_free(&used, 0), Some(0));
        used.extend([0, 1]);
        assert_eq!(set.first_free(&used, 1), Some(2));
        assert_eq!(set.first_free(&used, 3), Some(3));
        used.insert(3);
        assert_eq!(set.first_free(&used, 3), Some(2));
        used.insert(2);
        assert_eq!(set.first_free(&used, 0), None);
    }
}
