//! The Docker side: snapshots of bgplb's networks and their containers, and the
//! event stream that tells the controller when to look again.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::Duration;

use bollard::container::{InspectContainerOptions, KillContainerOptions, ListContainersOptions};
use bollard::models::{
    ContainerInspectResponse, EventMessage, EventMessageTypeEnum, HealthStatusEnum,
};
use bollard::network::ListNetworksOptions;
use bollard::system::EventsOptions;
use bollard::ClientVersion;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tracing::Instrument;

/// API 1.41 is Docker 20.10's; newer daemons still accept it.
const API_VERSION: ClientVersion = ClientVersion {
    major_version: 1,
    minor_version: 41,
};
const REQUEST_TIMEOUT_SECS: u64 = 30;

/// Errors talking to dockerd.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to connect to docker at {path}")]
    Connect {
        path: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error("failed to {action}")]
    Api {
        action: String,
        #[source]
        source: bollard::errors::Error,
    },
}

/// A network of bgplb's driver, as Docker describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkView {
    pub id: String,
    pub name: String,
    pub driver: String,
    /// The addresses the network announces: its /32 and /128 subnets.
    pub vips: Vec<IpAddr>,
}

/// A container's health, as far as announcing goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Health {
    /// No health check: running is enough.
    None,
    Starting,
    Healthy,
    Unhealthy,
}

/// A container attached to one of bgplb's networks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerView {
    pub id: String,
    pub name: String,
    /// Running (paused included): its endpoint exists and its route must stay.
    pub running: bool,
    pub paused: bool,
    /// When this run of the container started (Docker's `State.StartedAt`).
    pub started_at: String,
    pub health: Health,
    /// (network id, endpoint id) of each attachment with a live endpoint.
    pub endpoints: Vec<(String, String)>,
}

/// What Docker says about bgplb's networks at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub networks: Vec<NetworkView>,
    pub containers: Vec<ContainerView>,
    /// Device names of the networks (bridges) and endpoints (veths) Docker
    /// lists under other drivers, with the driver: never bgplb's to remove,
    /// whatever their mark says.
    pub foreign_links: BTreeMap<String, String>,
}

/// A Docker event, reduced to what the controller needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub kind: String,
    pub action: String,
    pub id: String,
    pub name: Option<String>,
    /// The `signal` attribute of a `kill` event (a decimal number).
    pub signal: Option<String>,
    /// The `type` attribute of a network event: the driver name.
    pub driver: Option<String>,
    /// Unix time in seconds.
    pub time: i64,
}

/// A client of the Docker Engine API.
#[derive(Clone)]
pub struct Docker {
    path: String,
    /// Made on first use: bollard refuses a socket that does not exist yet,
    /// and bgplb starts before dockerd (which calls the plugin as it starts).
    client: std::sync::Arc<std::sync::OnceLock<bollard::Docker>>,
}

impl Docker {
    /// Connects lazily: nothing is dialled until the first request, and the
    /// socket need not exist yet.
    pub fn connect(socket: &Path) -> Self {
        Self {
            path: socket.to_string_lossy().to_string(),
            client: Default::default(),
        }
    }

    fn client(&self) -> Result<&bollard::Docker, Error> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let client =
            bollard::Docker::connect_with_unix(&self.path, REQUEST_TIMEOUT_SECS, &API_VERSION)
                .map_err(|source| Error::Connect {
                    path: self.path.clone(),
                    source,
                })?;
        Ok(self.client.get_or_init(|| client))
    }

    /// Networks whose driver is one of `drivers` or whose id is in `ids`, and
    /// the containers attached to them.
    pub async fn snapshot(
        &self,
        drivers: &HashSet<String>,
        ids: &HashSet<String>,
    ) -> Result<Snapshot, Error> {
        let networks = self
            .client()?
            .list_networks(None::<ListNetworksOptions<String>>)
            .await
            .map_err(|source| Error::Api {
                action: "list networks".into(),
                source,
            })?;
        let mut foreign_networks = HashMap::new();
        let networks: Vec<NetworkView> = networks
            .into_iter()
            .filter_map(|n| {
                let id = n.id?;
                let driver = n.driver.unwrap_or_default();
                if !drivers.contains(&driver) && !ids.contains(&id) {
                    foreign_networks.insert(id, driver);
                    return None;
                }
                let subnets = n.ipam.and_then(|i| i.config).unwrap_or_default();
                let vips = subnets
                    .iter()
                    .filter_map(|c| c.subnet.as_deref())
                    .filter_map(host_address)
                    .collect();
                Some(NetworkView {
                    id,
                    name: n.name.unwrap_or_default(),
                    driver,
                    vips,
                })
            })
            .collect();
        let ours: HashSet<&str> = networks.iter().map(|n| n.id.as_str()).collect();
        let (containers, foreign_endpoints) = self.containers_on(&ours, &foreign_networks).await?;
        let mut foreign_links: BTreeMap<String, String> = foreign_networks
            .iter()
            .map(|(id, driver)| (crate::netdev::bridge_name(id), driver.clone()))
            .collect();
        foreign_links.extend(foreign_endpoints);
        Ok(Snapshot {
            networks,
            containers,
            foreign_links,
        })
    }

    /// The containers attached to `networks`, and the veth names of the
    /// endpoints on `foreign` networks, with their driver.
    async fn containers_on(
        &self,
        networks: &HashSet<&str>,
        foreign: &HashMap<String, String>,
    ) -> Result<(Vec<ContainerView>, Vec<(String, String)>), Error> {
        let options = ListContainersOptions::<String> {
            all: true,
            ..Default::default()
        };
        let summaries = self
            .client()?
            .list_containers(Some(options))
            .await
            .map_err(|source| Error::Api {
                action: "list containers".into(),
                source,
            })?;
        let mut views = Vec::new();
        let mut foreign_endpoints = Vec::new();
        for summary in summaries {
            let attachments = summary
                .network_settings
                .and_then(|s| s.networks)
                .unwrap_or_default();
            for e in attachments.values() {
                let (Some(net), Some(ep)) = (&e.network_id, &e.endpoint_id) else {
                    continue;
                };
                if let Some(driver) = foreign.get(net).filter(|_| !ep.is_empty()) {
                    let veth = crate::netdev::veth_names(ep).0;
                    foreign_endpoints.push((veth, driver.clone()));
                }
            }
            let attached = attachments.values().any(|e| {
                e.network_id
                    .as_deref()
                    .is_some_and(|id| networks.contains(id))
            });
            let Some(id) = summary.id.filter(|_| attached) else {
                continue;
            };
            match self
                .client()?
                .inspect_container(&id, None::<InspectContainerOptions>)
                .await
            {
                Ok(c) => views.push(container_view(id, c, networks)),
                // Removed between the list and the inspect: it has no routes to keep.
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => {}
                Err(source) => {
                    return Err(Error::Api {
                        action: format!("inspect container {id}"),
                        source,
                    })
                }
            }
        }
        Ok((views, foreign_endpoints))
    }

    /// Container `kill`, `start` and `restart` events of the last `window`, from
    /// the history dockerd keeps in memory (its last 256 events), oldest first.
    pub async fn past_container_events(&self, window: Duration) -> Result<Vec<Event>, Error> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let filters = HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            (
                "event".to_string(),
                ["kill", "start", "restart"].map(String::from).to_vec(),
            ),
        ]);
        let options = EventsOptions {
            since: Some(now.saturating_sub(window).as_secs().to_string()),
            // A whole second later: Docker compares to the nanosecond, and an
            // event of this very second must not be cut off.
            until: Some((now.as_secs() + 1).to_string()),
            filters,
        };
        let mut stream = self.client()?.events(Some(options));
        let mut events = Vec::new();
        while let Some(item) = stream.next().await {
            let msg = item.map_err(|source| Error::Api {
                action: "read past events".into(),
                source,
            })?;
            events.extend(reduce(msg));
        }
        Ok(events)
    }

    /// Sends a signal (e.g. `SIGTERM`) to a container.
    pub async fn kill(&self, id: &str, signal: &str) -> Result<(), Error> {
        self.client()?
            .kill_container(id, Some(KillContainerOptions { signal }))
            .await
            .map_err(|source| Error::Api {
                action: format!("send {signal} to container {id}"),
                source,
            })
    }

    /// Follows Docker's event stream for ever, reconnecting with backoff.
    ///
    /// After each reconnection it sends [`WatchMessage::Reconnected`]: events
    /// that happened while disconnected are lost, so the receiver must look again.
    pub fn watch<M>(self, events: mpsc::Sender<M>) -> tokio::task::JoinHandle<()>
    where
        M: From<WatchMessage> + Send + 'static,
    {
        tokio::spawn(
            self.watch_loop(events)
                .instrument(tracing::info_span!("docker")),
        )
    }

    async fn watch_loop<M: From<WatchMessage> + Send>(self, tx: mpsc::Sender<M>) {
        let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(10));
        loop {
            // Until dockerd's socket exists there is no stream to follow.
            let mut stream = match self.client() {
                Ok(client) => client.events(Some(events_options())).boxed(),
                Err(_) => futures::stream::empty().boxed(),
            };
            while let Some(item) = stream.next().await {
                match item {
                    Ok(msg) => {
                        backoff.reset();
                        if let Some(event) = reduce(msg) {
                            if tx.send(WatchMessage::Event(event).into()).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(error) => {
                        tracing::warn!(error = %error, "docker event stream failed");
                        break;
                    }
                }
            }
            if tx.send(WatchMessage::Disconnected.into()).await.is_err() {
                return;
            }
            let delay = backoff.delay();
            tracing::debug!(
                delay_ms = delay.as_millis() as u64,
                "reconnecting to docker events"
            );
            tokio::time::sleep(delay).await;
            let up = match self.client() {
                Ok(client) => client.ping().await.is_ok(),
                Err(_) => false,
            };
            if up {
                tracing::info!("docker event stream reconnected");
                if tx.send(WatchMessage::Reconnected.into()).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// What the event watcher tells the controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchMessage {
    Event(Event),
    Disconnected,
    Reconnected,
}

/// Only the actions that can change what bgplb should do; health probes' exec
/// events are noise. The filter key is `event`: Docker ignores `action`.
fn events_options() -> EventsOptions<String> {
    let actions = [
        "create",
        "start",
        "restart",
        "die",
        "stop",
        "kill",
        "destroy",
        "pause",
        "unpause",
        "health_status",
        "connect",
        "disconnect",
        "oom",
    ];
    let filters = HashMap::from([
        (
            "type".to_string(),
            vec!["container".to_string(), "network".to_string()],
        ),
        (
            "event".to_string(),
            actions.iter().map(|a| a.to_string()).collect(),
        ),
    ]);
    EventsOptions {
        since: None,
        until: None,
        filters,
    }
}

fn reduce(msg: EventMessage) -> Option<Event> {
    let kind = match msg.typ? {
        EventMessageTypeEnum::CONTAINER => "container",
        EventMessageTypeEnum::NETWORK => "network",
        _ => return None,
    };
    let actor = msg.actor?;
    let attributes = actor.attributes.unwrap_or_default();
    Some(Event {
        kind: kind.to_string(),
        action: msg.action?,
        id: actor.id?,
        name: attributes.get("name").cloned(),
        signal: attributes.get("signal").cloned(),
        driver: attributes.get("type").cloned(),
        time: msg.time.unwrap_or_default(),
    })
}

fn container_view(
    id: String,
    c: ContainerInspectResponse,
    networks: &HashSet<&str>,
) -> ContainerView {
    let state = c.state.unwrap_or_default();
    let running = state.running.unwrap_or(false);
    let paused = state.paused.unwrap_or(false);
    let started_at = state.started_at.clone().unwrap_or_default();
    // A stopped container reads "unhealthy" (PROTOCOLS 2.5); only running counts.
    let health = match state.health.and_then(|h| h.status) {
        None | Some(HealthStatusEnum::NONE) | Some(HealthStatusEnum::EMPTY) => Health::None,
        Some(HealthStatusEnum::STARTING) => Health::Starting,
        Some(HealthStatusEnum::HEALTHY) => Health::Healthy,
        Some(HealthStatusEnum::UNHEALTHY) => Health::Unhealthy,
    };
    let endpoints = c
        .network_settings
        .and_then(|s| s.networks)
        .unwrap_or_default()
        .into_values()
        .filter_map(|e| Some((e.network_id?, e.endpoint_id.filter(|x| !x.is_empty())?)))
        .filter(|(net, _)| networks.contains(net.as_str()))
        .collect();
    let name = c
        .name
        .unwrap_or_default()
        .trim_start_matches('/')
        .to_string();
    ContainerView {
        id,
        name,
        running,
        paused,
        started_at,
        health,
        endpoints,
    }
}

/// The address of a /32 or /128 subnet; other subnets announce nothing.
pub fn host_address(subnet: &str) -> Option<IpAddr> {
    let (addr, len) = subnet.split_once('/')?;
    match (addr.parse::<IpAddr>().ok()?, len) {
        (IpAddr::V4(a), "32") if a != Ipv4Addr::UNSPECIFIED => Some(IpAddr::V4(a)),
        (IpAddr::V6(a), "128") if a != Ipv6Addr::UNSPECIFIED => Some(IpAddr::V6(a)),
        _ => None,
    }
}

/// Exponential backoff between `min` and `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Starts at `min`, doubles up to `max`.
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max,
            next: min,
        }
    }

    /// The delay to wait now; the following one is twice as long.
    pub fn delay(&mut self) -> Duration {
        let now = self.next;
        self.next = (self.next * 2).min(self.max);
        now
    }

    /// Back to the shortest delay after a success.
    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_single_addresses_are_announced() {
        assert_eq!(
            host_address("203.0.113.10/32"),
            Some("203.0.113.10".parse().unwrap())
        );
        assert_eq!(
            host_address("2001:db8::10/128"),
            Some("2001:db8::10".parse().unwrap())
        );
        assert_eq!(host_address("203.0.113.0/24"), None);
        assert_eq!(host_address("0.0.0.0/32"), None);
        assert_eq!(host_address("junk"), None);
    }

    #[test]
    fn backoff_doubles_to_its_ceiling_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(5));
        let seen: Vec<u64> = (0..5).map(|_| b.delay().as_secs()).collect();
        assert_eq!(seen, [1, 2, 4, 5, 5]);
        b.reset();
        assert_eq!(b.delay(), Duration::from_secs(1));
    }
}
