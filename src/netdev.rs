//! Network devices: a Linux bridge per bgplb network, a veth pair per endpoint.
//!
//! Every operation is idempotent: creating what exists and deleting what is
//! gone both succeed, so the controller and the plugin handlers can repeat them.

use futures::TryStreamExt;
use netlink_packet_route::link::{LinkAttribute, LinkFlag, LinkMessage};
use rtnetlink::Handle;

/// Prefix of the bridges bgplb creates; the rest of the name is the network id.
pub const BRIDGE_PREFIX: &str = "bgplb-";
/// Prefix of the host end of an endpoint's veth pair.
pub const VETH_HOST_PREFIX: &str = "vbl";
/// Prefix of the container end, renamed by Docker when it moves it.
pub const VETH_PEER_PREFIX: &str = "vcl";
const IFNAMSIZ: usize = 15;
const EEXIST: i32 = 17;
const ENODEV: i32 = 19;

/// Errors of the network device layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to {action} link {name}")]
    Netlink {
        action: &'static str,
        name: String,
        #[source]
        source: Box<rtnetlink::Error>,
    },
    #[error("link {0} does not exist")]
    Missing(String),
}

/// The name of the bridge of a network: at most 15 characters.
pub fn bridge_name(network_id: &str) -> String {
    truncated(BRIDGE_PREFIX, network_id)
}

/// The names (host end, container end) of an endpoint's veth pair.
pub fn veth_names(endpoint_id: &str) -> (String, String) {
    (
        truncated(VETH_HOST_PREFIX, endpoint_id),
        truncated(VETH_PEER_PREFIX, endpoint_id),
    )
}

fn truncated(prefix: &str, id: &str) -> String {
    let room = IFNAMSIZ - prefix.len();
    let id: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(room)
        .collect();
    format!("{prefix}{id}")
}

/// How long the plugin handlers' word on a link outweighs what Docker lists:
/// Docker reports a new network or endpoint only after the driver call
/// returns, and may list a deleted network for a moment after DeleteNetwork.
const FRESH_FOR: std::time::Duration = std::time::Duration::from_secs(60);

type Stamps = std::collections::HashMap<String, std::time::Instant>;

/// Links the plugin handlers created or deleted in the last minute. The
/// controller keeps the created ones although Docker does not list their
/// owners yet, and does not bring back the deleted ones although a snapshot
/// taken a moment earlier still lists their network.
#[derive(Debug, Default)]
pub struct FreshLinks {
    stamps: std::sync::Mutex<(Stamps, Stamps)>,
}

impl FreshLinks {
    /// Protects `name` for the next minute.
    pub fn mark(&self, name: &str) {
        let mut stamps = self.stamps.lock().unwrap_or_else(|e| e.into_inner());
        stamps.1.remove(name);
        stamps.0.insert(name.to_string(), std::time::Instant::now());
    }

    /// Records that `name` was deleted on Docker's request.
    pub fn mark_deleted(&self, name: &str) {
        let mut stamps = self.stamps.lock().unwrap_or_else(|e| e.into_inner());
        stamps.0.remove(name);
        stamps.1.insert(name.to_string(), std::time::Instant::now());
    }

    /// The names created and deleted in the last minute; older ones are forgotten.
    pub fn current(&self) -> (Vec<String>, Vec<String>) {
        let mut stamps = self.stamps.lock().unwrap_or_else(|e| e.into_inner());
        let (created, deleted) = &mut *stamps;
        created.retain(|_, at| at.elapsed() < FRESH_FOR);
        deleted.retain(|_, at| at.elapsed() < FRESH_FOR);
        (
            created.keys().cloned().collect(),
            deleted.keys().cloned().collect(),
        )
    }
}

/// Whether a link name is one bgplb makes (a bridge or a veth host end).
pub fn is_ours(name: &str) -> bool {
    name.starts_with(BRIDGE_PREFIX)
        || (name.starts_with(VETH_HOST_PREFIX) && name.len() == IFNAMSIZ)
}

/// A link as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// The link's alias (`ip link set X alias ...`): bgplb's owner mark.
    pub alias: Option<String>,
    /// Administratively up (`ip link set X up`).
    pub up: bool,
    /// The index of the bridge it is a port of, if any.
    pub controller: Option<u32>,
}

/// Bridges and veths, through rtnetlink. Every link it makes carries an alias
/// naming this bgplb instance, and only links with that mark are ever removed
/// as stale: a second bgplb on the host, or anybody else, keeps its own.
#[derive(Clone)]
pub struct NetDevices {
    handle: Handle,
    owner: String,
}

impl NetDevices {
    /// Wraps an rtnetlink handle whose connection task is already running;
    /// `instance` tells this bgplb from others on the host (its plugin socket
    /// or managed plugin id).
    pub fn new(handle: Handle, instance: &str) -> Self {
        Self {
            handle,
            owner: format!("bgplb {instance}"),
        }
    }

    /// Whether a link was made by this bgplb instance.
    pub fn owns(&self, link: &Link) -> bool {
        link.alias.as_deref() == Some(self.owner.as_str())
    }

    /// Marks a link as this instance's.
    async fn mark_owned(&self, name: &str, index: u32) -> Result<(), Error> {
        let mut request = self.handle.link().set(index);
        request
            .message_mut()
            .attributes
            .push(LinkAttribute::IfAlias(self.owner.clone()));
        request.execute().await.map_err(|source| Error::Netlink {
            action: "mark",
            name: name.into(),
            source: Box::new(source),
        })
    }

    /// Every link in this network namespace.
    pub async fn links(&self) -> Result<Vec<Link>, Error> {
        let msgs: Vec<LinkMessage> = self
            .handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|source| Error::Netlink {
                action: "list",
                name: "*".into(),
                source: Box::new(source),
            })?;
        Ok(msgs.iter().filter_map(to_link).collect())
    }

    /// The index of a link, or `None` when it does not exist.
    pub async fn index_of(&self, name: &str) -> Result<Option<u32>, Error> {
        let found = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute()
            .try_next()
            .await;
        match found {
            Ok(msg) => Ok(msg.map(|m| m.header.index)),
            Err(e) if errno(&e) == Some(ENODEV) => Ok(None),
            Err(source) => Err(Error::Netlink {
                action: "look up",
                name: name.into(),
                source: Box::new(source),
            }),
        }
    }

    /// Creates the bridge when missing and brings it up.
    pub async fn ensure_bridge(&self, name: &str) -> Result<u32, Error> {
        if self.index_of(name).await?.is_none() {
            let added = self
                .handle
                .link()
                .add()
                .bridge(name.to_string())
                .execute()
                .await;
            ignore_errno(added, EEXIST).map_err(|source| Error::Netlink {
                action: "create",
                name: name.into(),
                source: Box::new(source),
            })?;
            tracing::info!(bridge = name, "bridge created");
        }
        let index = self
            .index_of(name)
            .await?
            .ok_or_else(|| Error::Missing(name.into()))?;
        self.mark_owned(name, index).await?;
        self.set_up(name, index).await?;
        Ok(index)
    }

    /// Creates an endpoint's veth pair on `bridge`, host end up; returns the container end's name.
    pub async fn ensure_veth(&self, endpoint_id: &str, bridge: &str) -> Result<String, Error> {
        let (host, peer) = veth_names(endpoint_id);
        let bridge_index = self
            .index_of(bridge)
            .await?
            .ok_or_else(|| Error::Missing(bridge.into()))?;
        if self.index_of(&host).await?.is_none() {
            let added = self
                .handle
                .link()
                .add()
                .veth(host.clone(), peer.clone())
                .execute()
                .await;
            ignore_errno(added, EEXIST).map_err(|source| Error::Netlink {
                action: "create",
                name: host.clone(),
                source: Box::new(source),
            })?;
        }
        self.attach(&host, bridge_index).await?;
        tracing::debug!(veth = %host, peer = %peer, bridge, "veth ready");
        Ok(peer)
    }

    /// Makes an existing link an up port of the bridge with index `bridge`.
    pub async fn attach(&self, name: &str, bridge: u32) -> Result<(), Error> {
        let index = self
            .index_of(name)
            .await?
            .ok_or_else(|| Error::Missing(name.into()))?;
        self.handle
            .link()
            .set(index)
            .controller(bridge)
            .execute()
            .await
            .map_err(|source| Error::Netlink {
                action: "attach",
                name: name.into(),
                source: Box::new(source),
            })?;
        self.mark_owned(name, index).await?;
        self.set_up(name, index).await
    }

    /// Deletes a link by name; a link that is already gone is success.
    pub async fn delete(&self, name: &str) -> Result<(), Error> {
        let Some(index) = self.index_of(name).await? else {
            return Ok(());
        };
        let deleted = self.handle.link().del(index).execute().await;
        ignore_errno(deleted, ENODEV).map_err(|source| Error::Netlink {
            action: "delete",
            name: name.into(),
            source: Box::new(source),
        })
    }

    async fn set_up(&self, name: &str, index: u32) -> Result<(), Error> {
        self.handle
            .link()
            .set(index)
            .up()
            .execute()
            .await
            .map_err(|source| Error::Netlink {
                action: "bring up",
                name: name.into(),
                source: Box::new(source),
            })
    }
}

fn to_link(msg: &LinkMessage) -> Option<Link> {
    let mut name = None;
    let mut alias = None;
    let mut controller = None;
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => name = Some(n.clone()),
            LinkAttribute::IfAlias(a) => alias = Some(a.clone()),
            LinkAttribute::Controller(index) => controller = Some(*index),
            _ => {}
        }
    }
    Some(Link {
        index: msg.header.index,
        name: name?,
        alias,
        up: msg.header.flags.contains(&LinkFlag::Up),
        controller,
    })
}

/// The positive errno of a netlink error, if it is one.
pub fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

/// Treats one errno as success: "exists" on add, "not found" on delete.
pub fn ignore_errno(r: Result<(), rtnetlink::Error>, ok: i32) -> Result<(), rtnetlink::Error> {
    match r {
        Err(e) if errno(&e) == Some(ok) => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_in_ifnamsiz() {
        let id = "f4c1e2d3b4a5968778695a4b3c2d1e0f4c1e2d3b4a5968778695a4b3c2d1e0f";
        assert_eq!(bridge_name(id), "bgplb-f4c1e2d3b");
        let (host, peer) = veth_names(id);
        assert_eq!(host, "vblf4c1e2d3b4a5");
        assert_eq!(peer, "vclf4c1e2d3b4a5");
        assert!(host.len() <= 15 && peer.len() <= 15);
    }

    #[test]
    fn deleting_a_fresh_link_ends_its_protection() {
        let fresh = FreshLinks::default();
        fresh.mark("bgplb-a");
        assert_eq!(fresh.current(), (vec!["bgplb-a".to_string()], vec![]));
        fresh.mark_deleted("bgplb-a");
        assert_eq!(fresh.current(), (vec![], vec!["bgplb-a".to_string()]));
    }

    #[test]
    fn odd_characters_never_reach_an_interface_name() {
        assert_eq!(bridge_name("../a b/c"), "bgplb-abc");
    }
}
