//! Configures a running gobgpd to match bgplb's settings, and reports BGP
//! session changes in the log.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use super::api::{
    self, family, watch_event_response, AfiSafi, AfiSafiConfig, Family, GracefulRestart,
    MpGracefulRestart, MpGracefulRestartConfig, PeerConf, Timers, TimersConfig,
};
use super::{BgpClient, Error};
use crate::config::PeerConfig;

const HOLD_TIME: u64 = 90;
const KEEPALIVE: u64 = 30;

/// The settings gobgpd must run with.
#[derive(Debug, Clone)]
pub struct SpeakerConfig {
    pub asn: u32,
    pub router_id: Ipv4Addr,
    pub listen_port: i32,
    pub peer: PeerConfig,
    pub connect_retry: Duration,
    /// Restart time advertised with graceful restart; `None` turns it off.
    pub graceful_restart: Option<u32>,
}

/// Starts BGP and adds the peer where gobgpd lacks them. Safe to call on every
/// pass: StartBgp is sent only to a gobgpd that has not started BGP, because a
/// second StartBgp can wipe its RIB.
pub async fn ensure_configured(client: &BgpClient, config: &SpeakerConfig) -> Result<(), Error> {
    let global = client.global().await?;
    if global.asn == 0 {
        client.start(global_message(config)).await?;
        tracing::info!(asn = config.asn, router_id = %config.router_id, listen_port = config.listen_port, "bgp started");
    } else if global.asn != config.asn || global.router_id != config.router_id.to_string() {
        tracing::warn!(
            asn = global.asn,
            router_id = %global.router_id,
            want_asn = config.asn,
            want_router_id = %config.router_id,
            "gobgpd runs with other global settings; restart it to apply bgplb's"
        );
    }
    let address = config.peer.address.to_string();
    let peers = client.peers().await?;
    if !peers.iter().any(|p| p.address == address) {
        client.add_peer(peer_message(config)).await?;
        tracing::info!(peer = %address, peer_as = config.peer.asn, "bgp peer added");
    }
    Ok(())
}

fn global_message(config: &SpeakerConfig) -> api::Global {
    api::Global {
        asn: config.asn,
        router_id: config.router_id.to_string(),
        listen_port: config.listen_port,
        ..Default::default()
    }
}

/// The peer, with a short connect-retry so that a router that comes up late is
/// reached in seconds (gobgpd's default is two minutes), both unicast
/// families so that IPv6 addresses can ride an IPv4 session, and graceful
/// restart so that the router keeps our routes while gobgpd restarts.
pub fn peer_message(config: &SpeakerConfig) -> api::Peer {
    let unicast = |afi: family::Afi| AfiSafi {
        config: Some(AfiSafiConfig {
            family: Some(Family {
                afi: afi as i32,
                safi: family::Safi::Unicast as i32,
            }),
            enabled: true,
        }),
        mp_graceful_restart: config.graceful_restart.map(|_| MpGracefulRestart {
            config: Some(MpGracefulRestartConfig { enabled: true }),
        }),
    };
    api::Peer {
        conf: Some(PeerConf {
            neighbor_address: config.peer.address.to_string(),
            peer_asn: config.peer.asn,
            auth_password: config.peer.password.clone().unwrap_or_default(),
            ..Default::default()
        }),
        timers: Some(Timers {
            config: Some(TimersConfig {
                connect_retry: config.connect_retry.as_secs(),
                hold_time: HOLD_TIME,
                keepalive_interval: KEEPALIVE,
                ..Default::default()
            }),
            state: None,
        }),
        afi_safis: vec![unicast(family::Afi::Ip), unicast(family::Afi::Ip6)],
        graceful_restart: config.graceful_restart.map(|restart_time| GracefulRestart {
            enabled: true,
            restart_time,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// How long a session may take to come up before bgplb says so.
const SESSION_PATIENCE: Duration = Duration::from_secs(30);

/// Follows gobgpd's peer events until the stream ends (gobgpd stopped; the
/// caller starts a new watch with the next gobgpd): logs sessions going up and
/// down, keeps the session gauge and `/status`, renews the peer when its
/// session drops, and warns once if no session is up after [`SESSION_PATIENCE`].
pub async fn watch_sessions(
    client: BgpClient,
    config: SpeakerConfig,
    metrics: std::sync::Arc<crate::status::Metrics>,
    status: tokio::sync::watch::Sender<crate::status::Status>,
) {
    let mut stream = match client.watch_peers().await {
        Ok(s) => s,
        Err(error) => return tracing::debug!(error = %error, "cannot watch bgp peers"),
    };
    let mut established: HashMap<String, bool> = HashMap::new();
    let patience = tokio::time::sleep(SESSION_PATIENCE);
    tokio::pin!(patience);
    let mut patient = true;
    loop {
        let msg = tokio::select! {
            msg = stream.message() => msg,
            _ = &mut patience, if patient => {
                patient = false;
                let states = status.borrow().bgp_sessions.clone();
                if states.is_empty() {
                    tracing::warn!(
                        peer = %config.peer.address,
                        "bgp peer not configured yet: that waits for a complete pass (see /status last_error)"
                    );
                } else if !established.values().any(|up| *up) {
                    tracing::warn!(
                        peer = %config.peer.address,
                        sessions = ?states,
                        "bgp session not established yet; check PEER_ADDRESS, PEER_AS, LOCAL_AS and PEER_PASSWORD against the router"
                    );
                }
                continue;
            }
        };
        let Ok(Some(msg)) = msg else { break };
        let Some(watch_event_response::Event::Peer(event)) = msg.event else {
            continue;
        };
        let Some(peer) = event.peer else { continue };
        let state = peer.state.unwrap_or_default();
        let address = peer
            .conf
            .map(|c| c.neighbor_address)
            .unwrap_or(state.neighbor_address.clone());
        // The end of gobgpd's initial list comes as a peer event without a peer.
        if address.parse::<std::net::IpAddr>().is_err() {
            continue;
        }
        let session = api::peer_state::SessionState::try_from(state.session_state)
            .unwrap_or(api::peer_state::SessionState::Unknown);
        let up = session == api::peer_state::SessionState::Established;
        let was_up = established.insert(address.clone(), up).unwrap_or(false);
        metrics
            .session_up
            .set(i64::from(established.values().any(|u| *u)));
        status.send_modify(|s| {
            let name = session.as_str_name().to_ascii_lowercase();
            s.bgp_sessions.insert(address.clone(), name);
        });
        match (was_up, up) {
            (false, true) => tracing::info!(peer = %address, "bgp session established"),
            (true, false) => {
                tracing::warn!(peer = %address, "bgp session down");
                if address == config.peer.address.to_string() {
                    renew_peer(&client, &config).await;
                }
            }
            _ => tracing::trace!(peer = %address, state = state.session_state, "bgp peer state"),
        }
    }
}

/// Replaces the peer after its session dropped. gobgpd holds a dropped peer
/// idle for 5 s before its connect timer (a random 5-9 s) even starts; a new
/// peer starts that timer at once, so the session is back seconds sooner.
async fn renew_peer(client: &BgpClient, config: &SpeakerConfig) {
    let address = config.peer.address.to_string();
    let renewed = match client.delete_peer(&address).await {
        Ok(()) => client.add_peer(peer_message(config)).await,
        Err(e) => Err(e),
    };
    match renewed {
        Ok(()) => tracing::debug!(peer = %address, "bgp peer renewed to reconnect sooner"),
        // The next pass adds it again if it is missing.
        Err(error) => {
            tracing::debug!(peer = %address, error = %crate::error_chain(&error), "bgp peer not renewed")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(graceful_restart: Option<u32>) -> SpeakerConfig {
        SpeakerConfig {
            asn: 65534,
            router_id: "198.51.100.1".parse().unwrap(),
            listen_port: -1,
            peer: PeerConfig {
                address: "198.51.100.2".parse().unwrap(),
                asn: 64512,
                password: Some("pw".into()),
            },
            connect_retry: Duration::from_secs(5),
            graceful_restart,
        }
    }

    #[test]
    fn peer_has_short_connect_retry_and_both_families() {
        let peer = peer_message(&config(None));
        let conf = peer.conf.unwrap();
        assert_eq!(conf.neighbor_address, "198.51.100.2");
        assert_eq!(conf.peer_asn, 64512);
        assert_eq!(conf.auth_password, "pw");
        assert_eq!(peer.timers.unwrap().config.unwrap().connect_retry, 5);
        assert_eq!(peer.afi_safis.len(), 2);
        assert!(peer.graceful_restart.is_none());
        assert!(peer
            .afi_safis
            .iter()
            .all(|a| a.mp_graceful_restart.is_none()));
    }

    #[test]
    fn graceful_restart_is_offered_per_family() {
        let peer = peer_message(&config(Some(120)));
        let gr = peer.graceful_restart.unwrap();
        assert!(gr.enabled);
        assert_eq!(gr.restart_time, 120);
        assert!(peer
            .afi_safis
            .iter()
            .all(|a| a.mp_graceful_restart.is_some()));
    }
}
