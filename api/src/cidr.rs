//! IPv4 and IPv6 CIDRs (`10.244.0.0/16`, `fd00::/64`): the one parser and the arithmetic every
//! component uses (Service ranges, node IPAM, pod IPs, validation of `podCIDR`).
//!
//! Grammar (Go's `net.ParseCIDR`): `<address>/<prefix>` where the address is an IPv4 or IPv6
//! address as `std::net` reads it and the prefix is decimal digits (no sign) not beyond the
//! address width. [`Cidr::parse_sloppy`] clears host bits as Go's `ParseCIDR` does for the
//! network it returns; [`Cidr::parse`] (also `FromStr`) refuses them, as a canonical range must.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// A network `address/prefix` with the host bits cleared, IPv4 or IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// The network address as a number (IPv4 in the low 32 bits).
    network: u128,
    prefix: u8,
    v4: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CidrError {
    /// Not `address/prefix`, a bad address or a bad prefix length.
    Syntax(String),
    /// A valid CIDR with host bits set; `network` is the one meant.
    HostBits { given: String, network: Cidr },
    /// An IPv6 CIDR where only IPv4 will do.
    NotIpv4(String),
}

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CidrError::Syntax(s) => write!(f, "{s:?} is not a CIDR (want e.g. 10.244.0.0/16 or fd00::/64)"),
            CidrError::HostBits { given, network } => {
                write!(f, "{given:?} has host bits set (did you mean {network}?)")
            }
            CidrError::NotIpv4(s) => write!(f, "{s:?} is not an IPv4 CIDR (want a.b.c.d/n)"),
        }
    }
}

impl std::error::Error for CidrError {}

impl Cidr {
    /// The network of `addr` with prefix length `prefix` (host bits cleared); `None` when the
    /// prefix is longer than the address.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Cidr> {
        let (bits, v4) = match addr {
            IpAddr::V4(a) => (u128::from(u32::from(a)), true),
            IpAddr::V6(a) => (u128::from(a), false),
        };
        let width = if v4 { 32 } else { 128 };
        (prefix <= width).then(|| Cidr { network: bits & mask(width, prefix), prefix, v4 })
    }

    /// Parses `address/prefix`, clearing host bits (`10.96.0.1/12` is `10.96.0.0/12`).
    pub fn parse_sloppy(s: &str) -> Result<Cidr, CidrError> {
        let syntax = || CidrError::Syntax(s.to_string());
        let (addr, prefix) = s.split_once('/').ok_or_else(syntax)?;
        let addr: IpAddr = addr.parse().map_err(|_| syntax())?;
        if prefix.is_empty() || !prefix.bytes().all(|c| c.is_ascii_digit()) {
            return Err(syntax());
        }
        let prefix: u8 = prefix.parse().map_err(|_| syntax())?;
        Cidr::new(addr, prefix).ok_or_else(syntax)
    }

    /// Parses `address/prefix` whose host bits are all zero.
    pub fn parse(s: &str) -> Result<Cidr, CidrError> {
        let cidr = Cidr::parse_sloppy(s)?;
        let (addr, _) = s.split_once('/').unwrap_or_default();
        if addr.parse::<IpAddr>().ok() != Some(cidr.network()) {
            return Err(CidrError::HostBits { given: s.to_string(), network: cidr });
        }
        Ok(cidr)
    }

    /// [`Cidr::parse`], IPv4 only.
    pub fn parse_ipv4(s: &str) -> Result<Cidr, CidrError> {
        Cidr::parse(s)?.require_ipv4(s)
    }

    /// [`Cidr::parse_sloppy`], IPv4 only.
    pub fn parse_sloppy_ipv4(s: &str) -> Result<Cidr, CidrError> {
        Cidr::parse_sloppy(s)?.require_ipv4(s)
    }

    fn require_ipv4(self, s: &str) -> Result<Cidr, CidrError> {
        if self.v4 {
            Ok(self)
        } else {
            Err(CidrError::NotIpv4(s.to_string()))
        }
    }

    pub fn is_ipv4(&self) -> bool {
        self.v4
    }

    /// Address width in bits: 32 or 128.
    pub fn width(&self) -> u8 {
        if self.v4 {
            32
        } else {
            128
        }
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    fn addr(&self, bits: u128) -> IpAddr {
        if self.v4 {
            IpAddr::V4(Ipv4Addr::from(bits as u32))
        } else {
            IpAddr::V6(Ipv6Addr::from(bits))
        }
    }

    fn bits_of(&self, ip: IpAddr) -> Option<u128> {
        match ip {
            IpAddr::V4(a) if self.v4 => Some(u128::from(u32::from(a))),
            IpAddr::V6(a) if !self.v4 => Some(u128::from(a)),
            _ => None,
        }
    }

    /// The network address (first of the range).
    pub fn network(&self) -> IpAddr {
        self.addr(self.network)
    }

    /// The last address of the range (the broadcast address for IPv4).
    pub fn last(&self) -> IpAddr {
        self.addr(self.network | self.host_mask())
    }

    /// The host bits of the range (the largest offset inside it).
    fn host_mask(&self) -> u128 {
        !mask(self.width(), self.prefix) & mask(self.width(), self.width())
    }

    /// Number of addresses, network and broadcast included; `u128::MAX` for `::/0`.
    pub fn size(&self) -> u128 {
        let host = u32::from(self.width() - self.prefix);
        1u128.checked_shl(host).unwrap_or(u128::MAX)
    }

    /// `ip`'s distance from the network address, if it is inside (and of the same family).
    pub fn offset(&self, ip: IpAddr) -> Option<u128> {
        let bits = self.bits_of(ip)?;
        (bits & mask(self.width(), self.prefix) == self.network).then(|| bits - self.network)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.offset(ip).is_some()
    }

    /// True when `other` lies wholly inside this range.
    pub fn contains_cidr(&self, other: &Cidr) -> bool {
        self.v4 == other.v4 && other.prefix >= self.prefix && self.contains(other.network())
    }

    /// The address at `offset` from the network address, if inside.
    pub fn nth(&self, offset: u128) -> Option<IpAddr> {
        (offset <= self.host_mask()).then(|| self.addr(self.network + offset))
    }

    /// The `index`-th subnet of prefix length `prefix` inside this network.
    pub fn subnet(&self, prefix: u8, index: u128) -> Option<Cidr> {
        if prefix < self.prefix || prefix > self.width() {
            return None;
        }
        let count = 1u128.checked_shl(u32::from(prefix - self.prefix)).unwrap_or(u128::MAX);
        if index >= count {
            return None;
        }
        let step = 1u128.checked_shl(u32::from(self.width() - prefix)).unwrap_or(0); // 0: only index 0
        Some(Cidr { network: self.network + index * step, prefix, v4: self.v4 })
    }
}

/// The mask of `prefix` leading ones in an address of `width` bits (in the low bits of a u128).
fn mask(width: u8, prefix: u8) -> u128 {
    let ones = if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix)) };
    ones >> (128 - u32::from(width))
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Cidr::parse(s)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network(), self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn parses_and_prints() {
        // (input, sloppy, strict). Comments mark inputs the old per-crate parsers disagreed on
        // (K = kubelet, I = node IPAM, V = apiserver validation, S = --service-cidr via ipnet).
        let cases: &[(&str, Option<&str>, Option<&str>)] = &[
            ("10.244.1.0/24", Some("10.244.1.0/24"), Some("10.244.1.0/24")),
            ("0.0.0.0/0", Some("0.0.0.0/0"), Some("0.0.0.0/0")),
            ("10.0.0.1/32", Some("10.0.0.1/32"), Some("10.0.0.1/32")),
            ("10.244.3.7/16", Some("10.244.0.0/16"), None), // K refused host bits; I, V, S took them
            ("fd00::/64", Some("fd00::/64"), Some("fd00::/64")), // K, I, S: IPv4 only (still so, by their callers)
            ("2001:db8::1/64", Some("2001:db8::/64"), None),
            ("::/0", Some("::/0"), Some("::/0")),
            ("::1/128", Some("::1/128"), Some("::1/128")),
            ("10.0.0.0/024", Some("10.0.0.0/24"), Some("10.0.0.0/24")),
            ("10.0.0.0/+24", None, None), // K, I, V read the sign (Rust's u8 parse); Go does not
            (" 10.0.0.0/8", None, None),  // I trimmed whitespace (it still trims its flag)
            ("10.0.0.0/8 ", None, None),
            ("10.244.1.0", None, None),
            ("10.244.1.0/33", None, None),
            ("fd00::/129", None, None),
            ("10.244.0/16", None, None),
            ("x/24", None, None),
            ("10.0.0.0/", None, None),
            ("/8", None, None),
            ("", None, None),
        ];
        for (input, sloppy, strict) in cases {
            let got = Cidr::parse_sloppy(input).map(|c| c.to_string()).ok();
            assert_eq!(got.as_deref(), *sloppy, "sloppy {input:?}");
            let got = input.parse::<Cidr>().map(|c| c.to_string()).ok();
            assert_eq!(got.as_deref(), *strict, "strict {input:?}");
        }
        assert_eq!(
            Cidr::parse("10.244.1.1/24").unwrap_err().to_string(),
            "\"10.244.1.1/24\" has host bits set (did you mean 10.244.1.0/24?)"
        );
        assert!(matches!(Cidr::parse_ipv4("fd00::/64"), Err(CidrError::NotIpv4(_))));
        assert!(matches!(Cidr::parse_sloppy_ipv4("fd00::1/64"), Err(CidrError::NotIpv4(_))));
        assert_eq!(Cidr::parse_sloppy_ipv4("10.96.0.1/12").map(|c| c.to_string()), Ok("10.96.0.0/12".to_string()));
    }

    #[test]
    fn subnets_and_membership() {
        let c: Cidr = "10.244.0.0/16".parse().expect("cidr");
        assert_eq!(c.subnet(24, 0).map(|s| s.to_string()).as_deref(), Some("10.244.0.0/24"));
        assert_eq!(c.subnet(24, 255).map(|s| s.to_string()).as_deref(), Some("10.244.255.0/24"));
        assert_eq!(c.subnet(24, 256), None);
        assert_eq!(c.subnet(8, 0), None);
        assert_eq!(c.subnet(33, 0), None);
        assert!(c.contains(ip("10.244.3.7")));
        assert!(!c.contains(ip("10.245.0.1")));
        assert!(!c.contains(ip("::ffff:10.244.3.7")));
        assert_eq!(c.size(), 65536);
        assert_eq!(c.nth(257), Some(ip("10.244.1.1")));
        assert_eq!(c.nth(65536), None);
        assert_eq!(c.offset(ip("10.244.1.1")), Some(257));
        assert_eq!(c.network(), ip("10.244.0.0"));
        assert_eq!(c.last(), ip("10.244.255.255"));
        assert!(c.contains_cidr(&"10.244.5.128/25".parse().expect("cidr")));
        assert!(!c.contains_cidr(&"10.0.0.0/8".parse().expect("cidr")));

        let all4: Cidr = "0.0.0.0/0".parse().expect("cidr");
        assert_eq!((all4.size(), all4.last()), (1 << 32, ip("255.255.255.255")));
        let host: Cidr = "10.0.0.1/32".parse().expect("cidr");
        assert_eq!((host.size(), host.last(), host.nth(1)), (1, ip("10.0.0.1"), None));

        let v6: Cidr = "fd00::/64".parse().expect("cidr");
        assert_eq!(v6.size(), 1 << 64);
        assert_eq!(v6.nth(2), Some(ip("fd00::2")));
        assert_eq!(v6.last(), ip("fd00::ffff:ffff:ffff:ffff"));
        assert_eq!(v6.subnet(80, 3), Some("fd00:0:0:0:3::/80".parse().expect("cidr")));
        assert!(!v6.contains(ip("10.0.0.1")));
        let all6: Cidr = "::/0".parse().expect("cidr");
        assert_eq!((all6.size(), all6.last()), (u128::MAX, ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
        assert_eq!(all6.subnet(0, 0), Some(all6));
    }
}
