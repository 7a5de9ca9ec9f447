//! End-to-end: bgplb as a managed (v2) Docker plugin, built by
//! `deploy/plugin/build.sh` and installed with `docker plugin create`,
//! peering with the lab router. Lab indexes 41..=49.
//!
//! Each test installs the plugin under a name of its own, so that bgplb has
//! to find its driver name (`NAME:TAG`) from Docker, whatever it is.

mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::{
    bridge_ports, docker, docker_ok, link_exists, plugin_dir_named, subnet, Health, Lab,
    ManagedPlugin, WAIT,
};

/// A VIP for the test with lab index `n` (apart from e2e.rs's 10 + n).
fn vip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(203, 0, 113, 100 + n)
}

#[test]
#[ignore = "end-to-end: needs root, dockerd and gobgpd; run deploy/lab/test.sh"]
fn managed_plugin_announces_and_its_route_returns_after_disable_and_enable() {
    let mut lab = Lab::new(41);
    let vip = vip(41);
    let plugin = ManagedPlugin::create(&lab, "bgplb-a:v1", &[]);
    // A setting changed the way users do: on the disabled plugin.
    plugin.set(&["GRACEFUL_RESTART=false"]);
    assert_eq!(plugin.setting("GRACEFUL_RESTART").as_deref(), Some("false"));
    plugin.enable();

    let net = lab
        .create_network_of(&plugin.name, "web", &subnet(vip))
        .unwrap_or_else(|e| panic!("docker network create: {e}\n{}", plugin.log_tail(40)));
    let c = lab.run_container("web", &net, Health::Checked);
    plugin.wait_until(&lab, &format!("{vip}/32 is announced"), WAIT, || {
        lab.announced(vip)
    });
    plugin.wait_until(
        &lab,
        &format!("kernel route {vip} dev {}", net.bridge),
        WAIT,
        || lab.has_kernel_route(vip, &net.bridge),
    );
    plugin.check(
        &lab,
        plugin
            .log_tail(200)
            .contains("managed plugin name found driver=bgplb-a:v1"),
        "bgplb did not log the plugin name it found",
    );
    plugin.check(
        &lab,
        !plugin.pids().is_empty(),
        "no process runs in the plugin's rootfs",
    );

    // Disabled with its network in use: bgplb stops, the container runs on.
    plugin.disable(true);
    plugin.wait_until(&lab, "the plugin's processes have exited", WAIT, || {
        plugin.pids().is_empty()
    });
    plugin.wait_until(
        &lab,
        &format!("{vip}/32 is withdrawn (no graceful restart) while the plugin is disabled"),
        WAIT,
        || lab.withdrawn(vip),
    );
    assert_eq!(lab.status(&c), "running");
    plugin.check(
        &lab,
        lab.has_kernel_route(vip, &net.bridge),
        "the kernel route must stay while the plugin is disabled and the container runs",
    );

    plugin.enable();
    plugin.wait_until(
        &lab,
        &format!("{vip}/32 is announced again after enable"),
        WAIT,
        || lab.announced(vip),
    );
    assert_eq!(
        lab.next_hops(&subnet(vip)),
        vec![lab.host_address().to_string()]
    );
    plugin.check(
        &lab,
        lab.has_kernel_route(vip, &net.bridge),
        "kernel route after enable",
    );
}

#[test]
#[ignore = "end-to-end: needs root, dockerd and gobgpd; run deploy/lab/test.sh"]
fn managed_plugin_drains_on_sigusr2_and_its_removal_leaves_nothing_behind() {
    let mut lab = Lab::new(42);
    let vip = vip(42);
    let plugin = ManagedPlugin::create(&lab, "bgplb-b:v2", &[("SIGUSR2_HANDLER", "true")]);
    plugin.set(&["DRAIN_DELAY=2"]);
    plugin.enable();
    let net = lab
        .create_network_of(&plugin.name, "web", &subnet(vip))
        .unwrap_or_else(|e| panic!("docker network create: {e}\n{}", plugin.log_tail(40)));

    // Drain: withdrawn at once, SIGTERM after DRAIN_DELAY.
    let c = lab.run_container("drain", &net, Health::Checked);
    plugin.wait_until(&lab, &format!("{vip}/32 is announced"), WAIT, || {
        lab.announced(vip)
    });
    let signalled = Instant::now();
    docker_ok(&["kill", "--signal", "SIGUSR2", &c]);
    plugin.wait_until(
        &lab,
        &format!("{vip}/32 is withdrawn on SIGUSR2"),
        Duration::from_secs(10),
        || lab.withdrawn(vip),
    );
    assert_eq!(
        lab.status(&c),
        "running",
        "the route must leave before the container stops"
    );
    plugin.wait_until(&lab, "the drained container has exited", WAIT, || {
        lab.status(&c) == "exited"
    });
    let waited = signalled.elapsed();
    assert_eq!(
        lab.exit_code(&c),
        0,
        "the container exits 0 only on SIGTERM"
    );
    assert!(
        waited >= Duration::from_millis(1500),
        "SIGTERM came {waited:?} after SIGUSR2; DRAIN_DELAY=2 (set with docker plugin set) asks for 2 s"
    );
    plugin.wait_until(&lab, "the kernel route is gone after exit", WAIT, || {
        !lab.has_any_kernel_route(vip)
    });
    lab.rm_force(&c);

    // Removal: container, network, plugin; then nothing of them is left.
    let c = lab.run_container("web", &net, Health::None);
    plugin.wait_until(&lab, &format!("{vip}/32 is announced"), WAIT, || {
        lab.announced(vip)
    });
    let ports = bridge_ports(&net.bridge);
    plugin.check(
        &lab,
        !ports.is_empty(),
        &format!("no veth on bridge {}", net.bridge),
    );
    lab.rm_force(&c);
    plugin.wait_until(
        &lab,
        &format!("{vip}/32 is withdrawn after rm -f"),
        WAIT,
        || lab.withdrawn(vip),
    );
    lab.remove_network(&net);
    plugin.wait_until(
        &lab,
        "bridge, veths and kernel route are gone",
        WAIT,
        || {
            !link_exists(&net.bridge)
                && ports.iter().all(|p| !link_exists(p))
                && !lab.has_any_kernel_route(vip)
        },
    );
    let rootfs = plugin.rootfs();
    let name = plugin.name.clone();
    let id = plugin.id.clone();
    plugin.remove();
    let left = common::cgroup_pids(&id);
    assert!(
        left.is_empty(),
        "processes of plugin {name} are left: {left:?}"
    );
    assert!(
        !docker(&["plugin", "inspect", &name]).status.success(),
        "plugin {name} still exists"
    );
    assert!(!rootfs.exists(), "{} is left", rootfs.display());
    assert!(lab.withdrawn(vip), "{}", lab.report());
    assert!(!lab.has_any_kernel_route(vip), "{}", lab.report());
}

#[test]
#[ignore = "end-to-end: needs root, dockerd and gobgpd; run deploy/lab/test.sh"]
fn two_managed_plugins_under_different_names_each_serve_only_their_own_network() {
    let mut lab_c = Lab::new(43);
    let mut lab_d = Lab::new(44);
    let (vip_c, vip_d) = (vip(43), vip(44));
    let plugin_c = ManagedPlugin::create(&lab_c, "bgplb-c:v1", &[]);
    let plugin_d = ManagedPlugin::create(&lab_d, "bgplb-d:latest", &[]);
    plugin_c.enable();
    plugin_d.enable();

    let net_c = lab_c
        .create_network_of(&plugin_c.name, "web", &subnet(vip_c))
        .expect("network of bgplb-c:v1");
    let net_d = lab_d
        .create_network_of(&plugin_d.name, "web", &subnet(vip_d))
        .expect("network of bgplb-d:latest");
    lab_c.run_container("web", &net_c, Health::Checked);
    lab_d.run_container("web", &net_d, Health::Checked);

    plugin_c.wait_until(
        &lab_c,
        &format!("{vip_c}/32 is announced by c"),
        WAIT,
        || lab_c.announced(vip_c),
    );
    plugin_d.wait_until(
        &lab_d,
        &format!("{vip_d}/32 is announced by d"),
        WAIT,
        || lab_d.announced(vip_d),
    );
    // Each bgplb announces only its own network's address, and leaves the
    // other's bridge alone through a few resync passes.
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        lab_c.withdrawn(vip_d),
        "c announced d's VIP\n{}",
        lab_c.report()
    );
    assert!(
        lab_d.withdrawn(vip_c),
        "d announced c's VIP\n{}",
        lab_d.report()
    );
    assert!(link_exists(&net_c.bridge) && link_exists(&net_d.bridge));
    assert!(lab_c.has_kernel_route(vip_c, &net_c.bridge));
    assert!(lab_d.has_kernel_route(vip_d, &net_d.bridge));
}

#[test]
#[ignore = "end-to-end: needs root, dockerd and gobgpd; run deploy/lab/test.sh"]
fn managed_plugin_without_peering_settings_refuses_to_enable() {
    // No lab: nothing peers; only the plugin and dockerd are involved.
    let name = "bgplb-e:v1";
    let _ = docker(&["plugin", "rm", "-f", name]);
    let dir = plugin_dir_named(name);
    docker_ok(&["plugin", "create", name, dir.to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(&dir);
    let id = docker_ok(&["plugin", "inspect", "-f", "{{.Id}}", name])
        .trim()
        .to_string();
    // ROUTER_ID, PEER_ADDRESS and PEER_AS have no default: Docker passes none.
    let env = docker_ok(&["plugin", "inspect", "-f", "{{json .Settings.Env}}", name]);
    let out = docker(&["plugin", "enable", name]);
    let enabled = docker_ok(&["plugin", "inspect", "-f", "{{.Enabled}}", name]);
    let log = std::fs::read_to_string(common::DOCKERD_LOG).unwrap_or_default();
    let _ = docker(&["plugin", "rm", "-f", name]);

    assert!(!env.contains("ROUTER_ID="), "ROUTER_ID has a value: {env}");
    assert!(
        !out.status.success(),
        "the plugin enabled without ROUTER_ID"
    );
    assert_eq!(enabled.trim(), "false");
    let mine: Vec<&str> = log.lines().filter(|l| l.contains(&id)).collect();
    assert!(
        mine.iter().any(|l| l.contains("ROUTER_ID")),
        "bgplb's start-up error should name ROUTER_ID:\n{}",
        mine.join("\n")
    );
}
