//! IPv4 CIDR arithmetic: parsing a node's podCIDR and carving per-node subnets out of `--pod-cidr`.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 network `address/prefix` with the host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    network: u32,
    prefix: u8,
}

impl Ipv4Cidr {
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Option<Self> {
        (prefix <= 32).then(|| Ipv4Cidr { network: u32::from(addr) & mask(prefix), prefix })
    }

    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.network)
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Number of addresses, network and broadcast included.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == self.network
    }

    /// The address at `offset` from the network address, if inside.
    pub fn nth(&self, offset: u64) -> Option<Ipv4Addr> {
        if offset >= self.size() {
            return None;
        }
        u32::try_from(offset).ok().map(|o| Ipv4Addr::from(self.network + o))
    }

    /// The `index`-th subnet of prefix length `prefix` inside this network.
    pub fn subnet(&self, prefix: u8, index: u64) -> Option<Ipv4Cidr> {
        if prefix < self.prefix || prefix > 32 {
            return None;
        }
        let count = 1u64 << (prefix - self.prefix);
        if index >= count {
            return None;
        }
        let step = 1u64 << (32 - u32::from(prefix));
        let start = u64::from(self.network) + index * step;
        u32::try_from(start).ok().map(|n| Ipv4Cidr { network: n, prefix })
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

impl FromStr for Ipv4Cidr {
    type Err = String;

    /// Parses `a.b.c.d/n`; host bits must be zero, as Kubernetes requires of a podCIDR.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = s.split_once('/').ok_or_else(|| format!("{s:?} is not a CIDR (want a.b.c.d/n)"))?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| format!("{s:?}: {addr:?} is not an IPv4 address"))?;
        let prefix: u8 = prefix.parse().ok().filter(|p| *p <= 32).ok_or_else(|| format!("{s:?}: bad prefix length"))?;
        let cidr = Ipv4Cidr::new(addr, prefix).ok_or_else(|| format!("{s:?}: bad prefix length"))?;
        if cidr.network() != addr {
            return Err(format!("{s:?} has host bits set (did you mean {cidr}?)"));
        }
        Ok(cidr)
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network(), self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let cases = [
            ("10.244.1.0/24", Ok("10.244.1.0/24")),
            ("0.0.0.0/0", Ok("0.0.0.0/0")),
            ("10.0.0.1/32", Ok("10.0.0.1/32")),
            ("10.244.1.1/24", Err(())),
            ("10.244.1.0", Err(())),
            ("10.244.1.0/33", Err(())),
            ("fd00::/64", Err(())),
            ("x/24", Err(())),
        ];
        for (input, want) in cases {
            let got = input.parse::<Ipv4Cidr>().map(|c| c.to_string()).map_err(|_| ());
            assert_eq!(got, want.map(str::to_string), "{input}");
        }
    }

    #[test]
    fn subnets_and_membership() {
        let c: Ipv4Cidr = "10.244.0.0/16".parse().expect("cidr");
        assert_eq!(c.subnet(24, 0).map(|s| s.to_string()).as_deref(), Some("10.244.0.0/24"));
        assert_eq!(c.subnet(24, 255).map(|s| s.to_string()).as_deref(), Some("10.244.255.0/24"));
        assert_eq!(c.subnet(24, 256), None);
        assert_eq!(c.subnet(8, 0), None);
        assert!(c.contains(Ipv4Addr::new(10, 244, 3, 7)));
        assert!(!c.contains(Ipv4Addr::new(10, 245, 0, 1)));
        assert_eq!(c.size(), 65536);
        assert_eq!(c.nth(257), Some(Ipv4Addr::new(10, 244, 1, 1)));
        assert_eq!(c.nth(65536), None);
    }
}
