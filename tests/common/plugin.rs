//! bgplb as a managed (v2) Docker plugin, and a single-node swarm, for
//! `tests/managed.rs` and `tests/swarm.rs`.
//!
//! The plugin directory (config.json + rootfs) is built once per test run by
//! `deploy/plugin/build.sh` from the test build's bgplb binary, and cached
//! until that binary, config.json or build.sh change. Each test then
//! `docker plugin create`s it under a name of its own. A managed plugin's
//! stdout and stderr go to dockerd's log; failure reports quote its lines.

use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant, UNIX_EPOCH};

use super::host::{docker, docker_ok, run};
use super::{Lab, Network, BGPLB_AS, ROUTER_AS};

/// dockerd's log when `deploy/lab/setup-host.sh` started it.
pub const DOCKERD_LOG: &str = "/var/log/bgplb-dockerd.log";

/// Where the cached plugin directory lives.
const PLUGIN_DIR: &str = "/tmp/bgplb-test-plugin";

/// Builds the plugin directory unless a current one exists; returns its path.
///
/// Once per process, and under a lock file across processes.
pub fn ensure_plugin_dir() -> PathBuf {
    static READY: OnceLock<PathBuf> = OnceLock::new();
    READY
        .get_or_init(|| {
            let _lock = DirLock::acquire(PathBuf::from(format!("{PLUGIN_DIR}.lock")));
            let dir = PathBuf::from(PLUGIN_DIR);
            let stamp = dir.join(".bgplb-test-stamp");
            let want = plugin_stamp();
            if fs::read_to_string(&stamp).ok().as_deref() != Some(want.as_str()) {
                let root = env!("CARGO_MANIFEST_DIR");
                let out = Command::new(format!("{root}/deploy/plugin/build.sh"))
                    .args(["--binary", env!("CARGO_BIN_EXE_bgplb"), "--dir", PLUGIN_DIR])
                    .arg("--no-create")
                    .output()
                    .expect("failed to run deploy/plugin/build.sh");
                assert!(
                    out.status.success(),
                    "deploy/plugin/build.sh failed ({}):\n{}{}",
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                fs::write(&stamp, &want).expect("failed to write the plugin stamp");
            }
            dir
        })
        .clone()
}

/// What the plugin directory was built from: binary size and time, and the
/// contents of config.json and build.sh.
fn plugin_stamp() -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let bin = fs::metadata(env!("CARGO_BIN_EXE_bgplb")).expect("no bgplb binary");
    let mtime = bin
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut h = DefaultHasher::new();
    for f in ["deploy/plugin/config.json", "deploy/plugin/build.sh"] {
        fs::read(format!("{root}/{f}"))
            .unwrap_or_default()
            .hash(&mut h);
    }
    format!(
        "{} {} {} {:x}",
        env!("CARGO_BIN_EXE_bgplb"),
        bin.len(),
        mtime,
        h.finish()
    )
}

/// A copy (hard links) of the cached plugin directory whose rootfs names the
/// plugin in `/etc/bgplb-plugin`: Docker 20.10 refuses to create a plugin
/// whose rootfs is byte-identical to an installed one's ("content
/// sha256:...: already exists"). The caller removes it after `docker plugin create`.
pub fn plugin_dir_named(name: &str) -> PathBuf {
    let cached = ensure_plugin_dir();
    let safe: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let dir = PathBuf::from(format!("{PLUGIN_DIR}-{safe}"));
    let _ = fs::remove_dir_all(&dir);
    let out = run(
        "cp",
        &[
            "-al",
            cached.to_str().expect("UTF-8 path"),
            dir.to_str().expect("UTF-8 path"),
        ],
    );
    assert!(
        out.status.success(),
        "cp -al of the plugin directory failed"
    );
    // A new file, not a write through the hard link into the cache.
    let marker = dir.join("rootfs/etc/bgplb-plugin");
    let _ = fs::remove_file(&marker);
    fs::write(&marker, format!("{name}\n")).expect("failed to write /etc/bgplb-plugin");
    dir
}

/// A managed bgplb plugin installed under a name of the test's own.
///
/// Dropping it removes, in order, the containers on its networks, its
/// networks, and the plugin itself (also when the test panics).
pub struct ManagedPlugin {
    /// `NAME:TAG`, also the network and IPAM driver name.
    pub name: String,
    /// Full plugin id.
    pub id: String,
    /// Position in dockerd's log when the plugin was created.
    log_start: u64,
}

impl ManagedPlugin {
    /// `docker plugin create NAME:TAG` from the cached plugin directory, then
    /// `docker plugin set` of the lab's peering settings and `settings`
    /// (which win). The plugin is left disabled.
    pub fn create(lab: &Lab, name: &str, settings: &[(&str, &str)]) -> ManagedPlugin {
        remove_plugin_and_its_objects(name);
        let log_start = fs::metadata(DOCKERD_LOG).map(|m| m.len()).unwrap_or(0);
        let dir = plugin_dir_named(name);
        let out = docker(&["plugin", "create", name, dir.to_str().expect("UTF-8 path")]);
        let _ = fs::remove_dir_all(&dir);
        assert!(
            out.status.success(),
            "docker plugin create {name} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        let id = docker_ok(&["plugin", "inspect", "-f", "{{.Id}}", name])
            .trim()
            .to_string();
        let plugin = ManagedPlugin {
            name: name.to_string(),
            id,
            log_start,
        };
        let mut all: Vec<(String, String)> = lab_settings(lab);
        for (k, v) in settings {
            all.retain(|(key, _)| key != k);
            all.push((k.to_string(), v.to_string()));
        }
        let pairs: Vec<String> = all.iter().map(|(k, v)| format!("{k}={v}")).collect();
        plugin.set(&pairs.iter().map(String::as_str).collect::<Vec<_>>());
        plugin
    }

    /// `docker plugin set NAME K=V...` (the plugin must be disabled).
    pub fn set(&self, pairs: &[&str]) {
        let mut args = vec!["plugin", "set", &self.name];
        args.extend_from_slice(pairs);
        docker_ok(&args);
    }

    /// `docker plugin enable`; panics with the plugin's log if it fails.
    pub fn enable(&self) {
        let out = docker(&["plugin", "enable", &self.name]);
        assert!(
            out.status.success(),
            "docker plugin enable {} failed: {}\n{}",
            self.name,
            String::from_utf8_lossy(&out.stderr).trim(),
            self.log_tail(40)
        );
    }

    /// `docker plugin disable` (with `-f` when `force`).
    pub fn disable(&self, force: bool) {
        let mut args = vec!["plugin", "disable"];
        if force {
            args.push("-f");
        }
        args.push(&self.name);
        docker_ok(&args);
    }

    /// Whether Docker reports the plugin enabled.
    pub fn enabled(&self) -> bool {
        let out = docker(&["plugin", "inspect", "-f", "{{.Enabled}}", &self.name]);
        String::from_utf8_lossy(&out.stdout).trim() == "true"
    }

    /// The value of one env setting as Docker will pass it.
    pub fn setting(&self, key: &str) -> Option<String> {
        let env = docker_ok(&[
            "plugin",
            "inspect",
            "-f",
            "{{json .Settings.Env}}",
            &self.name,
        ]);
        let env: Vec<String> = serde_json::from_str(env.trim()).expect("Settings.Env is JSON");
        let prefix = format!("{key}=");
        env.iter()
            .find_map(|e| e.strip_prefix(&prefix).map(str::to_string))
    }

    /// The plugin's root filesystem on the host.
    pub fn rootfs(&self) -> PathBuf {
        PathBuf::from(format!("/var/lib/docker/plugins/{}/rootfs", self.id))
    }

    /// PIDs of the plugin's processes (bgplb, gobgpd): those in the cgroup
    /// Docker names after the plugin id.
    pub fn pids(&self) -> Vec<u32> {
        cgroup_pids(&self.id)
    }

    /// The plugin's lines in dockerd's log since it was created (last `lines`).
    pub fn log_tail(&self, lines: usize) -> String {
        let Ok(text) = fs::read(DOCKERD_LOG) else {
            return format!("(no dockerd log at {DOCKERD_LOG})");
        };
        let text = String::from_utf8_lossy(&text[(self.log_start as usize).min(text.len())..])
            .into_owned();
        let id = format!("plugin={}", self.id);
        let mine: Vec<&str> = text.lines().filter(|l| l.contains(&id)).collect();
        format!(
            "---- plugin {} ({}) in {DOCKERD_LOG} ----\n{}",
            self.name,
            &self.id[..12],
            mine[mine.len().saturating_sub(lines)..].join("\n")
        )
    }

    /// Like [`Lab::wait_until`], with the plugin's log in the failure report.
    pub fn wait_until(
        &self,
        lab: &Lab,
        desc: &str,
        timeout: Duration,
        mut check: impl FnMut() -> bool,
    ) {
        let start = Instant::now();
        loop {
            if check() {
                return;
            }
            if start.elapsed() > timeout {
                let report = format!("{}{}", lab.report(), self.log_tail(60));
                lab.reported.set(true);
                panic!("timed out after {timeout:?} waiting until {desc}\n{report}");
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Panics with the lab's and the plugin's state unless `ok`.
    pub fn check(&self, lab: &Lab, ok: bool, what: &str) {
        if !ok {
            let report = format!("{}{}", lab.report(), self.log_tail(60));
            lab.reported.set(true);
            panic!("{what}\n{report}");
        }
    }

    /// Disables and removes the plugin now (its networks must be gone).
    pub fn remove(mut self) {
        docker_ok(&["plugin", "disable", &self.name]);
        docker_ok(&["plugin", "rm", &self.name]);
        self.name.clear();
    }
}

impl ManagedPlugin {
    /// What dropping does (networks, their containers, the plugin), now.
    pub fn remove_now(&mut self) {
        if self.name.is_empty() {
            return;
        }
        if thread::panicking() {
            eprintln!("{}", self.log_tail(80));
        }
        remove_plugin_and_its_objects(&self.name);
        self.name.clear();
    }
}

impl Drop for ManagedPlugin {
    fn drop(&mut self) {
        self.remove_now();
    }
}

/// PIDs of processes in a cgroup whose path holds `id` (a plugin's or a container's).
pub fn cgroup_pids(id: &str) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            fs::read_to_string(format!("/proc/{pid}/cgroup"))
                .is_ok_and(|cgroup| cgroup.contains(id))
        })
        .collect()
}

/// The lab's peering settings for a managed plugin.
fn lab_settings(lab: &Lab) -> Vec<(String, String)> {
    vec![
        ("ROUTER_ID".into(), lab.host_address().to_string()),
        ("PEER_ADDRESS".into(), lab.router_address().to_string()),
        ("PEER_AS".into(), ROUTER_AS.to_string()),
        ("LOCAL_AS".into(), BGPLB_AS.to_string()),
        ("RUST_LOG".into(), "info,bgplb=debug".into()),
        // Host network: each bgplb on the host needs a port of its own.
        (
            "STATUS_ADDRESS".into(),
            format!("127.0.0.1:{}", 29400 + u32::from(lab.n)),
        ),
    ]
}

/// Removes the containers on the networks of driver `name`, those networks,
/// and the plugin; whatever of it exists.
fn remove_plugin_and_its_objects(name: &str) {
    if !docker(&["plugin", "inspect", name]).status.success() {
        return;
    }
    let filter = format!("driver={name}");
    let nets = docker(&["network", "ls", "-q", "--no-trunc", "--filter", &filter]);
    for net in String::from_utf8_lossy(&nets.stdout).split_whitespace() {
        let ids = docker(&["ps", "-aq", "--filter", &format!("network={net}")]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            let _ = docker(&["rm", "-f", id]);
        }
        let _ = run("timeout", &["60", "docker", "network", "rm", net]);
    }
    let id = docker(&["plugin", "inspect", "-f", "{{.Id}}", name]);
    let id = String::from_utf8_lossy(&id.stdout).trim().to_string();
    let _ = docker(&["plugin", "disable", "-f", name]);
    let out = docker(&["plugin", "rm", "-f", name]);
    if !out.status.success() {
        eprintln!(
            "docker plugin rm -f {name} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    // Links the plugin's bgplb marked as its own outlive it only through a
    // bgplb bug; say so, and remove them so that they do not pile up.
    for link in owned_links(&id) {
        eprintln!("plugin {name} left its link {link} behind; removing it");
        let _ = run("ip", &["link", "delete", &link]);
    }
}

/// Host links whose alias marks them as made by the bgplb instance `owner`
/// (a managed plugin's id).
pub fn owned_links(owner: &str) -> Vec<String> {
    if owner.is_empty() {
        return Vec::new();
    }
    let out = run("ip", &["-d", "-o", "link", "show"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&format!("alias bgplb {owner}")))
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

impl Lab {
    /// Creates a network of `driver` (also as IPAM driver) with the lab's
    /// name prefix; the lab removes it on teardown. On failure returns docker's stderr.
    pub fn create_network_of(
        &mut self,
        driver: &str,
        name: &str,
        subnet: &str,
    ) -> Result<Network, String> {
        let name = format!("{}{name}", self.prefix());
        self.networks.push(name.clone());
        let out = docker(&[
            "network",
            "create",
            "--driver",
            driver,
            "--ipam-driver",
            driver,
            "--subnet",
            subnet,
            &name,
        ]);
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let bridge = format!("bgplb-{}", &id[..9]);
        Ok(Network { name, id, bridge })
    }

    /// Docker object names of this lab start with this prefix.
    pub fn name_prefix(&self) -> String {
        self.prefix()
    }
}

/// Host-side devices enslaved to `bridge` (the containers' veth ends).
pub fn bridge_ports(bridge: &str) -> Vec<String> {
    let Ok(entries) = fs::read_dir(format!("/sys/class/net/{bridge}/brif")) else {
        return Vec::new();
    };
    let mut ports: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    ports.sort();
    ports
}

/// A single-node swarm on this dockerd (`docker swarm init --advertise-addr
/// 127.0.0.1`); dropping it removes its services and leaves the swarm.
pub struct Swarm {
    services: Vec<String>,
}

impl Swarm {
    /// Leaves a swarm a killed earlier run left (one node, advertised on
    /// 127.0.0.1), then initialises one. Refuses to touch any other swarm.
    pub fn init() -> Swarm {
        if swarm_state() != "inactive" {
            let info = docker_ok(&["info", "-f", "{{.Swarm.NodeAddr}} {{.Swarm.Nodes}}"]);
            assert_eq!(
                info.trim(),
                "127.0.0.1 1",
                "this dockerd is in a swarm the tests did not make; the swarm tests need one outside any swarm"
            );
            let _ = docker(&["swarm", "leave", "--force"]);
        }
        docker_ok(&["swarm", "init", "--advertise-addr", "127.0.0.1"]);
        Swarm {
            services: Vec::new(),
        }
    }

    /// `docker service create -d --name NAME ARGS... --no-resolve-image IMAGE CMD...`.
    pub fn create_service(&mut self, name: &str, args: &[&str], image_and_cmd: &[&str]) {
        self.services.push(name.to_string());
        let mut all = vec![
            "service",
            "create",
            "-d",
            "--name",
            name,
            "--no-resolve-image",
        ];
        all.extend_from_slice(args);
        all.extend_from_slice(image_and_cmd);
        docker_ok(&all);
    }

    /// `docker service rm`; the service is no longer tracked.
    pub fn remove_service(&mut self, name: &str) {
        docker_ok(&["service", "rm", name]);
        self.services.retain(|s| s != name);
    }

    /// Running task containers of a service (full ids).
    pub fn task_containers(&self, service: &str) -> Vec<String> {
        let filter = format!("label=com.docker.swarm.service.name={service}");
        let out = docker_ok(&["ps", "-q", "--no-trunc", "--filter", &filter]);
        out.split_whitespace().map(str::to_string).collect()
    }

    /// Task containers of a service in any state.
    pub fn all_task_containers(&self, service: &str) -> Vec<String> {
        let filter = format!("label=com.docker.swarm.service.name={service}");
        let out = docker_ok(&["ps", "-aq", "--no-trunc", "--filter", &filter]);
        out.split_whitespace().map(str::to_string).collect()
    }
}

impl Drop for Swarm {
    fn drop(&mut self) {
        self.remove_services();
        let out = docker(&["swarm", "leave", "--force"]);
        if !out.status.success() {
            eprintln!(
                "docker swarm leave --force failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
}

impl Swarm {
    /// Removes the services made here and waits (bounded) for their tasks to go.
    pub fn remove_services(&mut self) {
        for s in self.services.drain(..) {
            let _ = docker(&["service", "rm", &s]);
            // Tasks leave a moment after their service; wait (bounded) for them.
            let deadline = Instant::now() + Duration::from_secs(30);
            let filter = format!("label=com.docker.swarm.service.name={s}");
            while Instant::now() < deadline {
                let out = docker(&["ps", "-aq", "--filter", &filter]);
                if String::from_utf8_lossy(&out.stdout).trim().is_empty() {
                    break;
                }
                thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

/// `inactive`, `active`, ...
pub fn swarm_state() -> String {
    docker_ok(&["info", "-f", "{{.Swarm.LocalNodeState}}"])
        .trim()
        .to_string()
}

/// A lock held by creating a directory; removed on drop.
struct DirLock(PathBuf);

impl DirLock {
    fn acquire(path: PathBuf) -> DirLock {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            match fs::create_dir(&path) {
                Ok(()) => return DirLock(path),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    // A holder that died leaves it; a build takes well under 2 minutes.
                    if age(&path).is_some_and(|a| a > Duration::from_secs(120)) {
                        let _ = fs::remove_dir(&path);
                    }
                }
                Err(e) => panic!("failed to create lock {}: {e}", path.display()),
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {}",
                path.display()
            );
            thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.0);
    }
}

fn age(path: &Path) -> Option<Duration> {
    let modified = fs::metadata(path).and_then(|m| m.modified()).ok()?;
    std::time::SystemTime::now().duration_since(modified).ok()
}
