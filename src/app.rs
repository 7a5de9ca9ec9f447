//! Starts the parts of bgplb, wires their channels and stops them on SIGTERM.
//!
//! ```text
//!  docker watcher ──┐
//!  gobgpd supervisor┼─> controller (reconcile loop) ─> kernel, gobgpd
//!  plugin server ───┘
//! ```

use std::sync::Arc;

use anyhow::Context;
use nix::fcntl::{Flock, FlockArg};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};
use tracing::Instrument;

use crate::bgp::process::{self, ProcessConfig};
use crate::bgp::speaker::SpeakerConfig;
use crate::bgp::BgpClient;
use crate::config::Config;
use crate::controller::desired::NextHops;
use crate::controller::{Controller, ControllerConfig, Msg, Parts};
use crate::docker::Docker;
use crate::netdev::{FreshLinks, NetDevices};
use crate::plugin::{self, PluginState};
use crate::routes::Routes;

/// Runs bgplb until SIGTERM or SIGINT.
pub async fn run(config: Config) -> anyhow::Result<()> {
    // Held until bgplb exits; the kernel releases them if it dies.
    let _locks = claim_sockets(&config)?;
    let (driver, plugin_id) = identity(&config)?;
    tracing::info!(
        driver = ?driver,
        plugin_id = ?plugin_id,
        router_id = %config.router_id,
        local_as = config.local_as,
        peer = %config.peer.address,
        peer_as = config.peer.asn,
        "bgplb starting"
    );

    let (connection, handle, _) =
        rtnetlink::new_connection().context("failed to open a netlink socket")?;
    tokio::spawn(connection.instrument(tracing::info_span!("kernel")));
    // Tells this bgplb's links from another's on the same host.
    let instance = plugin_id
        .clone()
        .unwrap_or_else(|| config.plugin_socket.display().to_string());
    let netdev = NetDevices::new(handle.clone(), &instance);
    let docker = Docker::connect(&config.docker_socket);
    let bgp = BgpClient::new(&config.gobgp_api)?;
    let fresh = Arc::new(FreshLinks::default());
    let (tx, rx) = mpsc::channel::<Msg>(1024);
    let (stop_tx, stop_rx) = watch::channel(false);

    let supervisor = process::supervise(
        ProcessConfig {
            binary: config.gobgpd_path.clone(),
            api: config.gobgp_api.clone(),
            graceful_restart: config.graceful_restart.is_some(),
        },
        tx.clone(),
        stop_rx.clone(),
    );
    docker.clone().watch(tx.clone());

    let controller_config = controller_config(&config, driver, plugin_id);
    let metrics = Arc::new(crate::status::Metrics::default());
    let (status_tx, status_rx) = watch::channel(crate::status::Status::default());
    if let Some(address) = config.status_address {
        spawn_status(address, metrics.clone(), status_rx, stop_rx.clone());
    }
    let (networks_tx, networks_rx) = watch::channel(Vec::new());
    let parts = Parts {
        networks: networks_tx,
        metrics,
        status: status_tx,
        docker,
        netdev: netdev.clone(),
        routes: Routes::new(handle, config.route_protocol),
        bgp,
        fresh: fresh.clone(),
    };
    let controller = Controller::new(controller_config, parts, tx.clone());
    let controller = tokio::spawn(
        controller
            .run(rx, stop_rx.clone())
            .instrument(tracing::info_span!("controller")),
    );

    let state = Arc::new(PluginState {
        netdev,
        fresh,
        controller: tx,
        global_scope: config.global_scope,
        networks: networks_rx,
    });
    let mut plugin_stop = stop_rx.clone();
    let mut server = tokio::spawn(async move {
        let shutdown = async move { crate::stopped(&mut plugin_stop).await };
        plugin::serve(&config.plugin_socket, state, shutdown).await
    });

    let (outcome, server_done) = tokio::select! {
        signal = wait_for_signal() => (signal, false),
        served = &mut server => (match served {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(anyhow::Error::from(e).context("plugin server failed")),
            Err(e) => Err(anyhow::Error::from(e).context("plugin server panicked")),
        }, true),
    };
    tracing::info!("bgplb stopping");
    let _ = stop_tx.send(true);
    let _ = supervisor.await;
    let _ = controller.await;
    // The server removes its socket as it stops; a call Docker still has
    // open may hold it up, but not for long.
    if !server_done {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), server).await;
    }
    outcome
}

fn controller_config(
    config: &Config,
    driver: Option<String>,
    plugin_id: Option<String>,
) -> ControllerConfig {
    ControllerConfig {
        drivers: driver.into_iter().collect(),
        plugin_id,
        docker_socket: config.docker_socket.clone(),
        drain: config.drain,
        next_hops: NextHops {
            v4: Some(config.router_id.into()),
            v6: config.next_hop_v6.map(Into::into),
        },
        resync: config.resync_interval,
        speaker: SpeakerConfig {
            asn: config.local_as,
            router_id: config.router_id,
            listen_port: config.router_port,
            peer: config.peer.clone(),
            connect_retry: config.connect_retry,
            graceful_restart: config.graceful_restart,
        },
    }
}

/// Serves the status endpoints. Not fatal when the address is taken:
/// announcing matters more than being watched.
fn spawn_status(
    address: std::net::SocketAddr,
    metrics: Arc<crate::status::Metrics>,
    status: watch::Receiver<crate::status::Status>,
    mut stop: watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        let shutdown = async move { crate::stopped(&mut stop).await };
        if let Err(error) = crate::status::serve(address, metrics, status, shutdown).await {
            tracing::error!(address = %address, error = %error, "status endpoints unavailable");
        }
    });
}

/// Waits for SIGTERM or SIGINT. SIGHUP, SIGUSR1 and SIGUSR2, which would
/// otherwise end bgplb on the spot (and its gobgpd with it), are logged and
/// ignored: bgplb has no configuration file to reload.
async fn wait_for_signal() -> anyhow::Result<()> {
    let listen = |kind: SignalKind, name: &str| {
        signal(kind).with_context(|| format!("failed to handle {name}"))
    };
    let mut term = listen(SignalKind::terminate(), "SIGTERM")?;
    let mut int = listen(SignalKind::interrupt(), "SIGINT")?;
    let mut hup = listen(SignalKind::hangup(), "SIGHUP")?;
    let mut usr1 = listen(SignalKind::user_defined1(), "SIGUSR1")?;
    let mut usr2 = listen(SignalKind::user_defined2(), "SIGUSR2")?;
    loop {
        let ignored = tokio::select! {
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
            _ = hup.recv() => "SIGHUP",
            _ = usr1.recv() => "SIGUSR1",
            _ = usr2.recv() => "SIGUSR2",
        };
        tracing::info!(signal = ignored, "signal ignored; SIGTERM stops bgplb");
    }
}

/// Where the locks on bgplb's sockets live.
const LOCK_DIR: &str = "/run/lock/bgplb";

/// Refuses to start where another process has bgplb's sockets: taking them
/// over would cut that process off from Docker (the plugin socket) or talk to
/// its gobgpd (the API), and removing them on exit would break it. A lock per
/// socket settles two bgplbs started at the same moment; a connection attempt
/// finds anybody else answering there.
fn claim_sockets(config: &Config) -> anyhow::Result<Vec<Flock<std::fs::File>>> {
    use std::os::unix::net::UnixStream;
    let (plugin, api) = (&config.plugin_socket, &config.gobgp_api);
    let locks = vec![
        lock_socket("PLUGIN_SOCKET", &plugin.display().to_string())?,
        lock_socket("GOBGP_API", &api.to_string())?,
    ];
    if UnixStream::connect(plugin).is_ok() {
        anyhow::bail!(
            "PLUGIN_SOCKET {} is in use by another process: \
             stop it or give this bgplb another PLUGIN_SOCKET",
            plugin.display()
        );
    }
    let api_in_use = match api {
        crate::config::ApiAddress::Unix(path) => UnixStream::connect(path).is_ok(),
        crate::config::ApiAddress::Tcp(addr) => std::net::TcpStream::connect(addr).is_ok(),
    };
    if api_in_use {
        anyhow::bail!(
            "GOBGP_API {api} is in use by another process (another gobgpd?): \
             give this bgplb a GOBGP_API of its own"
        );
    }
    Ok(locks)
}

/// Takes the lock on one socket, or says which bgplb setting is taken.
fn lock_socket(setting: &str, socket: &str) -> anyhow::Result<Flock<std::fs::File>> {
    std::fs::create_dir_all(LOCK_DIR).with_context(|| format!("failed to create {LOCK_DIR}"))?;
    let name: String = socket
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let path = std::path::Path::new(LOCK_DIR).join(format!("{name}.lock"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("failed to open {}", path.display()))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(lock),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => anyhow::bail!(
            "{setting} {socket} is in use by another bgplb: \
             stop it or give this one another {setting}"
        ),
        Err((_, errno)) => Err(anyhow::Error::from(errno))
            .with_context(|| format!("failed to lock {}", path.display())),
    }
}

/// bgplb's driver name if known now, or the managed plugin id to look it up by.
/// Docker names a legacy plugin after its socket file: `/run/docker/plugins/NAME.sock`.
fn identity(config: &Config) -> anyhow::Result<(Option<String>, Option<String>)> {
    if let Some(name) = &config.driver_name {
        return Ok((Some(name.clone()), None));
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    if let Some(id) = crate::identity::managed_plugin_id(&mountinfo) {
        return Ok((None, Some(id)));
    }
    let stem = config
        .plugin_socket
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty());
    let stem = stem.with_context(|| {
        format!(
            "PLUGIN_SOCKET {} has no file name",
            config.plugin_socket.display()
        )
    })?;
    Ok((Some(stem.to_string()), None))
}
