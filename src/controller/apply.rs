//! Applying planned actions: each one idempotent, in the planner's order.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use super::desired::Owner;
use super::plan::Action;
use super::Controller;
use crate::netdev;
use crate::routes::OwnedRoute;

impl Controller {
    /// Applies actions in order; returns how many failed. An address whose
    /// kernel route could not be added is not announced.
    pub(super) async fn apply(&self, actions: Vec<Action>, context: &ApplyContext) -> usize {
        let mut failed = 0;
        let mut unroutable: BTreeSet<IpAddr> = BTreeSet::new();
        for action in actions {
            if let Action::Announce { dst, .. } = &action {
                if unroutable.contains(dst) {
                    continue;
                }
            }
            let outcome = self.apply_one(&action, context).await;
            let labels = crate::status::ActionLabels {
                action: action.kind(),
                result: if outcome.is_ok() { "ok" } else { "error" },
            };
            self.parts.metrics.actions.get_or_create(&labels).inc();
            if let Err(error) = outcome {
                tracing::warn!(action = ?action, error = %error, "action failed");
                failed += 1;
                if let Action::AddRoute { dst, .. } = action {
                    unroutable.insert(dst);
                }
            }
        }
        failed
    }

    /// A link's index: as observed at the start of the pass, or, for a link
    /// made since (by an earlier action), asked again.
    async fn index(&self, links: &BTreeMap<String, u32>, name: &str) -> Result<u32, String> {
        if let Some(&index) = links.get(name) {
            return Ok(index);
        }
        self.parts
            .netdev
            .index_of(name)
            .await
            .map_err(|e| crate::error_chain(&e))?
            .ok_or(format!("link {name} does not exist"))
    }

    async fn apply_one(&self, action: &Action, context: &ApplyContext) -> Result<(), String> {
        let (owners, links) = (&context.owners, &context.links);
        let p = &self.parts;
        fn chain(e: &(dyn std::error::Error + 'static)) -> String {
            crate::error_chain(e)
        }
        let owner = |dst: &IpAddr| {
            owners.get(dst).cloned().unwrap_or(Owner {
                network: "-".into(),
                container: "-".into(),
            })
        };
        match action {
            Action::EnsureBridge(name) => {
                p.netdev.ensure_bridge(name).await.map_err(|e| chain(&e))?;
            }
            Action::Withdraw(dst) => {
                // gobgpd matches the path by prefix but wants some next hop.
                let next_hop = context
                    .announced
                    .get(dst)
                    .copied()
                    .flatten()
                    .unwrap_or(*dst);
                p.bgp
                    .withdraw(*dst, next_hop)
                    .await
                    .map_err(|e| chain(&e))?;
                let o = owner(dst);
                tracing::info!(vip = %dst, network = %o.network, container = %o.container, "route withdrawn");
            }
            Action::DeleteRoute { dst, dev } => {
                let Some(&oif) = links.get(dev) else {
                    return Ok(());
                };
                p.routes
                    .delete(&OwnedRoute { dst: *dst, oif })
                    .await
                    .map_err(|e| chain(&e))?;
                tracing::info!(vip = %dst, dev = %dev, "kernel route removed");
            }
            Action::AddRoute { dst, dev } => {
                let oif = self.index(links, dev).await?;
                p.routes.add(*dst, oif).await.map_err(|e| chain(&e))?;
                tracing::info!(vip = %dst, dev = %dev, "kernel route added");
            }
            Action::Announce { dst, next_hop } => {
                p.bgp
                    .announce(*dst, *next_hop)
                    .await
                    .map_err(|e| chain(&e))?;
                let o = owner(dst);
                tracing::info!(vip = %dst, next_hop = %next_hop, network = %o.network, container = %o.container, "route announced");
            }
            Action::AttachPort { link, bridge } => {
                let bridge_index = self.index(links, bridge).await?;
                p.netdev
                    .attach(link, bridge_index)
                    .await
                    .map_err(|e| chain(&e))?;
                tracing::info!(link = %link, bridge = %bridge, "veth put back on its bridge");
            }
            Action::DeleteLink(name) => {
                p.netdev.delete(name).await.map_err(|e| chain(&e))?;
                tracing::info!(link = %name, "stale link removed");
            }
        }
        Ok(())
    }
}

/// What applying needs to know besides the actions: for log lines, link
/// indexes, and the next hops paths were announced with.
pub(super) struct ApplyContext {
    pub(super) owners: HashMap<IpAddr, Owner>,
    pub(super) links: BTreeMap<String, u32>,
    pub(super) announced: BTreeMap<IpAddr, Option<IpAddr>>,
}

pub(super) fn links_by_name(links: &[netdev::Link]) -> BTreeMap<String, u32> {
    links.iter().map(|l| (l.name.clone(), l.index)).collect()
}
