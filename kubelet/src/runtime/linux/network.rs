//! The single-node pod network, over rtnetlink: a bridge (`skiff0`) holding the node's gateway
//! address of the podCIDR, and for each pod a veth pair — one end on the bridge, the other moved
//! into the pod's network namespace as `eth0` with the pod's IP and a default route through the
//! gateway. Pods on one node reach each other over the bridge; the node reaches them through its
//! address on the bridge. (Routes to other nodes and masquerading belong to the networking issue.)

use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::path::Path;

use futures::TryStreamExt;
use rtnetlink::{Handle, LinkBridge, LinkUnspec, LinkVeth, RouteMessageBuilder};

use super::netns;
use crate::runtime::PodNetwork;

/// The node bridge (DESIGN §8).
pub const BRIDGE: &str = "skiff0";

#[derive(Debug, thiserror::Error)]
#[error("{action}: {message}")]
pub struct NetError {
    pub action: String,
    pub message: String,
}

fn net_err<E: std::fmt::Display>(action: impl Into<String>) -> impl FnOnce(E) -> NetError {
    let action = action.into();
    move |e| NetError { action, message: e.to_string() }
}

/// The host end of a sandbox's veth: `veth` + the first 11 characters of its id (interface names
/// are at most 15 bytes).
pub fn host_veth_name(sandbox_id: &str) -> String {
    let short: String = sandbox_id.chars().filter(char::is_ascii_alphanumeric).take(11).collect();
    format!("veth{short}")
}

fn connect() -> Result<Handle, NetError> {
    let (conn, handle, _) = rtnetlink::new_connection().map_err(net_err("open a netlink socket"))?;
    tokio::spawn(conn);
    Ok(handle)
}

async fn link_index(handle: &Handle, name: &str) -> Result<Option<u32>, NetError> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(msg)) => Ok(Some(msg.header.index)),
        Ok(None) => Ok(None),
        // ENODEV: no such link.
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => Ok(None),
        Err(e) => Err(net_err(format!("look up {name}"))(e)),
    }
}

async fn has_address(handle: &Handle, index: u32, ip: IpAddr) -> Result<bool, NetError> {
    let mut addrs = handle.address().get().set_link_index_filter(index).execute();
    while let Some(msg) = addrs.try_next().await.map_err(net_err("list addresses"))? {
        for attr in &msg.attributes {
            if let rtnetlink::packet_route::address::AddressAttribute::Address(a) = attr {
                if *a == ip {
                    return Ok(true);
                }
            }
        }
    }
    Ok(false)
}

/// The node's side: the bridge with the gateway address, created once and kept.
pub struct NodeNetwork {
    handle: Handle,
    /// One bridge setup at a time (pods start in parallel; the first makes the bridge).
    bridge: tokio::sync::Mutex<()>,
}

impl NodeNetwork {
    pub fn new() -> Result<Self, NetError> {
        Ok(NodeNetwork { handle: connect()?, bridge: tokio::sync::Mutex::new(()) })
    }

    /// Makes sure the bridge exists, is up and holds `gateway/prefix_len`.
    pub async fn ensure_bridge(&self, gateway: IpAddr, prefix_len: u8) -> Result<u32, NetError> {
        let _one = self.bridge.lock().await;
        let index = match link_index(&self.handle, BRIDGE).await? {
            Some(i) => i,
            None => {
                match self.handle.link().add(LinkBridge::new(BRIDGE).build()).execute().await {
                    Ok(()) => {}
                    // Another pod's setup made it meanwhile.
                    Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EEXIST => {}
                    Err(e) => return Err(net_err(format!("create the bridge {BRIDGE}"))(e)),
                }
                link_index(&self.handle, BRIDGE).await?.ok_or_else(|| NetError {
                    action: format!("create the bridge {BRIDGE}"),
                    message: "vanished".into(),
                })?
            }
        };
        if !has_address(&self.handle, index, gateway).await? {
            match self.handle.address().add(index, gateway, prefix_len).execute().await {
                Ok(()) => {}
                Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EEXIST => {}
                Err(e) => return Err(net_err(format!("add {gateway}/{prefix_len} to {BRIDGE}"))(e)),
            }
        }
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(net_err(format!("set {BRIDGE} up")))?;
        Ok(index)
    }

    /// Wires a pod: a veth pair from the bridge into the pinned network namespace `netns`, where
    /// it becomes `eth0` with the pod's address and default route. Returns the host end's name.
    pub async fn attach(&self, sandbox_id: &str, netns_path: &Path, net: &PodNetwork) -> Result<String, NetError> {
        let bridge = self.ensure_bridge(net.gateway, net.prefix_len).await?;
        let host = host_veth_name(sandbox_id);
        let peer = format!("p{}", &host[4..]);
        // A leftover of an earlier attempt with the same id.
        self.detach(sandbox_id).await?;
        self.handle
            .link()
            .add(LinkVeth::new(&host, &peer).build())
            .execute()
            .await
            .map_err(net_err(format!("create the veth pair {host}")))?;
        let peer_index = link_index(&self.handle, &peer).await?.ok_or_else(|| NetError {
            action: format!("create the veth pair {host}"),
            message: "peer missing".into(),
        })?;
        let ns_file = std::fs::File::open(netns_path).map_err(net_err(format!("open {}", netns_path.display())))?;
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(peer_index).setns_by_fd(ns_file.as_raw_fd()).build())
            .execute()
            .await
            .map_err(net_err("move the veth into the pod's network namespace"))?;
        drop(ns_file);
        let host_index = link_index(&self.handle, &host).await?.ok_or_else(|| NetError {
            action: format!("create the veth pair {host}"),
            message: "host end missing".into(),
        })?;
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(host_index).controller(bridge).up().build())
            .execute()
            .await
            .map_err(net_err(format!("attach {host} to {BRIDGE}")))?;
        configure_pod_side(netns_path, &peer, net).await?;
        Ok(host)
    }

    /// Removes a pod's veth (its peer in the pod goes with it); idempotent.
    pub async fn detach(&self, sandbox_id: &str) -> Result<(), NetError> {
        let host = host_veth_name(sandbox_id);
        if let Some(index) = link_index(&self.handle, &host).await? {
            match self.handle.link().del(index).execute().await {
                Ok(()) => {}
                Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => {}
                Err(e) => return Err(net_err(format!("delete {host}"))(e)),
            }
        }
        Ok(())
    }
}

/// Inside the pod: `lo` up; the veth renamed `eth0`, addressed, up; the default route.
async fn configure_pod_side(netns_path: &Path, peer: &str, net: &PodNetwork) -> Result<(), NetError> {
    let runtime = tokio::runtime::Handle::current();
    let (conn, handle) = netns::in_netns(netns_path, move || {
        let _guard = runtime.enter();
        let (conn, handle, _) = rtnetlink::new_connection()?;
        Ok((conn, handle))
    })
    .map_err(net_err("open a netlink socket in the pod"))?;
    let task = tokio::spawn(conn);
    let result = async {
        if let Some(lo) = link_index(&handle, "lo").await? {
            handle
                .link()
                .set(LinkUnspec::new_with_index(lo).up().build())
                .execute()
                .await
                .map_err(net_err("set lo up"))?;
        }
        let index = link_index(&handle, peer).await?.ok_or_else(|| NetError {
            action: "configure eth0".into(),
            message: format!("{peer} is not in the pod"),
        })?;
        handle
            .link()
            .set(LinkUnspec::new_with_index(index).name("eth0".to_string()).build())
            .execute()
            .await
            .map_err(net_err("rename the pod's interface to eth0"))?;
        handle
            .address()
            .add(index, net.ip, net.prefix_len)
            .execute()
            .await
            .map_err(net_err(format!("add {}/{} to eth0", net.ip, net.prefix_len)))?;
        handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(net_err("set eth0 up"))?;
        let route = match (net.gateway, net.ip) {
            (IpAddr::V4(gw), IpAddr::V4(_)) => {
                RouteMessageBuilder::<std::net::Ipv4Addr>::new().gateway(gw).output_interface(index).build()
            }
            (IpAddr::V6(gw), IpAddr::V6(_)) => {
                RouteMessageBuilder::<std::net::Ipv6Addr>::new().gateway(gw).output_interface(index).build()
            }
            _ => {
                return Err(NetError {
                    action: "add the default route".into(),
                    message: "the gateway and the pod IP are of different families".into(),
                })
            }
        };
        handle
            .route()
            .add(route)
            .execute()
            .await
            .map_err(net_err(format!("add the default route via {}", net.gateway)))?;
        Ok(())
    }
    .await;
    drop(handle);
    task.abort();
    result
}

/// The pod's `/etc/hosts`, as the kubelet writes it (`Kubernetes-managed hosts file`).
pub fn hosts_file(ip: Option<IpAddr>, hostname: &str, fqdn: Option<&str>) -> String {
    let mut s = String::from(
        "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n",
    );
    if let Some(ip) = ip {
        match fqdn {
            Some(f) => s.push_str(&format!("{ip}\t{f}\t{hostname}\n")),
            None => s.push_str(&format!("{ip}\t{hostname}\n")),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn veth_names_fit_in_an_interface_name() {
        let n = host_veth_name("0123456789abcdef0123");
        assert_eq!(n, "veth0123456789a");
        assert!(n.len() <= 15);
        assert_eq!(host_veth_name("ab"), "vethab");
    }

    #[test]
    fn hosts_file_names_the_pod() {
        let h =
            hosts_file(Some("10.244.0.5".parse().expect("ip")), "web-0", Some("web-0.web.default.svc.cluster.local"));
        assert!(h.starts_with("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"));
        assert!(h.ends_with("10.244.0.5\tweb-0.web.default.svc.cluster.local\tweb-0\n"), "{h}");
        assert!(!hosts_file(None, "x", None).contains("\tx\n"));
    }
}
