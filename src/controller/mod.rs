//! The controller: one task that owns bgplb's state and runs the reconcile loop.
//!
//! ```text
//!  docker events ──────┐
//!  gobgpd supervisor ──┤                      ┌──> kernel: bridges, veths, routes
//!  plugin handlers ────┼─ mpsc<Msg> ─> loop ──┤
//!  drain timers ───────┘    ^          │      └──> gobgpd: peers, paths (gRPC)
//!        ^                  └─ resync ─┤
//!        └──────── drain started ──────┘
//! ```
//!
//! Each pass observes Docker, the kernel and gobgpd afresh, plans the
//! difference ([`plan::plan`]) and applies it. Messages only say "look again";
//! bursts of them are coalesced into one pass.

mod apply;
pub mod desired;
pub mod plan;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::Instrument;

use crate::bgp::process::SpeakerEvent;
use crate::bgp::speaker::{self, SpeakerConfig};
use crate::bgp::BgpClient;
use crate::config::{DrainAction, DrainConfig};
use crate::docker::{Backoff, Docker, Event, Snapshot, WatchMessage};
use crate::netdev::{self, FreshLinks, NetDevices};
use crate::routes::Routes;
use crate::stopped;
use desired::{NextHops, Owner};
use plan::Actual;

/// SIGUSR2 as Docker's `kill` event spells it: the number on x86-64 and arm64
/// Linux; the names too, in case a daemon ever reports them.
const SIGUSR2: [&str; 3] = ["12", "SIGUSR2", "USR2"];

/// Every veth host end, with the bridge it is an up port of.
fn ports(links: &[netdev::Link]) -> BTreeMap<String, Option<String>> {
    let names: HashMap<u32, &str> = links.iter().map(|l| (l.index, l.name.as_str())).collect();
    links
        .iter()
        .filter(|l| l.name.starts_with(netdev::VETH_HOST_PREFIX) && netdev::is_ours(&l.name))
        .map(|l| {
            let bridge = l.controller.and_then(|i| names.get(&i)).filter(|_| l.up);
            (l.name.clone(), bridge.map(|b| b.to_string()))
        })
        .collect()
}

/// How long after a network attachment changes a pass looks once more.
const SETTLE_DELAY: Duration = Duration::from_secs(1);

/// How long past its delay a drain read back after a restart still ends in
/// SIGTERM: long enough for a restart of bgplb, short of its never having run.
const DRAIN_OVERDUE: Duration = Duration::from_secs(30);

/// How far back Docker's event history is searched for drains after a restart.
const DRAIN_MEMORY: Duration = Duration::from_secs(3600);

/// Containers drained (a SIGUSR2 `kill`) and not started again since, with
/// the time of the drain, from events oldest first.
fn drains_in(events: &[Event]) -> Vec<(String, i64)> {
    let mut drained: Vec<(String, i64)> = Vec::new();
    for e in events.iter().filter(|e| e.kind == "container") {
        drained.retain(|(id, _)| id != &e.id);
        if e.action == "kill" && e.signal.as_deref().is_some_and(|s| SIGUSR2.contains(&s)) {
            drained.push((e.id.clone(), e.time));
        }
    }
    drained
}

/// What the controller is told. None carries state: each only asks for a pass
/// or names the thing whose state to re-read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// Something changed; look again.
    Trigger(&'static str),
    /// A network was created through this plugin: its driver name is ours.
    NetworkCreated(String),
    /// From the Docker event watcher.
    Docker(WatchMessage),
    /// From the gobgpd supervisor.
    Speaker(SpeakerEvent),
    /// A drained container's delay is over.
    DrainDue(String),
}

impl From<WatchMessage> for Msg {
    fn from(m: WatchMessage) -> Self {
        Msg::Docker(m)
    }
}

impl From<SpeakerEvent> for Msg {
    fn from(e: SpeakerEvent) -> Self {
        Msg::Speaker(e)
    }
}

/// Why a pass did not finish; it is retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error("failed to observe docker")]
    Docker(#[from] crate::docker::Error),
    #[error("failed to observe links")]
    Links(#[from] netdev::Error),
    #[error("failed to observe routes")]
    Routes(#[from] crate::routes::Error),
    #[error("failed to learn the managed plugin's name")]
    Identity(#[from] crate::identity::Error),
    #[error("docker does not list managed plugin {0}")]
    UnknownPlugin(String),
    #[error("bgp speaker is not ready")]
    Speaker(#[source] crate::bgp::Error),
    #[error("{0} of the planned actions failed")]
    Actions(usize),
}

/// Settings of the controller.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// Docker driver names whose networks are bgplb's.
    pub drivers: HashSet<String>,
    /// The managed plugin bgplb runs in, whose name is still to be looked up.
    pub plugin_id: Option<String>,
    pub docker_socket: std::path::PathBuf,
    pub drain: Option<DrainConfig>,
    pub next_hops: NextHops,
    pub resync: Duration,
    pub speaker: SpeakerConfig,
}

/// The parts the controller drives.
pub struct Parts {
    /// Where the networks of each pass are published for the plugin handlers.
    pub networks: watch::Sender<Vec<crate::docker::NetworkView>>,
    pub metrics: Arc<crate::status::Metrics>,
    pub status: watch::Sender<crate::status::Status>,
    pub docker: Docker,
    pub netdev: NetDevices,
    pub routes: Routes,
    pub bgp: BgpClient,
    pub fresh: Arc<FreshLinks>,
}

/// The reconcile loop and the state only it touches.
pub struct Controller {
    config: ControllerConfig,
    parts: Parts,
    tx: mpsc::Sender<Msg>,
    drivers: HashSet<String>,
    created: HashSet<String>,
    /// Draining containers, with the start time of the run that was drained
    /// (unknown for a drain read back from Docker's history until a pass sees it).
    drained: HashMap<String, Option<String>>,
    /// Containers announced in the last pass (see [`desired::should_announce`]).
    announcing: desired::Announcing,
    last: Snapshot,
    /// Who owned each address in the last pass, to name it when it is withdrawn.
    last_owners: HashMap<IpAddr, Owner>,
    speaker_started: bool,
    /// Endpoints the host could not deliver to in the last pass, and those
    /// already reported.
    cut_off: HashSet<String>,
    reported_cut_off: HashSet<String>,
    /// This bgplb's links that Docker lists under another driver, already reported.
    reported_foreign: HashSet<String>,
}

impl Controller {
    /// A controller; `tx` is the sender of its own channel, for drain timers.
    pub fn new(config: ControllerConfig, parts: Parts, tx: mpsc::Sender<Msg>) -> Self {
        let drivers = config.drivers.clone();
        Self {
            config,
            parts,
            tx,
            drivers,
            created: HashSet::new(),
            drained: HashMap::new(),
            announcing: desired::Announcing::new(),
            last: Snapshot::default(),
            last_owners: HashMap::new(),
            speaker_started: false,
            cut_off: HashSet::new(),
            reported_cut_off: HashSet::new(),
            reported_foreign: HashSet::new(),
        }
    }

    /// Runs passes until `shutdown` turns true.
    pub async fn run(mut self, mut rx: mpsc::Receiver<Msg>, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        self.recover_drains().await;
        let mut pending: Option<&'static str> = Some("start");
        let mut next_pass = Instant::now() + self.config.resync;
        loop {
            if let Some(reason) = pending.take() {
                let started = Instant::now();
                let outcome = self.pass(reason).await;
                self.record_pass(&outcome, started.elapsed());
                next_pass = match outcome {
                    Ok(()) => {
                        backoff.reset();
                        Instant::now() + self.config.resync
                    }
                    Err(error) => {
                        let delay = backoff.delay();
                        let retry_ms = delay.as_millis() as u64;
                        let error_text = crate::error_chain(&error);
                        // Until gobgpd first answers, a missing speaker is expected.
                        if matches!(error, PassError::Speaker(_)) && !self.speaker_started {
                            tracing::debug!(error = %error_text, retry_ms, "reconcile pass incomplete");
                        } else {
                            tracing::warn!(error = %error_text, retry_ms, "reconcile pass incomplete");
                        }
                        Instant::now() + delay
                    }
                };
            }
            tokio::select! {
                msg = rx.recv() => {
                    let Some(msg) = msg else { return };
                    pending = self.handle(msg).await.or(pending);
                    // Coalesce a burst into one pass.
                    while let Ok(msg) = rx.try_recv() {
                        pending = self.handle(msg).await.or(pending);
                    }
                }
                _ = tokio::time::sleep_until(next_pass) => pending = Some("resync"),
                _ = stopped(&mut shutdown) => return,
            }
        }
    }

    /// Applies a message to the controller's own state; returns the reason
    /// for a pass if one is needed.
    async fn handle(&mut self, msg: Msg) -> Option<&'static str> {
        match msg {
            Msg::Trigger(reason) => Some(reason),
            Msg::NetworkCreated(id) => {
                self.created.insert(id);
                Some("network created")
            }
            Msg::Docker(WatchMessage::Event(event)) => self.docker_event(event),
            Msg::Docker(WatchMessage::Reconnected) => Some("docker reconnected"),
            Msg::Docker(WatchMessage::Disconnected) => None,
            Msg::Speaker(SpeakerEvent::Started { .. }) => {
                self.speaker_started = true;
                tokio::spawn(
                    speaker::watch_sessions(
                        self.parts.bgp.clone(),
                        self.config.speaker.clone(),
                        self.parts.metrics.clone(),
                        self.parts.status.clone(),
                    )
                    .instrument(tracing::info_span!("bgp")),
                );
                Some("gobgpd started")
            }
            Msg::Speaker(SpeakerEvent::Exited) => {
                self.speaker_started = false;
                self.parts.metrics.session_up.set(0);
                self.parts.status.send_modify(|s| s.bgp_sessions.clear());
                None
            }
            Msg::DrainDue(id) => {
                self.drain_due(&id).await;
                None
            }
        }
    }

    fn docker_event(&mut self, event: Event) -> Option<&'static str> {
        tracing::trace!(kind = %event.kind, action = %event.action, id = %event.id, "docker event");
        match (event.kind.as_str(), event.action.as_str()) {
            ("container", "kill")
                if event
                    .signal
                    .as_deref()
                    .is_some_and(|s| SIGUSR2.contains(&s)) =>
            {
                self.start_drain(&event.id);
                Some("container drained")
            }
            ("container", "start" | "restart" | "die" | "destroy") => {
                // A drain ends with the run it drained; a restarted container serves again.
                self.drained.remove(&event.id);
                Some("container event")
            }
            // Docker may report the attachment before it lists the endpoint.
            ("network", "connect" | "disconnect") => {
                self.settle_later();
                Some("network event")
            }
            ("network", "create") => {
                if let (true, Some(driver)) = (self.created.contains(&event.id), event.driver) {
                    self.drivers.insert(driver);
                }
                Some("network event")
            }
            ("container", _) => Some("container event"),
            _ => Some("network event"),
        }
    }

    /// Asks for one more pass shortly, for state Docker reports a moment late.
    fn settle_later(&self) {
        let tx = self.tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(SETTLE_DELAY).await;
            let _ = tx.send(Msg::Trigger("settle")).await;
        });
    }

    fn start_drain(&mut self, id: &str) {
        let Some(drain) = self.config.drain else {
            return;
        };
        let Some(c) = self.last.containers.iter().find(|c| c.id == id) else {
            return;
        };
        if self.drained.contains_key(id) {
            return;
        }
        self.drained
            .insert(id.to_string(), Some(c.started_at.clone()));
        tracing::info!(container = %c.name, delay_s = drain.delay.as_secs(), "drain started");
        self.drain_timer(id, drain.delay);
    }

    fn drain_timer(&self, id: &str, delay: Duration) {
        let tx = self.tx.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = tx.send(Msg::DrainDue(id)).await;
        });
    }

    /// Drains are not written down anywhere: after a restart they are read
    /// back from Docker's event history, so a draining container is not
    /// announced again and still gets its SIGTERM when its delay is over.
    async fn recover_drains(&mut self) {
        let Some(drain) = self.config.drain else {
            return;
        };
        let events = match self.parts.docker.past_container_events(DRAIN_MEMORY).await {
            Ok(events) => events,
            Err(error) => {
                let error = crate::error_chain(&error);
                return tracing::warn!(error = %error, "cannot read past drains");
            }
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs() as i64;
        for (id, at) in drains_in(&events) {
            let elapsed = Duration::from_secs(now.saturating_sub(at).max(0) as u64);
            self.drained.insert(id.clone(), None);
            // Long overdue: the earlier bgplb sent SIGTERM already, or was not
            // draining then (SIGUSR2_HANDLER off). Stay withdrawn, stop nothing.
            if elapsed > drain.delay + DRAIN_OVERDUE {
                tracing::debug!(container = %id, "past drain read back; its delay is long over");
                continue;
            }
            tracing::debug!(container = %id, "drain read back from docker events");
            self.drain_timer(&id, drain.delay.saturating_sub(elapsed));
        }
    }

    async fn drain_due(&mut self, id: &str) {
        let Some(drain) = self.config.drain else {
            return;
        };
        let Some(c) = self
            .last
            .containers
            .iter()
            .find(|c| c.id == id && c.running)
        else {
            return;
        };
        if !self.drained.contains_key(id) {
            return;
        }
        if drain.action != DrainAction::Stop {
            return tracing::info!(container = %c.name, "drain finished; container left running");
        }
        match self.parts.docker.kill(id, "SIGTERM").await {
            Ok(()) => tracing::info!(container = %c.name, "drain finished; container sent SIGTERM"),
            Err(error) => {
                tracing::warn!(container = %c.name, error = %crate::error_chain(&error), "failed to stop drained container")
            }
        }
    }

    fn record_pass(&self, outcome: &Result<(), PassError>, took: Duration) {
        let m = &self.parts.metrics;
        let result = if outcome.is_ok() { "ok" } else { "error" };
        m.passes
            .get_or_create(&crate::status::PassLabels { result })
            .inc();
        m.pass_seconds.observe(took.as_secs_f64());
        self.parts.status.send_modify(|s| {
            s.last_pass_ok = Some(outcome.is_ok());
            s.last_error = outcome.as_ref().err().map(|e| crate::error_chain(e));
            s.last_pass_at = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default();
            s.drained = self
                .last
                .containers
                .iter()
                .filter(|c| self.drained.contains_key(&c.id))
                .map(|c| c.name.clone())
                .collect();
        });
    }

    async fn pass(&mut self, reason: &'static str) -> Result<(), PassError> {
        let span = tracing::debug_span!("pass", reason);
        self.pass_inner().instrument(span).await
    }

    async fn pass_inner(&mut self) -> Result<(), PassError> {
        self.learn_plugin_name().await?;
        // Observe Docker first: without it nothing is known, and nothing may change.
        let snapshot = self.observe_docker().await?;

        // The speaker may be down (restarting); the kernel side goes on without it.
        let (paths, speaker_error) = match self.observe_speaker().await {
            Ok(paths) => (Some(paths), None),
            Err(e) => (None, Some(e)),
        };
        let links = self.parts.netdev.links().await?;
        let foreign = self.foreign_links(&snapshot, &links);
        let mut actual = self.observe_kernel(&links, &foreign, paths).await?;

        let cut_off = self.undeliverable(&snapshot, &links);
        let (desired, owners) = self.desire(&snapshot, &cut_off);
        // A bridge of a network set down counts as missing: ensuring it sets it up.
        let down: HashSet<&str> = links
            .iter()
            .filter(|l| !l.up)
            .map(|l| l.name.as_str())
            .collect();
        actual
            .links
            .retain(|l| !(desired.bridges.contains(l) && down.contains(l.as_str())));
        let actions = plan::plan(&desired, &actual);
        tracing::debug!(
            networks = snapshot.networks.len(),
            containers = snapshot.containers.len(),
            actions = actions.len(),
            "planned"
        );
        self.parts.networks.send_replace(snapshot.networks.clone());
        self.last = snapshot;
        // Name withdrawn addresses after their owners in the previous pass.
        let mut all_owners = std::mem::replace(&mut self.last_owners, owners.clone());
        all_owners.extend(owners);
        let context = apply::ApplyContext {
            owners: all_owners,
            links: apply::links_by_name(&links),
            announced: actual.paths.clone().unwrap_or_default(),
        };
        self.publish(&desired, &context.owners);
        let repairs = actions.iter().any(|a| {
            matches!(
                a,
                plan::Action::EnsureBridge(_) | plan::Action::AttachPort { .. }
            )
        });
        let failed = self.apply(actions, &context).await;
        if failed > 0 {
            return Err(PassError::Actions(failed));
        }
        // What a repaired device delivers to is announced by the next pass;
        // a failed repair waits for the backoff instead.
        if repairs {
            self.settle_later();
        }
        match speaker_error {
            Some(e) => Err(PassError::Speaker(e)),
            None => Ok(()),
        }
    }
}

impl Controller {
    /// Without bgplb's own driver name, every network would look foreign and
    /// be torn down: a managed plugin learns its name first, or changes nothing.
    async fn learn_plugin_name(&mut self) -> Result<(), PassError> {
        let Some(id) = self.config.plugin_id.clone() else {
            return Ok(());
        };
        let name = crate::identity::plugin_name(&self.config.docker_socket, &id).await?;
        let name = name.ok_or_else(|| PassError::UnknownPlugin(id))?;
        tracing::info!(driver = %name, "managed plugin name found");
        self.drivers.insert(name);
        self.config.plugin_id = None;
        Ok(())
    }

    /// Docker's networks and containers; forgets drains of containers gone since.
    async fn observe_docker(&mut self) -> Result<Snapshot, PassError> {
        let snapshot = self
            .parts
            .docker
            .snapshot(&self.drivers, &self.created)
            .await?;
        for n in snapshot
            .networks
            .iter()
            .filter(|n| self.created.contains(&n.id))
        {
            self.drivers.insert(n.driver.clone());
        }
        // A drain stands while its run of the container does, also while the
        // container is on no network of bgplb's (disconnected for a moment).
        self.drained.retain(|id, run| {
            let Some(c) = snapshot.containers.iter().find(|c| &c.id == id) else {
                return true;
            };
            let run = run.get_or_insert_with(|| c.started_at.clone());
            c.running && *run == c.started_at
        });
        Ok(snapshot)
    }

    /// The paths gobgpd originates, once it is configured.
    async fn observe_speaker(&self) -> Result<BTreeMap<IpAddr, Option<IpAddr>>, crate::bgp::Error> {
        speaker::ensure_configured(&self.parts.bgp, &self.config.speaker).await?;
        self.parts.bgp.local_paths().await
    }

    /// bgplb's links and routes in the kernel, with the speaker's paths.
    /// Only this instance's links, and routes through them, are candidates
    /// for removal.
    async fn observe_kernel(
        &self,
        links: &[netdev::Link],
        foreign: &HashSet<String>,
        paths: Option<BTreeMap<IpAddr, Option<IpAddr>>>,
    ) -> Result<Actual, PassError> {
        let owned: HashMap<u32, String> = links
            .iter()
            .filter(|l| self.parts.netdev.owns(l) && !foreign.contains(&l.name))
            .map(|l| (l.index, l.name.clone()))
            .collect();
        let routes = self.parts.routes.list().await?;
        Ok(Actual {
            links: owned
                .values()
                .filter(|name| netdev::is_ours(name))
                .cloned()
                .collect(),
            routes: routes
                .iter()
                .filter_map(|r| Some((r.dst, owned.get(&r.oif)?.clone())))
                .collect(),
            ports: ports(links),
            paths,
        })
    }

    /// This instance's links that belong to networks or endpoints Docker
    /// lists under another driver. Left alone: removing them would cut off
    /// running containers, and the likely cause is a wrong DRIVER_NAME.
    fn foreign_links(&mut self, snapshot: &Snapshot, links: &[netdev::Link]) -> HashSet<String> {
        let foreign: HashSet<String> = links
            .iter()
            .filter(|l| self.parts.netdev.owns(l))
            .filter(|l| snapshot.foreign_links.contains_key(&l.name))
            .map(|l| l.name.clone())
            .collect();
        for name in foreign.difference(&self.reported_foreign) {
            tracing::warn!(
                link = %name,
                driver = %snapshot.foreign_links[name],
                drivers = ?self.drivers,
                "link of another driver's network carries this bgplb's mark; left alone (is DRIVER_NAME right?)"
            );
        }
        self.reported_foreign = foreign.clone();
        foreign
    }

    /// Endpoints the host cannot deliver to; each reported once it has been
    /// so for two passes (a veth goes a moment before Docker reports its
    /// container stopped).
    fn undeliverable(&mut self, snapshot: &Snapshot, links: &[netdev::Link]) -> HashSet<String> {
        let cut_off = desired::undeliverable(snapshot, links);
        for endpoint in cut_off.intersection(&self.cut_off) {
            if self.reported_cut_off.insert(endpoint.clone()) {
                let container = snapshot
                    .containers
                    .iter()
                    .find(|c| c.endpoints.iter().any(|(_, e)| e == endpoint))
                    .map(|c| c.name.as_str())
                    .unwrap_or_default();
                tracing::warn!(
                    container = %container,
                    veth = %netdev::veth_names(endpoint).0,
                    "container's veth is gone, down or off its bridge; not announced until it restarts or reconnects"
                );
            }
        }
        self.reported_cut_off.retain(|e| cut_off.contains(e));
        self.cut_off = cut_off.clone();
        cut_off
    }

    /// What should be in place, and who owns each address. Links the plugin
    /// made or deleted since the snapshot was taken count as Docker says they
    /// will be.
    fn desire(
        &mut self,
        snapshot: &Snapshot,
        cut_off: &HashSet<String>,
    ) -> (plan::Desired, HashMap<IpAddr, Owner>) {
        let drained: HashSet<String> = self.drained.keys().cloned().collect();
        let (mut desired, owners) = desired::desired(
            snapshot,
            &drained,
            &self.announcing,
            cut_off,
            self.config.next_hops,
        );
        self.announcing = desired::announcing(snapshot, &drained, &self.announcing);
        let (created, deleted) = self.parts.fresh.current();
        desired.keep_links.extend(created);
        for bridge in &deleted {
            desired.bridges.remove(bridge);
            desired.routes.retain(|_, dev| dev != bridge);
        }
        (desired, owners)
    }

    /// What bgplb wants in place now, for `/status` and the gauges.
    fn publish(&self, desired: &plan::Desired, owners: &HashMap<IpAddr, Owner>) {
        let announced: Vec<crate::status::Announced> = desired
            .announce
            .iter()
            .map(|(vip, next_hop)| {
                let owner = owners.get(vip);
                crate::status::Announced {
                    vip: *vip,
                    next_hop: *next_hop,
                    network: owner.map(|o| o.network.clone()).unwrap_or_default(),
                    container: owner.map(|o| o.container.clone()).unwrap_or_default(),
                }
            })
            .collect();
        let routes: Vec<(IpAddr, String)> = desired
            .routes
            .iter()
            .map(|(vip, dev)| (*vip, dev.clone()))
            .collect();
        self.parts.metrics.announced.set(announced.len() as i64);
        self.parts.metrics.kernel_routes.set(routes.len() as i64);
        self.parts.status.send_modify(|s| {
            s.announced = announced;
            s.kernel_routes = routes;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, action: &str, signal: Option<&str>, time: i64) -> Event {
        Event {
            kind: "container".into(),
            action: action.into(),
            id: id.into(),
            name: None,
            signal: signal.map(String::from),
            driver: None,
            time,
        }
    }

    #[test]
    fn drains_are_read_back_until_the_container_starts_again() {
        let events = [
            event("a", "kill", Some("12"), 10),
            event("b", "kill", Some("12"), 11),
            event("b", "start", None, 12),
            event("c", "kill", Some("15"), 13),
            event("d", "start", None, 14),
            event("d", "kill", Some("12"), 15),
        ];
        assert_eq!(
            drains_in(&events),
            vec![("a".to_string(), 10), ("d".to_string(), 15)]
        );
    }
}
