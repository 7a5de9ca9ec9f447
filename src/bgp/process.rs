//! Runs `gobgpd` as a supervised child: started with its API on a private
//! socket and pprof off, restarted with backoff when it dies, stopped with bgplb.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::BgpClient;
use crate::config::ApiAddress;
use crate::docker::Backoff;
use crate::stopped;

const READY_TIMEOUT: Duration = Duration::from_secs(15);
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// A child that ran this long before dying restarts without delay.
const STABLE_AFTER: Duration = Duration::from_secs(60);

/// What the supervisor tells the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpeakerEvent {
    /// A new gobgpd answers on its API and needs configuring.
    Started { pid: u32 },
    /// gobgpd exited; a new one will follow.
    Exited,
}

/// How to run gobgpd.
#[derive(Debug, Clone)]
pub struct ProcessConfig {
    pub binary: PathBuf,
    pub api: ApiAddress,
    /// Stop gobgpd without a NOTIFICATION, so that the peer keeps our routes
    /// as stale during a graceful restart instead of dropping them.
    pub graceful_restart: bool,
}

/// Starts the supervisor task. It runs until `shutdown` turns true, then stops gobgpd.
pub fn supervise<M>(
    config: ProcessConfig,
    events: mpsc::Sender<M>,
    shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()>
where
    M: From<SpeakerEvent> + Send + 'static,
{
    tokio::spawn(supervise_loop(config, events, shutdown))
}

async fn supervise_loop<M: From<SpeakerEvent> + Send>(
    config: ProcessConfig,
    events: mpsc::Sender<M>,
    mut shutdown: watch::Receiver<bool>,
) {
    let client = match BgpClient::new(&config.api) {
        Ok(c) => c,
        Err(error) => return tracing::error!(error = %error, "cannot reach gobgpd api"),
    };
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
    while !*shutdown.borrow() {
        let started = Instant::now();
        match start(&config).await {
            Ok(mut child) => {
                let pid = child.id().unwrap_or_default();
                tracing::info!(pid, binary = %config.binary.display(), api = %config.api, "gobgpd started");
                if wait_ready(&client, &mut child).await {
                    let _ = events.send(SpeakerEvent::Started { pid }.into()).await;
                }
                tokio::select! {
                    status = child.wait() => {
                        let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                        tracing::warn!(pid, status = %status, "gobgpd exited; restarting it");
                        let _ = events.send(SpeakerEvent::Exited.into()).await;
                    }
                    _ = stopped(&mut shutdown) => {
                        stop(&mut child, pid, config.graceful_restart).await;
                        // A killed gobgpd leaves its socket file behind.
                        if let ApiAddress::Unix(socket) = &config.api {
                            let _ = std::fs::remove_file(socket);
                        }
                        return;
                    }
                }
            }
            Err(error) => {
                tracing::error!(binary = %config.binary.display(), error = %error, "failed to start gobgpd")
            }
        }
        if started.elapsed() > STABLE_AFTER {
            backoff.reset();
        }
        let delay = backoff.delay();
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stopped(&mut shutdown) => return,
        }
    }
}

async fn start(config: &ProcessConfig) -> std::io::Result<Child> {
    let api = match &config.api {
        ApiAddress::Unix(socket) => {
            prepare_socket_dir(socket)?;
            format!("unix://{}", socket.display())
        }
        ApiAddress::Tcp(addr) => addr.to_string(),
    };
    let mut command = Command::new(&config.binary);
    command
        .args([
            "--api-hosts",
            &api,
            "--pprof-disable",
            "--log-level",
            "info",
            "--log-plain",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    die_with_parent(&mut command);
    let mut child = command.spawn()?;
    forward_logs(child.stdout.take());
    forward_logs(child.stderr.take());
    Ok(child)
}

/// If bgplb is killed outright, its gobgpd must not outlive it: a stray speaker
/// would keep announcing what nobody controls any more.
#[allow(unsafe_code)]
fn die_with_parent(command: &mut Command) {
    // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe and touches no
    // memory of the parent; it is the only call made between fork and exec.
    unsafe {
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(std::io::Error::from)
        });
    }
}

/// The API socket lives in a directory only root can enter, because gobgpd's
/// API has no authentication. A socket left by a dead gobgpd is removed.
fn prepare_socket_dir(socket: &std::path::Path) -> std::io::Result<()> {
    if let Some(dir) = socket.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    match std::fs::remove_file(socket) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn forward_logs(pipe: Option<impl AsyncRead + Unpin + Send + 'static>) {
    let Some(pipe) = pipe else { return };
    tokio::spawn(async move {
        let mut lines = BufReader::new(pipe).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::debug!(target: "gobgpd", "{line}");
        }
    });
}

async fn wait_ready(client: &BgpClient, child: &mut Child) -> bool {
    let deadline = Instant::now() + READY_TIMEOUT;
    while Instant::now() < deadline {
        if client.global().await.is_ok() {
            return true;
        }
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tracing::warn!("gobgpd api did not answer in time");
    false
}

/// Stops gobgpd. With graceful restart it is killed outright: a SIGTERM would
/// make it send a Cease NOTIFICATION, and the peer would drop our routes at
/// once (RFC 4724); without one the peer keeps them for the restart time.
async fn stop(child: &mut Child, pid: u32, graceful_restart: bool) {
    if graceful_restart {
        let _ = child.kill().await;
        return tracing::info!(
            pid,
            "gobgpd stopped; peers keep routes for the graceful restart time"
        );
    }
    let target = nix::unistd::Pid::from_raw(pid as i32);
    let _ = nix::sys::signal::kill(target, nix::sys::signal::Signal::SIGTERM);
    if tokio::time::timeout(STOP_TIMEOUT, child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
    tracing::info!(pid, "gobgpd stopped");
}
