//! End-to-end: bgplb as a managed plugin with GLOBAL_SCOPE=true on a
//! single-node swarm (`docker swarm init --advertise-addr 127.0.0.1`).
//! Lab indexes 50..=59.
//!
//! A swarm changes the whole dockerd, so `deploy/lab/test.sh` runs these
//! one at a time, after the other end-to-end tests, and leaves the swarm at
//! the end even if they fail. Each test also leaves it when it is dropped.

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::{docker_ok, link_exists, Lab, ManagedPlugin, Swarm, IMAGE, WAIT};

/// A VIP for the test with lab index `n` (apart from e2e.rs's 10 + n).
fn vip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(203, 0, 113, 100 + n)
}

/// The task's command: exits 0 on SIGTERM, ignores SIGUSR2 (bgplb drains it).
const TASK_CMD: &str = r#"trap "exit 0" TERM; trap "" USR2; while true; do sleep 1; done"#;

/// Service options: one task per node, the network's address as the task's
/// own (no swarm VIP), SIGUSR2 to stop (a drain), and a health check that
/// stays `starting` until `/tmp/ready` exists (swarm replaces unhealthy tasks).
fn service_args(network: &str) -> Vec<String> {
    [
        "--mode",
        "global",
        "--endpoint-mode",
        "dnsrr",
        "--network",
        network,
        "--stop-signal",
        "SIGUSR2",
        "--stop-grace-period",
        "30s",
        "--health-cmd",
        "test -e /tmp/ready",
        "--health-interval",
        "1s",
        "--health-timeout",
        "1s",
        "--health-retries",
        "1",
        "--health-start-period",
        "120s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A lab, its plugin and the swarm, dropped in this order: the swarm (its
/// services, then `docker swarm leave --force`), the plugin (its networks,
/// then the plugin), the lab.
struct SwarmLab {
    swarm: Swarm,
    plugin: ManagedPlugin,
    lab: Lab,
    net: common::Network,
}

impl Drop for SwarmLab {
    /// Services, then the plugin's network and the plugin, while still in
    /// the swarm; then the fields drop: the swarm is left, the lab torn down.
    ///
    /// dockerd 20.10 may keep a removed plugin's global-scope driver
    /// registered and retry node discovery (`NetworkDriver.DiscoverNew`) on
    /// its gone socket at later `swarm init`s and `swarm leave`s, about 15 s
    /// per such driver, until dockerd restarts; that, not bgplb, is most of
    /// these tests' time on a dockerd that has run them before.
    fn drop(&mut self) {
        self.swarm.remove_services();
        self.plugin.remove_now();
    }
}

/// Starts the lab, the plugin (GLOBAL_SCOPE=true, drain on SIGUSR2), the
/// swarm and a bgplb network on it.
fn setup(n: u8, plugin_name: &str) -> SwarmLab {
    let mut lab = Lab::new(n);
    let plugin = ManagedPlugin::create(
        &lab,
        plugin_name,
        &[
            ("GLOBAL_SCOPE", "true"),
            ("SIGUSR2_HANDLER", "true"),
            ("DRAIN_DELAY", "3"),
        ],
    );
    plugin.enable();
    let swarm = Swarm::init();
    let net = lab
        .create_network_of(&plugin.name, "swarm", &format!("{}/32", vip(n)))
        .unwrap_or_else(|e| panic!("docker network create: {e}\n{}", plugin.log_tail(40)));
    let scope = docker_ok(&["network", "inspect", "-f", "{{.Scope}}", &net.name]);
    assert_eq!(
        scope.trim(),
        "swarm",
        "a global-scope driver's network is swarm-wide"
    );
    SwarmLab {
        swarm,
        plugin,
        lab,
        net,
    }
}

/// Waits for the service's one running task container and returns its id.
fn one_task(lab: &Lab, plugin: &ManagedPlugin, swarm: &Swarm, service: &str) -> String {
    let mut tasks = Vec::new();
    plugin.wait_until(
        lab,
        &format!("service {service} runs one task"),
        WAIT,
        || {
            tasks = swarm.task_containers(service);
            tasks.len() == 1
        },
    );
    tasks.remove(0)
}

#[test]
#[ignore = "end-to-end: needs root, dockerd and gobgpd; run deploy/lab/test.sh"]
fn global_service_is_announced_when_healthy_and_withdrawn_when_scaled_away_or_removed() {
    let n = 50;
    let vip = vip(n);
    let mut sl = setup(n, "bgplb-sw:v1");
    let SwarmLab {
        swarm,
        plugin,
        lab,
        net,
    } = &mut sl;
    let service = format!("{}svc", lab.name_prefix());
    let args = service_args(&net.name);
    let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
    // Placement lets a global service be "scaled away" from this node.
    let label = format!(
        "node.labels.{}!=off",
        lab.name_prefix().trim_end_matches('-')
    );
    all.extend(["--constraint", &label]);
    swarm.create_service(&service, &all, &[IMAGE, "sh", "-c", TASK_CMD]);

    let task = one_task(lab, plugin, swarm, &service);
    plugin.wait_until(
        lab,
        &format!("kernel route {vip} dev {}", net.bridge),
        WAIT,
        || lab.has_kernel_route(vip, &net.bridge),
    );
    // Running but not yet healthy: not announced.
    std::thread::sleep(Duration::from_secs(2));
    plugin.check(
        lab,
        lab.withdrawn(vip),
        "announced before the task is healthy",
    );
    lab.exec(&task, &["touch", "/tmp/ready"]);
    plugin.wait_until(
        lab,
        &format!("{vip}/32 is announced when healthy"),
        WAIT,
        || lab.announced(vip),
    );

    // Scaled away: a label on the (only) node excludes it from the service.
    let node = docker_ok(&["node", "ls", "-q"]).trim().to_string();
    let key = lab.name_prefix().trim_end_matches('-').to_string();
    docker_ok(&[
        "node",
        "update",
        "--label-add",
        &format!("{key}=off"),
        &node,
    ]);
    plugin.wait_until(
        lab,
        &format!("{vip}/32 is withdrawn when scaled away"),
        WAIT,
        || lab.withdrawn(vip),
    );
    plugin.wait_until(
        lab,
        "the task is gone and so is the kernel route",
        WAIT,
        || swarm.task_containers(&service).is_empty() && !lab.has_any_kernel_route(vip),
    );

    // Back on the node, then removed.
    docker_ok(&["node", "update", "--label-rm", &key, &node]);
    let task = one_task(lab, plugin, swarm, &service);
    lab.exec(&task, &["touch", "/tmp/ready"]);
    plugin.wait_until(lab, &format!("{vip}/32 is announced again"), WAIT, || {
        lab.announced(vip)
    });
    swarm.remove_service(&service);
    plugin.wait_until(
        lab,
        &format!("{vip}/32 is withdrawn when removed"),
        WAIT,
        || lab.withdrawn(vip),
    );
    plugin.wait_until(
        lab,
        "the kernel route is gone after service rm",
        WAIT,
        || !lab.has_any_kernel_route(vip),
    );

    // The network's removal takes its bridge with it, as outside a swarm.
    lab.remove_network(net);
    plugin.wait_until(
        lab,
        &format!("bridge {} is gone after docker network rm", net.bridge),
        WAIT,
        || !link_exists(&net.bridge),
    );
}

#[test]
#[ignore = "end-to-end: needs root, dockerd and gobgpd; run deploy/lab/test.sh"]
fn rolling_update_withdraws_the_old_task_before_it_stops_and_announces_the_new_when_healthy() {
    let n = 51;
    let vip = vip(n);
    let mut sl = setup(n, "bgplb-sw:v2");
    let SwarmLab {
        swarm,
        plugin,
        lab,
        net,
    } = &mut sl;
    let service = format!("{}svc", lab.name_prefix());
    let args = service_args(&net.name);
    let all: Vec<&str> = args.iter().map(String::as_str).collect();
    swarm.create_service(&service, &all, &[IMAGE, "sh", "-c", TASK_CMD]);
    let old = one_task(lab, plugin, swarm, &service);
    lab.exec(&old, &["touch", "/tmp/ready"]);
    plugin.wait_until(lab, &format!("{vip}/32 is announced"), WAIT, || {
        lab.announced(vip)
    });

    // stop-first: swarm stops the old task with SIGUSR2, bgplb drains it.
    docker_ok(&["service", "update", "-d", "--force", &service]);
    plugin.wait_until(
        lab,
        &format!("{vip}/32 is withdrawn for the update"),
        WAIT,
        || lab.withdrawn(vip),
    );
    let old_status = lab.status(&old);
    plugin.check(
        lab,
        old_status == "running",
        &format!("the old task was {old_status} when its route left; it must still run"),
    );
    plugin.wait_until(lab, "the old task has exited", WAIT, || {
        lab.status(&old) == "exited"
    });
    assert_eq!(
        lab.exit_code(&old),
        0,
        "the old task exits 0 on bgplb's SIGTERM"
    );

    let mut new = String::new();
    plugin.wait_until(lab, "a new task runs", WAIT, || {
        new = swarm.task_containers(&service).pop().unwrap_or_default();
        !new.is_empty() && new != old
    });
    std::thread::sleep(Duration::from_secs(2));
    plugin.check(
        lab,
        lab.withdrawn(vip),
        "the new task was announced before it was healthy",
    );
    lab.exec(&new, &["touch", "/tmp/ready"]);
    plugin.wait_until(
        lab,
        &format!("{vip}/32 is announced for the new task"),
        WAIT,
        || lab.announced(vip),
    );
    plugin.check(
        lab,
        lab.has_kernel_route(vip, &net.bridge),
        "kernel route for the new task",
    );
}
