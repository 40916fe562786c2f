//! A pod's resolv.conf and hostname, as upstream's kubelet derives them (`pkg/kubelet/network/dns`
//! `GetPodDNS`, `GeneratePodHostNameAndDomain`, `GetNodenameForKernel`).
//!
//! `dnsPolicy`: `ClusterFirst` (the default) names the cluster DNS (10.96.0.10, DESIGN §10), the
//! search path `<ns>.svc.<domain> svc.<domain> <domain>` followed by the host's, and `ndots:5`;
//! `hostNetwork` pods fall back to `Default` under it unless the policy is
//! `ClusterFirstWithHostNet`. `Default` is the host's resolv.conf, `None` is empty. Then
//! `spec.dnsConfig` is appended (options by name, the pod's win), and the result cut to the
//! resolver's limits (3 servers, 32 search domains, 2048 characters).

use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Pod, PodDNSConfigOption};

use super::ConfigError;
use crate::runtime::DnsConfig;

/// The cluster DNS Service address: the 10th of the default service range (DESIGN §10).
pub const CLUSTER_DNS: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 96, 0, 10));
/// The cluster domain.
pub const CLUSTER_DOMAIN: &str = "cluster.local";
/// What `ClusterFirst` puts on the options line.
pub const CLUSTER_OPTIONS: [&str; 1] = ["ndots:5"];
const MAX_SERVERS: usize = 3;
const MAX_SEARCHES: usize = 32;
const MAX_SEARCH_CHARS: usize = 2048;
/// Longer search domains make some resolvers abort (glibc 2.28).
const MAX_SEARCH_DOMAIN: usize = 253;
const MAX_HOSTNAME: usize = 63;
const MAX_FQDN: usize = 64;

/// The cluster's DNS as the kubelet sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDns {
    pub servers: Vec<IpAddr>,
    pub domain: String,
}

impl Default for ClusterDns {
    fn default() -> Self {
        ClusterDns { servers: vec![CLUSTER_DNS], domain: CLUSTER_DOMAIN.to_string() }
    }
}

/// Parses a resolv.conf (upstream `parseResolvConf`): `nameserver` lines add a server, the last
/// `search` line gives the search path (trailing dots dropped, `.` ignored), `options` lines add
/// options (a later one with the same name replaces an earlier one). A line starting with `#` or
/// `;` is a comment.
pub fn parse_resolv_conf(text: &str) -> DnsConfig {
    let mut out = DnsConfig::default();
    for line in text.lines().map(str::trim).filter(|l| !l.starts_with(['#', ';'])) {
        let mut fields = line.split_whitespace();
        match fields.next() {
            Some("nameserver") => out.servers.extend(fields.next().map(str::to_string)),
            Some("search") => {
                out.searches = fields.filter(|s| *s != ".").map(|s| s.trim_end_matches('.').to_string()).collect();
            }
            Some("options") => {
                for o in fields {
                    merge_option(&mut out.options, o.to_string());
                }
            }
            _ => {}
        }
    }
    out
}

fn option_name(o: &str) -> &str {
    o.split_once(':').map_or(o, |(n, _)| n)
}

/// Adds `option` (`name` or `name:value`), replacing one of the same name in place.
fn merge_option(options: &mut Vec<String>, option: String) {
    match options.iter_mut().find(|o| option_name(o) == option_name(&option)) {
        Some(existing) => *existing = option,
        None => options.push(option),
    }
}

fn push_unique(list: &mut Vec<String>, items: impl IntoIterator<Item = String>) {
    for i in items {
        if !list.contains(&i) {
            list.push(i);
        }
    }
}

/// The pod's resolv.conf. `host` is the node's own (parsed from `/etc/resolv.conf`).
pub fn pod_dns(pod: &Pod, cluster: &ClusterDns, host: &DnsConfig) -> DnsConfig {
    let spec = pod.spec.as_ref();
    let host_network = spec.and_then(|s| s.host_network) == Some(true);
    let policy = spec.and_then(|s| s.dns_policy.as_deref()).unwrap_or("ClusterFirst");
    let cluster_first = match policy {
        "None" => None,
        "ClusterFirstWithHostNet" => Some(true),
        "Default" => Some(false),
        // ClusterFirst, and anything validation would have refused.
        _ => Some(!host_network),
    };
    let mut dns = match cluster_first {
        None => DnsConfig::default(),
        Some(false) => host.clone(),
        Some(true) if cluster.servers.is_empty() => host.clone(),
        Some(true) => {
            let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
            let mut searches = Vec::new();
            if !cluster.domain.is_empty() {
                let d = &cluster.domain;
                searches = vec![format!("{namespace}.svc.{d}"), format!("svc.{d}"), d.clone()];
            }
            push_unique(&mut searches, host.searches.iter().cloned());
            DnsConfig {
                servers: cluster.servers.iter().map(IpAddr::to_string).collect(),
                searches,
                options: CLUSTER_OPTIONS.iter().map(|o| o.to_string()).collect(),
            }
        }
    };
    if let Some(extra) = spec.and_then(|s| s.dns_config.as_ref()) {
        push_unique(&mut dns.servers, extra.nameservers.iter().flatten().cloned());
        push_unique(&mut dns.searches, extra.searches.iter().flatten().cloned());
        for o in extra.options.iter().flatten() {
            if let Some(o) = pod_option(o) {
                merge_option(&mut dns.options, o);
            }
        }
    }
    fit_limits(dns)
}

fn pod_option(o: &PodDNSConfigOption) -> Option<String> {
    let name = o.name.as_deref().filter(|n| !n.is_empty())?;
    Some(match o.value.as_deref() {
        Some(v) if !v.is_empty() => format!("{name}:{v}"),
        _ => name.to_string(),
    })
}

/// Upstream `formDNSConfigFitsLimits`.
fn fit_limits(mut dns: DnsConfig) -> DnsConfig {
    dns.servers.truncate(MAX_SERVERS);
    dns.searches.truncate(MAX_SEARCHES);
    dns.searches.retain(|s| s.len() <= MAX_SEARCH_DOMAIN);
    let mut line = dns.searches.join(" ").len();
    while line > MAX_SEARCH_CHARS {
        let Some(last) = dns.searches.pop() else { break };
        line = line.saturating_sub(last.len() + 1);
    }
    dns
}

/// The sandbox's hostname: empty for `hostNetwork` pods; else `spec.hostname` or the pod's name,
/// cut to 63 characters (and trailing `-`/`.`), and `<hostname>.<subdomain>.<ns>.svc.<domain>`
/// with `setHostnameAsFQDN` and a subdomain.
pub fn hostname(pod: &Pod, cluster_domain: &str) -> Result<String, ConfigError> {
    let spec = pod.spec.as_ref();
    if spec.and_then(|s| s.host_network) == Some(true) {
        return Ok(String::new());
    }
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let mut host = spec.and_then(|s| s.hostname.as_deref()).filter(|h| !h.is_empty()).unwrap_or(name).to_string();
    if host.len() > MAX_HOSTNAME {
        // Names are ASCII (DNS labels), so byte offsets are character boundaries.
        let cut = host.get(..MAX_HOSTNAME).unwrap_or(&host).trim_end_matches(['-', '.']).to_string();
        if cut.is_empty() {
            return Err(ConfigError::Hostname(format!("hostname {host:?} cannot be cut to {MAX_HOSTNAME} characters")));
        }
        host = cut;
    }
    let subdomain = spec.and_then(|s| s.subdomain.as_deref()).filter(|s| !s.is_empty());
    let fqdn = spec.and_then(|s| s.set_hostname_as_fqdn) == Some(true);
    if let (true, Some(sub)) = (fqdn, subdomain) {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let full = format!("{host}.{sub}.{ns}.svc.{cluster_domain}");
        if full.len() > MAX_FQDN {
            return Err(ConfigError::Hostname(format!(
                "failed to construct FQDN from pod hostname and cluster domain, FQDN {full} is too long ({MAX_FQDN} characters is the max, {} characters requested)",
                full.len()
            )));
        }
        return Ok(full);
    }
    Ok(host)
}
