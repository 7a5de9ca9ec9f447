//! Desired state: what Docker's snapshot, the drain set and the settings say
//! the kernel and the BGP speaker should hold. A pure function.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use super::plan::Desired;
use crate::docker::{ContainerView, Health, Snapshot};
use crate::netdev;

/// The next hop to announce per address family; a family without one is not announced.
#[derive(Debug, Clone, Copy)]
pub struct NextHops {
    pub v4: Option<IpAddr>,
    pub v6: Option<IpAddr>,
}

impl NextHops {
    fn for_addr(&self, addr: IpAddr) -> Option<IpAddr> {
        if addr.is_ipv4() {
            self.v4
        } else {
            self.v6
        }
    }
}

/// Why an address is announced: for log lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub network: String,
    pub container: String,
}

/// Containers announced in the last pass, by id and start time.
pub type Announcing = HashSet<(String, String)>;

/// Whether routers should send this container traffic: healthy, or running
/// without a health check, and not draining.
///
/// `starting` keeps what the last pass decided for the same run of the
/// container: a container starts as `starting` and is not announced until
/// healthy, but one that was healthy reads `starting` again when dockerd
/// restarts with live-restore (20.10 restores an old health status and runs
/// no probe again), and that is no news of a failure.
pub fn should_announce(c: &ContainerView, drained: &HashSet<String>, was: &Announcing) -> bool {
    let healthy = match c.health {
        Health::Healthy | Health::None => true,
        Health::Starting => was.contains(&(c.id.clone(), c.started_at.clone())),
        Health::Unhealthy => false,
    };
    c.running && !c.paused && healthy && !drained.contains(&c.id)
}

/// The containers [`should_announce`] picks now, for the next pass's `was`.
pub fn announcing(snapshot: &Snapshot, drained: &HashSet<String>, was: &Announcing) -> Announcing {
    snapshot
        .containers
        .iter()
        .filter(|c| should_announce(c, drained, was))
        .map(|c| (c.id.clone(), c.started_at.clone()))
        .collect()
}

/// Desired state, and the owner of each address for log lines.
///
/// The kernel route follows the endpoint (a running container is attached);
/// the announcement follows health and drain. When two networks claim the same
/// address, the first one listed wins.
pub fn desired(
    snapshot: &Snapshot,
    drained: &HashSet<String>,
    was: &Announcing,
    cut_off: &HashSet<String>,
    next_hops: NextHops,
) -> (Desired, HashMap<IpAddr, Owner>) {
    let mut d = Desired::default();
    let mut owners = HashMap::new();
    let networks: HashMap<&str, _> = snapshot
        .networks
        .iter()
        .map(|n| (n.id.as_str(), n))
        .collect();
    for n in &snapshot.networks {
        d.bridges.insert(netdev::bridge_name(&n.id));
    }
    for c in snapshot.containers.iter().filter(|c| c.running) {
        let healthy = should_announce(c, drained, was);
        for (network_id, endpoint_id) in &c.endpoints {
            let Some(network) = networks.get(network_id.as_str()) else {
                continue;
            };
            // Without its veth the host cannot deliver to the container.
            let announce = healthy && !cut_off.contains(endpoint_id);
            let bridge = netdev::bridge_name(network_id);
            let veth = netdev::veth_names(endpoint_id).0;
            d.keep_links.insert(veth.clone());
            d.ports.insert(veth, bridge.clone());
            for vip in &network.vips {
                d.routes.entry(*vip).or_insert_with(|| bridge.clone());
                let owner = Owner {
                    network: network.name.clone(),
                    container: c.name.clone(),
                };
                let hop = next_hops.for_addr(*vip);
                if let (true, Some(hop)) = (announce, hop) {
                    d.announce.entry(*vip).or_insert(hop);
                    owners.insert(*vip, owner);
                } else {
                    owners.entry(*vip).or_insert(owner);
                }
            }
        }
    }
    (d, owners)
}

/// Endpoints of running containers that the host cannot deliver to: their
/// veth (host end) is gone, down, or not a port of their network's bridge, or
/// that bridge is gone or down. Made by hand, say: Docker does not notice,
/// and the container runs on, cut off, until it restarts or is reconnected.
pub fn undeliverable(snapshot: &Snapshot, links: &[netdev::Link]) -> HashSet<String> {
    let by_name: HashMap<&str, &netdev::Link> =
        links.iter().map(|l| (l.name.as_str(), l)).collect();
    let delivers = |network: &str, endpoint: &str| {
        let bridge = by_name.get(netdev::bridge_name(network).as_str());
        let veth = by_name.get(netdev::veth_names(endpoint).0.as_str());
        match (bridge, veth) {
            (Some(b), Some(v)) => b.up && v.up && v.controller == Some(b.index),
            _ => false,
        }
    };
    snapshot
        .containers
        .iter()
        .filter(|c| c.running)
        .flat_map(|c| &c.endpoints)
        .filter(|(network, endpoint)| !delivers(network, endpoint))
        .map(|(_, endpoint)| endpoint.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::NetworkView;

    const NET: &str = "0123456789abcdef";

    fn hops() -> NextHops {
        NextHops {
            v4: Some("198.51.100.1".parse().unwrap()),
            v6: None,
        }
    }

    fn snapshot(containers: Vec<ContainerView>) -> Snapshot {
        let network = NetworkView {
            id: NET.into(),
            name: "web".into(),
            driver: "bgplb".into(),
            vips: vec!["203.0.113.10".parse().unwrap()],
        };
        Snapshot {
            networks: vec![network],
            containers,
            ..Default::default()
        }
    }

    fn container(id: &str, running: bool, health: Health) -> ContainerView {
        ContainerView {
            id: id.into(),
            name: format!("c-{id}"),
            running,
            paused: false,
            started_at: "2026-12-03T18:00:00Z".into(),
            health,
            endpoints: if running {
                vec![(NET.into(), format!("ep{id}"))]
            } else {
                vec![]
            },
        }
    }

    fn vip() -> IpAddr {
        "203.0.113.10".parse().unwrap()
    }

    #[test]
    fn healthy_container_is_routed_and_announced() {
        let (d, owners) = desired(
            &snapshot(vec![container("1", true, Health::Healthy)]),
            &HashSet::new(),
            &Announcing::new(),
            &HashSet::new(),
            hops(),
        );
        assert_eq!(d.routes.get(&vip()), Some(&"bgplb-012345678".to_string()));
        assert_eq!(
            d.announce.get(&vip()),
            Some(&"198.51.100.1".parse().unwrap())
        );
        assert!(d.keep_links.contains("vblep1"));
        assert_eq!(owners[&vip()].container, "c-1");
    }

    #[test]
    fn unhealthy_or_starting_container_is_routed_but_not_announced() {
        for health in [Health::Unhealthy, Health::Starting] {
            let (d, _) = desired(
                &snapshot(vec![container("1", true, health)]),
                &HashSet::new(),
                &Announcing::new(),
                &HashSet::new(),
                hops(),
            );
            assert!(d.routes.contains_key(&vip()));
            assert!(d.announce.is_empty(), "{health:?}");
        }
    }

    #[test]
    fn container_without_health_check_is_announced_while_running() {
        let (d, _) = desired(
            &snapshot(vec![container("1", true, Health::None)]),
            &HashSet::new(),
            &Announcing::new(),
            &HashSet::new(),
            hops(),
        );
        assert!(d.announce.contains_key(&vip()));
    }

    #[test]
    fn stopped_container_reading_unhealthy_has_neither() {
        let (d, _) = desired(
            &snapshot(vec![container("1", false, Health::Unhealthy)]),
            &HashSet::new(),
            &Announcing::new(),
            &HashSet::new(),
            hops(),
        );
        assert!(d.routes.is_empty() && d.announce.is_empty());
        assert!(d.bridges.contains("bgplb-012345678"));
    }

    fn link(index: u32, name: &str, up: bool, controller: Option<u32>) -> netdev::Link {
        netdev::Link {
            index,
            name: name.into(),
            alias: None,
            up,
            controller,
        }
    }

    #[test]
    fn container_the_host_cannot_deliver_to_is_routed_but_not_announced() {
        let s = snapshot(vec![container("1", true, Health::Healthy)]);
        let bridge = |up| link(7, "bgplb-012345678", up, None);
        let veth = |up, on| link(8, "vblep1", up, on);
        assert!(undeliverable(&s, &[bridge(true), veth(true, Some(7))]).is_empty());
        for links in [
            vec![bridge(true)],
            vec![veth(true, Some(7))],
            vec![bridge(false), veth(true, Some(7))],
            vec![bridge(true), veth(false, Some(7))],
            vec![bridge(true), veth(true, None)],
            vec![bridge(true), veth(true, Some(9))],
        ] {
            let missing = undeliverable(&s, &links);
            assert_eq!(missing, HashSet::from(["ep1".to_string()]), "{links:?}");
            let (d, _) = desired(&s, &HashSet::new(), &Announcing::new(), &missing, hops());
            assert!(d.routes.contains_key(&vip()));
            assert!(d.announce.is_empty());
        }
    }

    #[test]
    fn draining_container_is_withdrawn_but_keeps_its_route() {
        let drained = HashSet::from(["1".to_string()]);
        let (d, _) = desired(
            &snapshot(vec![container("1", true, Health::Healthy)]),
            &drained,
            &Announcing::new(),
            &HashSet::new(),
            hops(),
        );
        assert!(d.routes.contains_key(&vip()));
        assert!(d.announce.is_empty());
    }

    #[test]
    fn one_healthy_replica_is_enough_to_announce() {
        let s = snapshot(vec![
            container("1", true, Health::Unhealthy),
            container("2", true, Health::Healthy),
        ]);
        let (d, owners) = desired(
            &s,
            &HashSet::new(),
            &Announcing::new(),
            &HashSet::new(),
            hops(),
        );
        assert!(d.announce.contains_key(&vip()));
        assert_eq!(owners[&vip()].container, "c-2");
    }

    #[test]
    fn paused_container_keeps_its_route_but_is_withdrawn() {
        let mut c = container("1", true, Health::Healthy);
        c.paused = true;
        let (d, _) = desired(
            &snapshot(vec![c]),
            &HashSet::new(),
            &Announcing::new(),
            &HashSet::new(),
            hops(),
        );
        assert!(d.routes.contains_key(&vip()));
        assert!(d.announce.is_empty());
    }

    #[test]
    fn starting_again_after_being_healthy_keeps_the_announcement() {
        let s = snapshot(vec![container("1", true, Health::Starting)]);
        let was: Announcing = [("1".to_string(), "2026-12-03T18:00:00Z".to_string())].into();
        let (d, _) = desired(&s, &HashSet::new(), &was, &HashSet::new(), hops());
        assert!(d.announce.contains_key(&vip()));
        assert_eq!(announcing(&s, &HashSet::new(), &was), was);
    }

    #[test]
    fn starting_after_a_restart_waits_for_healthy() {
        let s = snapshot(vec![container("1", true, Health::Starting)]);
        let earlier_run: Announcing =
            [("1".to_string(), "2026-12-03T17:00:00Z".to_string())].into();
        let (d, _) = desired(&s, &HashSet::new(), &earlier_run, &HashSet::new(), hops());
        assert!(d.announce.is_empty());
        assert!(announcing(&s, &HashSet::new(), &earlier_run).is_empty());
    }

    #[test]
    fn address_family_without_next_hop_is_not_announced() {
        let mut s = snapshot(vec![container("1", true, Health::Healthy)]);
        s.networks[0].vips = vec!["2001:db8::10".parse().unwrap()];
        let (d, _) = desired(
            &s,
            &HashSet::new(),
            &Announcing::new(),
            &HashSet::new(),
            hops(),
        );
        assert_eq!(d.routes.len(), 1);
        assert!(d.announce.is_empty());
    }
}
