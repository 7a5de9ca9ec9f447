//! The planner: a pure function from desired and actual state to the actions
//! that turn one into the other, in a safe order.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// What Docker's state says should exist on this host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Desired {
    /// Bridges of bgplb's networks.
    pub bridges: BTreeSet<String>,
    /// Other links of bgplb's (veth host ends) that must be kept.
    pub keep_links: BTreeSet<String>,
    /// Veth host ends of running containers → the bridge they must be an up port of.
    pub ports: BTreeMap<String, String>,
    /// Host routes: address → bridge. Present while a container on it runs.
    pub routes: BTreeMap<IpAddr, String>,
    /// Announcements: address → next hop. Present while a container on it is
    /// healthy and not draining.
    pub announce: BTreeMap<IpAddr, IpAddr>,
}

/// What the kernel and the BGP speaker hold now (only what is bgplb's).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actual {
    /// Links named like bgplb's bridges and veths.
    pub links: BTreeSet<String>,
    /// bgplb's host routes: (address, device name).
    pub routes: BTreeSet<(IpAddr, String)>,
    /// Veth host ends that exist → the bridge they are an up port of, if any.
    pub ports: BTreeMap<String, Option<String>>,
    /// Paths this speaker originates: address → next hop. `None` when the
    /// speaker could not be asked; then no BGP action is planned.
    pub paths: Option<BTreeMap<IpAddr, Option<IpAddr>>>,
}

/// One idempotent step. The declaration order is the order of application:
/// bridges first, then their ports; withdraw before removing a route, so that
/// traffic still in flight is delivered; add a route before announcing it;
/// links last.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Action {
    EnsureBridge(String),
    /// Puts an existing veth back on its bridge and sets it up. A veth that
    /// is gone cannot be made again: its other end was the container's.
    AttachPort {
        link: String,
        bridge: String,
    },
    Withdraw(IpAddr),
    DeleteRoute {
        dst: IpAddr,
        dev: String,
    },
    AddRoute {
        dst: IpAddr,
        dev: String,
    },
    Announce {
        dst: IpAddr,
        next_hop: IpAddr,
    },
    DeleteLink(String),
}

impl Action {
    /// A short name of the action's kind, for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::EnsureBridge(_) => "ensure_bridge",
            Action::AttachPort { .. } => "attach_port",
            Action::Withdraw(_) => "withdraw",
            Action::DeleteRoute { .. } => "delete_route",
            Action::AddRoute { .. } => "add_route",
            Action::Announce { .. } => "announce",
            Action::DeleteLink(_) => "delete_link",
        }
    }
}

/// The actions that make `actual` match `desired`, sorted in application order.
pub fn plan(desired: &Desired, actual: &Actual) -> Vec<Action> {
    let mut actions = Vec::new();

    for bridge in desired.bridges.difference(&actual.links) {
        actions.push(Action::EnsureBridge(bridge.clone()));
    }
    for link in &actual.links {
        if !desired.bridges.contains(link) && !desired.keep_links.contains(link) {
            actions.push(Action::DeleteLink(link.clone()));
        }
    }

    for (link, bridge) in &desired.ports {
        if actual
            .ports
            .get(link)
            .is_some_and(|on| on.as_ref() != Some(bridge))
        {
            actions.push(Action::AttachPort {
                link: link.clone(),
                bridge: bridge.clone(),
            });
        }
    }

    for (dst, dev) in &actual.routes {
        if desired.routes.get(dst) != Some(dev) {
            actions.push(Action::DeleteRoute {
                dst: *dst,
                dev: dev.clone(),
            });
        }
    }
    for (dst, dev) in &desired.routes {
        if !actual.routes.contains(&(*dst, dev.clone())) {
            actions.push(Action::AddRoute {
                dst: *dst,
                dev: dev.clone(),
            });
        }
    }

    if let Some(paths) = &actual.paths {
        for dst in paths.keys().filter(|d| !desired.announce.contains_key(d)) {
            actions.push(Action::Withdraw(*dst));
        }
        for (dst, next_hop) in &desired.announce {
            if paths.get(dst) != Some(&Some(*next_hop)) {
                actions.push(Action::Announce {
                    dst: *dst,
                    next_hop: *next_hop,
                });
            }
        }
    }

    actions.sort();
    actions
}

#[cfg(test)]
mod tests;
