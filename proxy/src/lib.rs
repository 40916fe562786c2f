//! The Service proxy: programs Service virtual IPs in nftables.
//!
//! Not built yet: it arrives with the networking issue.
