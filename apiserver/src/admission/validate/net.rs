//! IP address and CIDR checks with upstream messages.

use std::net::IpAddr;

/// Upstream `IsValidIP` message.
pub const IP_MSG: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";
/// Upstream `IsValidCIDR` message.
pub const CIDR_MSG: &str = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)";

pub fn ip(s: &str) -> Option<IpAddr> {
    s.parse().ok()
}

/// Upstream `IsValidCIDR`: IPv4 or IPv6, host bits allowed.
pub fn is_cidr(s: &str) -> bool {
    api::cidr::Cidr::parse_sloppy(s).is_ok()
}

/// Addresses an endpoint may not use (upstream `validateNonSpecialIP`).
pub fn special_ip_msg(a: IpAddr) -> Option<&'static str> {
    if a.is_unspecified() {
        return Some("may not be unspecified (0.0.0.0)");
    }
    if a.is_loopback() {
        return Some("may not be in the loopback range (127.0.0.0/8, ::1/128)");
    }
    let link_local = match a {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    };
    if link_local {
        return Some("may not be in the link-local range (169.254.0.0/16, fe80::/10)");
    }
    if a.is_multicast() {
        return Some("may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)");
    }
    None
}
