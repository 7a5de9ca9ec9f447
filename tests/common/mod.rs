//! The end-to-end lab: a router in a namespace, bgplb, Docker objects; all torn down on drop.
//!
//! ```text
//!   host namespace                              namespace bgplb-rtr<n>
//!  +------------------------------------+      +---------------------------+
//!  | bgplb (AS 65534) --> its gobgpd ---+------+--> gobgpd router (AS 64512)|
//!  |   bgplbh<n> 198.51.100.(4n+1)/30   | veth |   198.51.100.(4n+2)/30    |
//!  |   bridge bgplb-<net id> + VIP route|      |   API on 127.0.0.1:50051  |
//!  +------------------------------------+      +---------------------------+
//! ```
//!
//! Every test uses its own index `n`, so the namespaces, veths, plugin
//! sockets, driver names and Docker object names of two tests never collide,
//! and each bgplb touches only the links it marked as its own: tests run side
//! by side. Two runs of the suite at once would collide, though.
//! Everything here shells out to `ip`, `gobgp`, `gobgpd` and `docker`.
#![allow(dead_code)] // each test binary uses a different part of the lab

mod host;
mod image;
mod plugin;

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub use host::*;
pub use image::{ensure_image, IMAGE};
#[allow(unused_imports)] // only tests/managed.rs and tests/swarm.rs use it
pub use plugin::*;

/// AS of the lab router.
pub const ROUTER_AS: u32 = 64512;
/// AS bgplb speaks as in the lab (must differ from the router's: eBGP).
pub const BGPLB_AS: u32 = 65534;
/// Route protocol number bgplb tags its kernel routes with by default.
pub const ROUTE_PROTOCOL: u32 = 201;
/// Default bound for every wait in the end-to-end tests.
pub const WAIT: Duration = Duration::from_secs(30);

/// Shell command of a test container: exits 0 on SIGTERM, ignores SIGUSR2.
const CONTAINER_CMD: &str = r#"trap "exit 0" TERM; trap "" USR2; while true; do sleep 1; done"#;

/// The router's configuration template, shared with `deploy/lab/demo.sh`.
const ROUTER_TOML: &str = include_str!("../../deploy/lab/router.toml");

/// Whether a test container carries a Docker health check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// Healthy while `/tmp/unhealthy` does not exist (probe every second).
    Checked,
    /// No health check: "running" is all bgplb can go by.
    None,
}

/// A Docker network made by the lab, with the bridge bgplb should create for it.
#[derive(Clone, Debug)]
pub struct Network {
    /// Docker's name of the network.
    pub name: String,
    /// Full network id.
    pub id: String,
    /// `bgplb-` and the first 9 characters of the id.
    pub bridge: String,
}

/// One lab: router namespace, veth, router gobgpd, optionally bgplb, and
/// the Docker objects a test made. Dropping it removes all of them, in
/// dependency order, also when the test panics.
pub struct Lab {
    n: u8,
    dir: Option<TempDir>,
    router: Option<Child>,
    bgplb: Option<Child>,
    bgplb_env: Vec<(String, String)>,
    containers: Vec<String>,
    networks: Vec<String>,
    /// A failure report was already printed (Drop need not print another).
    reported: Cell<bool>,
}

impl Lab {
    /// Builds the test image if needed, then creates namespace, veth and router.
    ///
    /// `n` picks the addresses (198.51.100.4n+1 and .4n+2) and every name.
    pub fn new(n: u8) -> Lab {
        // 63 (198.51.100.253/.254) belongs to deploy/lab/demo.sh.
        assert!((1..=62).contains(&n), "lab index {n} out of range 1..=62");
        require_root();
        ensure_image();

        let dir = tempfile::Builder::new()
            .prefix(&format!("bgplb-lab{n}-"))
            .tempdir()
            .expect("failed to create the lab's temporary directory");
        let mut lab = Lab {
            n,
            dir: Some(dir),
            router: None,
            bgplb: None,
            bgplb_env: Vec::new(),
            containers: Vec::new(),
            networks: Vec::new(),
            reported: Cell::new(false),
        };
        lab.remove_leftovers();
        lab.create_link();
        lab.start_router();
        lab
    }

    // ---- names and addresses ------------------------------------------

    /// Name of the router's network namespace.
    pub fn netns(&self) -> String {
        format!("bgplb-rtr{}", self.n)
    }

    /// Host side of the veth pair.
    pub fn host_if(&self) -> String {
        format!("bgplbh{}", self.n)
    }

    /// Namespace side of the veth pair.
    pub fn router_if(&self) -> String {
        format!("bgplbr{}", self.n)
    }

    /// Host address on the link: bgplb's ROUTER_ID and announced next hop.
    pub fn host_address(&self) -> Ipv4Addr {
        Ipv4Addr::new(198, 51, 100, 4 * self.n + 1)
    }

    /// Router address on the link: bgplb's PEER_ADDRESS.
    pub fn router_address(&self) -> Ipv4Addr {
        Ipv4Addr::new(198, 51, 100, 4 * self.n + 2)
    }

    /// Docker driver name of this lab's bgplb (the socket file's stem).
    pub fn driver(&self) -> String {
        format!("bgplb-t{}", self.n)
    }

    /// Unix socket bgplb serves the plugin protocol on.
    pub fn plugin_socket(&self) -> PathBuf {
        PathBuf::from(format!("/run/docker/plugins/{}.sock", self.driver()))
    }

    /// GoBGP API address of bgplb's own gobgpd.
    pub fn gobgp_api(&self) -> String {
        format!("unix:///run/bgplb-t{}/gobgp.sock", self.n)
    }

    /// Directory of [`Lab::gobgp_api`]'s socket (bgplb creates it).
    fn gobgp_api_dir(&self) -> PathBuf {
        PathBuf::from(format!("/run/bgplb-t{}", self.n))
    }

    /// Directory kept on failure: logs, router config, bgplb state.
    pub fn dir(&self) -> &Path {
        self.dir
            .as_ref()
            .expect("lab directory already released")
            .path()
    }

    /// bgplb's log file (stdout and stderr, across restarts).
    pub fn bgplb_log(&self) -> PathBuf {
        self.dir().join("bgplb.log")
    }

    /// The router gobgpd's log file.
    pub fn router_log(&self) -> PathBuf {
        self.dir().join("router.log")
    }

    /// Docker object names of this lab start with this prefix.
    fn prefix(&self) -> String {
        format!("bgplb-t{}-", self.n)
    }

    // ---- namespace and router -----------------------------------------

    /// Removes what a killed earlier run with the same index left behind.
    fn remove_leftovers(&self) {
        let filter = format!("name=^{}", self.prefix());
        let ids = docker(&["ps", "-aq", "--filter", &filter]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            let _ = docker(&["rm", "-f", id]);
        }
        let nets = docker(&["network", "ls", "-q", "--filter", &filter]);
        for id in String::from_utf8_lossy(&nets.stdout).split_whitespace() {
            let _ = run("timeout", &["90", "docker", "network", "rm", id]);
        }

        // Only the processes inside our own namespace: a router of a killed run.
        let pids = run("ip", &["netns", "pids", &self.netns()]);
        for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
            let _ = run("kill", &["-KILL", pid]);
        }
        let _ = run("ip", &["netns", "delete", &self.netns()]);
        let _ = run("ip", &["link", "delete", &self.host_if()]);
        let _ = fs::remove_file(self.plugin_socket());
        let _ = fs::remove_dir_all(self.gobgp_api_dir());
    }

    /// Creates the namespace and the veth pair, addresses both ends, brings them up.
    fn create_link(&self) {
        let (ns, host_if, router_if) = (self.netns(), self.host_if(), self.router_if());
        let (host, router) = (self.host_address(), self.router_address());
        for cmd in [
            format!("netns add {ns}"),
            format!("link add {host_if} type veth peer name {router_if} netns {ns}"),
            format!("addr add {host}/30 dev {host_if}"),
            format!("link set {host_if} up"),
            format!("-n {ns} addr add {router}/30 dev {router_if}"),
            format!("-n {ns} link set {router_if} up"),
            format!("-n {ns} link set lo up"),
        ] {
            run_ok("ip", &cmd.split_whitespace().collect::<Vec<_>>());
        }
    }

    /// Starts the router gobgpd in the namespace and waits for its API.
    fn start_router(&mut self) {
        let config = self.dir().join("router.toml");
        let toml = ROUTER_TOML.replace("@ROUTER_ADDRESS@", &self.router_address().to_string());
        fs::write(&config, toml).expect("failed to write the router configuration");
        let (stdout, stderr) = log_handles(&self.router_log(), false);

        // `ip netns exec` execs gobgpd, so the child's PID is gobgpd's.
        let child = Command::new("ip")
            .args(["netns", "exec", &self.netns(), "gobgpd", "-f"])
            .arg(&config)
            .args("--api-hosts 127.0.0.1:50051 --pprof-disable -l debug -p".split(' '))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("failed to start the router gobgpd");
        self.router = Some(child);

        self.wait_until("the router's gobgpd answers on its API", WAIT, || {
            self.gobgp(&["global"]).status.success()
        });
    }

    /// Runs the `gobgp` CLI against the router.
    pub fn gobgp(&self, args: &[&str]) -> Output {
        let ns = self.netns();
        let mut all = vec!["netns", "exec", &ns];
        all.extend(["gobgp", "-u", "127.0.0.1", "-p", "50051"]);
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// The router's IPv4 RIB: prefix to the next hops of its paths.
    pub fn router_rib(&self) -> BTreeMap<String, Vec<String>> {
        self.try_router_rib().unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_router_rib(&self) -> Result<BTreeMap<String, Vec<String>>, String> {
        let out = self.gobgp(&["global", "rib", "-a", "ipv4", "-j"]);
        if !out.status.success() {
            return Err(format!(
                "gobgp global rib failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        parse_rib(&out.stdout)
    }

    /// Next hops the router has for `prefix` (empty when it has no path).
    pub fn next_hops(&self, prefix: &str) -> Vec<String> {
        self.router_rib().remove(prefix).unwrap_or_default()
    }

    /// Whether the router has a path for `vip`/32 with bgplb's next hop.
    pub fn announced(&self, vip: Ipv4Addr) -> bool {
        let host = self.host_address().to_string();
        self.next_hops(&format!("{vip}/32")).contains(&host)
    }

    /// Whether the router has no path at all for `vip`/32.
    pub fn withdrawn(&self, vip: Ipv4Addr) -> bool {
        self.next_hops(&format!("{vip}/32")).is_empty()
    }

    /// Whether the host has the route `vip dev <bridge> proto 201`.
    pub fn has_kernel_route(&self, vip: Ipv4Addr, bridge: &str) -> bool {
        let want = (format!("{vip}/32"), bridge.to_string());
        kernel_routes(ROUTE_PROTOCOL).contains(&want)
    }

    /// Whether the host has any route to `vip`/32 tagged with bgplb's protocol.
    pub fn has_any_kernel_route(&self, vip: Ipv4Addr) -> bool {
        let want = format!("{vip}/32");
        kernel_routes(ROUTE_PROTOCOL)
            .iter()
            .any(|(dst, _)| *dst == want)
    }

    // ---- waiting and failure reports ----------------------------------

    /// Polls `check` until it holds; after `timeout` panics with `desc` and
    /// the lab's state: router RIB, kernel routes and log tails.
    pub fn wait_until(&self, desc: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
        let start = Instant::now();
        loop {
            if check() {
                return;
            }
            if start.elapsed() > timeout {
                // The report is in the panic message; Drop need not repeat it.
                let report = self.report();
                self.reported.set(true);
                panic!("timed out after {timeout:?} waiting until {desc}\n{report}");
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// The lab's state as text, for failure messages.
    pub fn report(&self) -> String {
        let mut r = String::new();
        let _ = writeln!(
            r,
            "---- lab {} (files in {}) ----",
            self.n,
            self.dir().display()
        );
        match self.try_router_rib() {
            Ok(rib) => {
                let _ = writeln!(r, "router rib (ipv4): {rib:?}");
            }
            Err(e) => {
                let _ = writeln!(r, "router rib: {e}");
            }
        }
        let neighbors = self.gobgp(&["neighbor"]);
        let _ = writeln!(
            r,
            "router neighbors:\n{}",
            String::from_utf8_lossy(&neighbors.stdout)
        );
        let _ = writeln!(
            r,
            "kernel routes proto {ROUTE_PROTOCOL}: {:?}",
            kernel_routes(ROUTE_PROTOCOL)
        );
        for c in &self.containers {
            let state = docker(&[
                "inspect",
                "-f",
                "{{.Name}} {{.State.Status}} exit={{.State.ExitCode}} \
                 health={{if .State.Health}}{{.State.Health.Status}}{{end}}",
                c,
            ]);
            let _ = write!(r, "container {}", String::from_utf8_lossy(&state.stdout));
        }
        let _ = writeln!(r, "bgplb process: {}", self.bgplb_state());
        let _ = writeln!(r, "---- tail of {} ----", self.bgplb_log().display());
        let _ = writeln!(r, "{}", tail(&self.bgplb_log(), 60));
        let _ = writeln!(r, "---- tail of {} ----", self.router_log().display());
        let _ = writeln!(r, "{}", tail(&self.router_log(), 30));
        r
    }

    fn bgplb_state(&self) -> String {
        match &self.bgplb {
            None => "not running".into(),
            Some(child) => match fs::metadata(format!("/proc/{}", child.id())) {
                Ok(_) => format!("pid {}", child.id()),
                Err(_) => format!("pid {} has exited", child.id()),
            },
        }
    }

    // ---- bgplb --------------------------------------------------------

    /// Starts bgplb with the lab's settings plus `extra` (which win), and
    /// waits until its plugin socket accepts connections.
    pub fn start_bgplb(&mut self, extra: &[(&str, &str)]) {
        let mut env: Vec<(String, String)> = vec![
            ("ROUTER_ID".into(), self.host_address().to_string()),
            ("PEER_ADDRESS".into(), self.router_address().to_string()),
            ("PEER_AS".into(), ROUTER_AS.to_string()),
            ("LOCAL_AS".into(), BGPLB_AS.to_string()),
            (
                "PLUGIN_SOCKET".into(),
                self.plugin_socket().display().to_string(),
            ),
            ("GOBGP_API".into(), self.gobgp_api()),
            // Labs run side by side; a test that wants the endpoints picks a port.
            ("STATUS_ADDRESS".into(), "off".into()),
            // bgplb's own debug lines; its libraries' (h2, tower) drown them.
            ("RUST_LOG".into(), "info,bgplb=debug".into()),
            ("NO_COLOR".into(), "1".into()),
        ];
        for (key, value) in extra {
            env.retain(|(k, _)| k != key);
            env.push((key.to_string(), value.to_string()));
        }
        self.bgplb_env = env;
        self.spawn_bgplb();
    }

    fn spawn_bgplb(&mut self) {
        assert!(self.bgplb.is_none(), "bgplb is already running");
        let (mut stdout, stderr) = log_handles(&self.bgplb_log(), true);
        let _ = writeln!(stdout, "==== lab: starting bgplb with {:?}", self.bgplb_env);

        // A clean environment: only PATH (to find gobgpd) and the lab's settings.
        let child = Command::new(env!("CARGO_BIN_EXE_bgplb"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(self.bgplb_env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("failed to start bgplb");
        self.bgplb = Some(child);

        let socket = self.plugin_socket();
        let start = Instant::now();
        loop {
            if UnixStream::connect(&socket).is_ok() {
                return;
            }
            if let Some(status) = self.bgplb_exited() {
                let report = self.report();
                self.reported.set(true);
                panic!("bgplb exited during start-up ({status})\n{report}");
            }
            if start.elapsed() > WAIT {
                let report = self.report();
                self.reported.set(true);
                panic!(
                    "bgplb did not listen on {} within {WAIT:?}\n{report}",
                    socket.display()
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs a second bgplb with this lab's settings and `extra`, as a user
    /// starting it twice would, and returns its exit status and stderr; one
    /// still running after `within` is killed and reported as `None`.
    pub fn run_another_bgplb(
        &self,
        extra: &[(&str, &str)],
        within: Duration,
    ) -> (Option<ExitStatus>, String) {
        let mut env = self.bgplb_env.clone();
        for (key, value) in extra {
            env.retain(|(k, _)| k != key);
            env.push((key.to_string(), value.to_string()));
        }
        let err_path = self.dir().join("another-bgplb.err");
        let stderr = fs::File::create(&err_path).expect("stderr file of the second bgplb");
        let mut child = Command::new(env!("CARGO_BIN_EXE_bgplb"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("failed to start a second bgplb");
        let deadline = Instant::now() + within;
        let status = loop {
            if let Ok(Some(status)) = child.try_wait() {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = run("kill", &["-TERM", &child.id().to_string()]);
                let _ = child.wait();
                break None;
            }
            thread::sleep(Duration::from_millis(100));
        };
        (status, fs::read_to_string(&err_path).unwrap_or_default())
    }

    /// A network with the address `vip` and a container on it; waits until
    /// the address is announced and routed.
    pub fn serve(&mut self, name: &str, vip: Ipv4Addr, health: Health) -> (Network, String) {
        let net = self
            .create_network(name, &subnet(vip))
            .unwrap_or_else(|e| panic!("docker network create {name}: {e}"));
        let c = self.run_container(name, &net, health);
        self.wait_until(&format!("{vip}/32 is announced"), WAIT, || {
            self.announced(vip)
        });
        self.wait_until(
            &format!("kernel route {vip} dev {} proto 201", net.bridge),
            WAIT,
            || self.has_kernel_route(vip, &net.bridge),
        );
        (net, c)
    }

    /// Links whose alias marks them as this lab's bgplb's.
    pub fn owned_links(&self) -> Vec<String> {
        let owner = format!("bgplb {}", self.plugin_socket().display());
        let Ok(entries) = fs::read_dir("/sys/class/net") else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|name| {
                fs::read_to_string(format!("/sys/class/net/{name}/ifalias"))
                    .is_ok_and(|a| a.trim_end() == owner)
            })
            .collect()
    }

    fn bgplb_exited(&mut self) -> Option<ExitStatus> {
        self.bgplb
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// PID of the running bgplb.
    pub fn bgplb_pid(&self) -> u32 {
        self.bgplb.as_ref().expect("bgplb is not running").id()
    }

    /// Stops bgplb with SIGTERM (SIGKILL after 15 s) and returns its exit status.
    pub fn stop_bgplb(&mut self) -> Option<ExitStatus> {
        let mut child = self.bgplb.take()?;
        let _ = run("kill", &["-TERM", &child.id().to_string()]);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            thread::sleep(Duration::from_millis(100));
        }
        eprintln!("lab {}: bgplb ignored SIGTERM for 15 s; killing it", self.n);
        let _ = child.kill();
        child.wait().ok()
    }

    /// Kills bgplb with SIGKILL, as a crash would.
    pub fn kill_bgplb(&mut self) {
        if let Some(mut child) = self.bgplb.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops bgplb with SIGTERM and starts it again with the same settings.
    pub fn restart_bgplb(&mut self) {
        self.stop_bgplb();
        self.spawn_bgplb();
    }

    /// PIDs of gobgpd processes serving this lab's bgplb API socket.
    ///
    /// These are bgplb's children; after bgplb has stopped there should be none.
    pub fn bgplb_gobgpd_pids(&self) -> Vec<u32> {
        let needle = self.gobgp_api().replace("unix://", "");
        let Ok(entries) = fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let cmdline = String::from_utf8_lossy(&cmdline);
                cmdline.contains("gobgpd") && cmdline.contains(&needle)
            })
            .collect()
    }

    // ---- faults (tests/faults.rs) --------------------------------------

    /// Kills the router's gobgpd with SIGKILL and starts it again (its log
    /// starts afresh); returns once its API answers.
    pub fn restart_router(&mut self) {
        if let Some(mut router) = self.router.take() {
            let _ = router.kill();
            let _ = router.wait();
        }
        self.start_router();
    }

    /// Runs the `gobgp` CLI against bgplb's own gobgpd (its unix API socket).
    pub fn bgplb_gobgp(&self, args: &[&str]) -> Output {
        let target = self.gobgp_api();
        let mut all = vec!["--target", target.as_str()];
        all.extend_from_slice(args);
        run("gobgp", &all)
    }

    /// The IPv4 paths in bgplb's own gobgpd: prefix to next hops.
    pub fn bgplb_rib(&self) -> Result<BTreeMap<String, Vec<String>>, String> {
        let out = self.bgplb_gobgp(&["global", "rib", "-a", "ipv4", "-j"]);
        if !out.status.success() {
            return Err(format!(
                "gobgp global rib (bgplb's gobgpd) failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        if matches!(text.trim(), "" | "null") {
            return Ok(BTreeMap::new());
        }
        parse_rib(&out.stdout)
    }

    /// Makes the lab remove a container it did not start itself on teardown.
    pub fn adopt_container(&mut self, name: &str) {
        self.containers.push(name.to_string());
    }

    // ---- Docker -------------------------------------------------------

    /// Creates a network of this lab's driver (also as IPAM driver).
    ///
    /// `name` gets the lab's prefix. On failure returns docker's stderr.
    pub fn create_network(&mut self, name: &str, subnet: &str) -> Result<Network, String> {
        self.create_network_with(name, &["--subnet", subnet])
    }

    /// Creates an IPv6 network of this lab's driver announcing `v6subnet`
    /// (a /128, given as the IPAM option `v6subnet`, as in docker-bgp-lb).
    pub fn create_network_v6(&mut self, name: &str, v6subnet: &str) -> Result<Network, String> {
        let option = format!("v6subnet={v6subnet}");
        self.create_network_with(name, &["--ipv6", "--ipam-opt", &option])
    }

    pub fn create_network_with(&mut self, name: &str, options: &[&str]) -> Result<Network, String> {
        let name = format!("{}{name}", self.prefix());
        let driver = self.driver();
        self.networks.push(name.clone());
        let mut args = vec![
            "network",
            "create",
            "--driver",
            &driver,
            "--ipam-driver",
            &driver,
        ];
        args.extend_from_slice(options);
        args.push(&name);
        let out = docker(&args);
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let bridge = format!("bgplb-{}", &id[..9]);
        Ok(Network { name, id, bridge })
    }

    /// `docker network rm`; the network is no longer tracked.
    pub fn remove_network(&mut self, network: &Network) {
        docker_ok(&["network", "rm", &network.name]);
        self.networks.retain(|n| *n != network.name);
    }

    /// Starts a container of the test image on `network`; returns its name.
    ///
    /// It exits 0 on SIGTERM and ignores SIGUSR2. With [`Health::Checked`]
    /// it probes every second and turns unhealthy after one failed probe.
    pub fn run_container(&mut self, name: &str, network: &Network, health: Health) -> String {
        let name = format!("{}{name}", self.prefix());
        self.containers.push(name.clone());
        let mut args = vec!["run", "-d", "--name", &name, "--network", &network.name];
        if health == Health::Checked {
            args.extend([
                "--health-cmd",
                "test ! -e /tmp/unhealthy",
                "--health-interval",
                "1s",
                "--health-retries",
                "1",
                "--health-timeout",
                "1s",
            ]);
        }
        args.extend([IMAGE, "sh", "-c", CONTAINER_CMD]);
        let out = docker(&args);
        if !out.status.success() {
            let report = self.report();
            self.reported.set(true);
            panic!(
                "docker run {name} failed: {}\n{report}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        name
    }

    /// Runs a command in a container and asserts it succeeded.
    pub fn exec(&self, container: &str, cmd: &[&str]) {
        let mut args = vec!["exec", container];
        args.extend_from_slice(cmd);
        docker_ok(&args);
    }

    /// Makes a health-checked container fail its probe.
    pub fn make_unhealthy(&self, container: &str) {
        self.exec(container, &["touch", "/tmp/unhealthy"]);
    }

    /// Makes a health-checked container pass its probe again.
    pub fn make_healthy(&self, container: &str) {
        self.exec(container, &["rm", "-f", "/tmp/unhealthy"]);
    }

    /// `docker rm -f`; the container is no longer tracked.
    pub fn rm_force(&mut self, container: &str) {
        docker_ok(&["rm", "-f", container]);
        self.containers.retain(|c| c != container);
    }

    /// One field of `docker inspect`, by Go template.
    pub fn inspect(&self, container: &str, template: &str) -> String {
        docker_ok(&["inspect", "-f", template, container])
            .trim()
            .to_string()
    }

    /// `running`, `exited`, ...
    pub fn status(&self, container: &str) -> String {
        self.inspect(container, "{{.State.Status}}")
    }

    /// `starting`, `healthy`, `unhealthy`, or empty without a health check.
    pub fn health(&self, container: &str) -> String {
        self.inspect(
            container,
            "{{if .State.Health}}{{.State.Health.Status}}{{end}}",
        )
    }

    /// Exit code of a stopped container.
    pub fn exit_code(&self, container: &str) -> i64 {
        let code = self.inspect(container, "{{.State.ExitCode}}");
        code.parse()
            .unwrap_or_else(|_| panic!("exit code {code:?} is not a number"))
    }

    // ---- teardown -----------------------------------------------------

    fn teardown(&mut self) {
        // Containers before networks, networks before the plugin that owns them.
        for c in self.containers.drain(..).rev() {
            let _ = docker(&["rm", "-f", &c]);
        }
        for net in self.networks.drain(..).rev() {
            let out = docker(&["network", "rm", &net]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            if !out.status.success() && !stderr.contains("not found") {
                eprintln!(
                    "lab {}: docker network rm {net} failed: {}",
                    self.n,
                    stderr.trim()
                );
            }
        }
        if let Some(status) = self.stop_bgplb() {
            if !status.success() {
                eprintln!("lab {}: bgplb exited with {status} on SIGTERM", self.n);
            }
        }

        // bgplb should have stopped its gobgpd; say so loudly if not, then clean up.
        let orphans = self.bgplb_gobgpd_pids();
        if !orphans.is_empty() {
            eprintln!(
                "lab {}: bgplb left its gobgpd running (pids {orphans:?})",
                self.n
            );
            for pid in orphans {
                let _ = run("kill", &["-TERM", &pid.to_string()]);
            }
        }

        // Whatever bgplb left of its own is a leak: say so, then remove it.
        let leaked = self.owned_links();
        if !leaked.is_empty() {
            eprintln!("lab {}: bgplb left links behind: {leaked:?}", self.n);
            for link in leaked {
                let _ = run("ip", &["link", "delete", &link]);
            }
        }

        if let Some(mut router) = self.router.take() {
            let _ = run("kill", &["-TERM", &router.id().to_string()]);
            let _ = router.wait();
        }
        let _ = run("ip", &["netns", "delete", &self.netns()]);
        let _ = run("ip", &["link", "delete", &self.host_if()]);
        let _ = fs::remove_dir_all(self.gobgp_api_dir());
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let failed = thread::panicking();
        if failed && !self.reported.get() {
            eprintln!("{}", self.report());
        }
        self.teardown();
        if let Some(dir) = self.dir.take() {
            // BGPLB_LAB_KEEP=1 keeps every lab's files, e.g. to read the
            // logs of a passing test next to a failing one.
            if failed || std::env::var_os("BGPLB_LAB_KEEP").is_some() {
                eprintln!("lab {}: files kept in {}", self.n, dir.keep().display());
            }
        }
    }
}
