//! The kernel host routes bgplb owns: one per address, through the network's bridge.
//!
//! bgplb marks its routes with a route protocol number of its own and never
//! lists, replaces or deletes a route with another number.

use std::net::IpAddr;

use futures::TryStreamExt;
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteProtocol};
use rtnetlink::{Handle, IpVersion};

use crate::netdev::{errno, ignore_errno};

const ESRCH: i32 = 3;
const ENOENT: i32 = 2;
const EEXIST: i32 = 17;

/// Errors of the route layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to {action} route {dst}")]
    Netlink {
        action: &'static str,
        dst: String,
        #[source]
        source: Box<rtnetlink::Error>,
    },
    #[error("a route to {0} that bgplb did not make is in the way (`ip route show {0}`: another route protocol, or an earlier ROUTE_PROTOCOL of bgplb's); bgplb leaves it alone")]
    Conflict(IpAddr),
}

/// A host route owned by bgplb.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedRoute {
    pub dst: IpAddr,
    pub oif: u32,
}

/// Lists, adds and deletes bgplb's host routes in the main table.
#[derive(Clone)]
pub struct Routes {
    handle: Handle,
    protocol: u8,
}

impl Routes {
    /// Routes tagged with `protocol` are bgplb's.
    pub fn new(handle: Handle, protocol: u8) -> Self {
        Self { handle, protocol }
    }

    /// Every host route (/32 or /128) with bgplb's protocol number.
    pub async fn list(&self) -> Result<Vec<OwnedRoute>, Error> {
        let mut owned = Vec::new();
        for version in [IpVersion::V4, IpVersion::V6] {
            let msgs: Vec<RouteMessage> = self
                .handle
                .route()
                .get(version)
                .execute()
                .try_collect()
                .await
                .map_err(|source| Error::Netlink {
                    action: "list",
                    dst: "*".into(),
                    source: Box::new(source),
                })?;
            owned.extend(msgs.iter().filter_map(|m| self.owned(m)));
        }
        Ok(owned)
    }

    /// Adds the host route to `dst` through link `oif`. It is never a replace:
    /// the kernel would replace anybody's route to `dst`, whatever its protocol.
    /// A route of bgplb's to `dst` through another link must be deleted first.
    pub async fn add(&self, dst: IpAddr, oif: u32) -> Result<(), Error> {
        let add = self
            .handle
            .route()
            .add()
            .output_interface(oif)
            .protocol(self.proto());
        let result = match dst {
            IpAddr::V4(a) => add.v4().destination_prefix(a, 32).execute().await,
            IpAddr::V6(a) => add.v6().destination_prefix(a, 128).execute().await,
        };
        if result.as_ref().err().and_then(errno) == Some(EEXIST) {
            // The same route of ours would have been listed and not planned;
            // what is in the way is somebody else's.
            return Err(Error::Conflict(dst));
        }
        result.map_err(|source| Error::Netlink {
            action: "add",
            dst: dst.to_string(),
            source: Box::new(source),
        })
    }

    /// Deletes bgplb's host route to `dst` through `oif`; a route already gone is success.
    pub async fn delete(&self, route: &OwnedRoute) -> Result<(), Error> {
        let mut msg = RouteMessage::default();
        msg.header.protocol = self.proto();
        msg.header.table = netlink_packet_route::route::RouteHeader::RT_TABLE_MAIN;
        msg.header.address_family = match route.dst {
            IpAddr::V4(_) => netlink_packet_route::AddressFamily::Inet,
            IpAddr::V6(_) => netlink_packet_route::AddressFamily::Inet6,
        };
        msg.header.destination_prefix_length = if route.dst.is_ipv4() { 32 } else { 128 };
        let address = match route.dst {
            IpAddr::V4(a) => RouteAddress::Inet(a),
            IpAddr::V6(a) => RouteAddress::Inet6(a),
        };
        msg.attributes.push(RouteAttribute::Destination(address));
        msg.attributes.push(RouteAttribute::Oif(route.oif));
        let deleted = self.handle.route().del(msg).execute().await;
        let deleted = ignore_errno(ignore_errno(deleted, ESRCH), ENOENT);
        deleted.map_err(|source| Error::Netlink {
            action: "delete",
            dst: route.dst.to_string(),
            source: Box::new(source),
        })
    }

    fn proto(&self) -> RouteProtocol {
        RouteProtocol::from(self.protocol)
    }

    fn owned(&self, msg: &RouteMessage) -> Option<OwnedRoute> {
        if msg.header.protocol != self.proto() {
            return None;
        }
        let mut dst = None;
        let mut oif = None;
        for attr in &msg.attributes {
            match attr {
                RouteAttribute::Destination(RouteAddress::Inet(a)) => dst = Some(IpAddr::V4(*a)),
                RouteAttribute::Destination(RouteAddress::Inet6(a)) => dst = Some(IpAddr::V6(*a)),
                RouteAttribute::Oif(i) => oif = Some(*i),
                _ => {}
            }
        }
        let full = if dst?.is_ipv4() { 32 } else { 128 };
        (msg.header.destination_prefix_length == full).then(|| OwnedRoute {
            dst: dst.unwrap(),
            oif: oif.unwrap_or(0),
        })
    }
}
