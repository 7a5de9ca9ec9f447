//! End-to-end: mistakes a user or a neighbour makes on the host, and what
//! bgplb must not lose because of them. Lab indexes 11..=16.

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::{docker, link_exists, run_ok, subnet, Health, Lab, WAIT};

/// A VIP for the test with lab index `n` (as in e2e.rs: 10 + n).
fn vip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(203, 0, 113, 10 + n)
}

/// The host end of a container's veth on its one network.
fn veth_of(lab: &Lab, container: &str) -> String {
    let endpoint = lab.inspect(
        container,
        "{{range .NetworkSettings.Networks}}{{.EndpointID}}{{end}}",
    );
    format!("vbl{}", &endpoint[..12])
}

/// Whether the container still has its address on eth0.
fn has_address(container: &str, vip: Ipv4Addr) -> bool {
    let out = docker(&["exec", container, "ip", "-4", "addr", "show", "eth0"]);
    out.status.success() && String::from_utf8_lossy(&out.stdout).contains(&vip.to_string())
}

#[test]
#[ignore = "end-to-end: needs root, dockerd and gobgpd; run deploy/lab/test.sh"]
fn second_bgplb_on_the_same_sockets_is_refused_and_the_first_keeps_serving() {
    let mut lab = Lab::new(11);
    let vip = vip(11);
    lab.start_bgplb(&[]);
    let (net, _) = lab.serve("web", vip, Health::Checked);

    // The same PLUGIN_SOCKET (with a GOBGP_API of its own), then the same GOBGP_API.
    let other_api = format!("unix://{}/other/gobgp.sock", lab.dir().display());
    for (extra, setting) in [
        (vec![("GOBGP_API", other_api.as_str())], "PLUGIN_SOCKET"),
        (
            vec![("PLUGIN_SOCKET", "/run/docker/plugins/bgplb-t11b.sock")],
            "GOBGP_API",
        ),
    ] {
        let (status, stderr) = lab.run_another_bgplb(&extra, Duration::from_secs(10));
        let status = status.unwrap_or_else(|| panic!("a second bgplb kept running: {stderr}"));
        assert!(!status.success(), "a second bgplb started: {stderr}");
        assert!(
            stderr.contains(setting) && stderr.contains("in use"),
            "the refusal names {setting}: {stderr}"
        );
    }
    assert!(
        !std::path::Path::new("/run/docker/plugins/bgplb-t11b.sock").exists(),
        "the refused bgplb left its socket behind"
    );

    // The first one still serves Docker and its route.
    assert!(lab.plugin_socket().exists(), "the plugin socket is gone");
    let second = lab
        .create_network("web2", &subnet(Ipv4Addr::new(203, 0, 113, 161)))
        .expect("docker network create through the first bgplb");
    lab.remove_network(&second);
    assert!(lab.announced(vip), "{}", lab.report());
    assert!(lab.has_kernel_route(vip, &net.bridge), "{}", lab.report());
}

#[test]
#[ignore = "end-to-end: needs root, dockerd and gobgpd; run deploy/lab/test.sh"]
fn wrong_driver_name_leaves_running_containers_connected() {
    let mut lab = Lab::new(12);
    let vip = vip(12);
    lab.start_bgplb(&[("RESYNC_INTERVAL", "1")]);
    let (net, c) = lab.serve("web", vip, Health::Checked);
    let veth = veth_of(&lab, &c);
    assert!(link_exists(&veth), "the container's veth {veth} exists");

    // Restarted under a name that matches none of its networks.
    lab.stop_bgplb();
    lab.start_bgplb(&[("RESYNC_INTERVAL", "1"), ("DRIVER_NAME", "bgplb-typo")]);
    lab.wait_until("bgplb says the networks are another driver's", WAIT, || {
        std::fs::read_to_string(lab.bgplb_log())
            .is_ok_and(|log| log.contains("is DRIVER_NAME right?"))
    });
    std::thread::sleep(Duration::from_secs(3));
    assert!(link_exists(&net.bridge), "bridge removed\n{}", lab.report());
    assert!(link_exists(&veth), "veth removed\n{}", lab.report());
    assert!(
        lab.has_kernel_route(vip, &net.bridge),
        "kernel route removed\n{}",
        lab.report()
    );
    assert!(has_address(&c, vip), "the container lost its address");

    // Under the right name again, it announces as before.
    lab.stop_bgplb();
    lab.start_bgplb(&[("RESYNC_INTERVAL", "1")]);
    lab.wait_until(&format!("{vip}/32 is announced again"), WAIT, || {
        lab.announced(vip)
    });
    assert!(has_address(&c, vip), "the container lost its address");
}

#[test]
#[ignore = "end-to-end: needs root, dockerd and gobgpd; run deploy/lab/test.sh"]
fn container_whose_veth_is_deleted_is_withdrawn_until_it_restarts() {
    let mut lab = Lab::new(13);
    let vip = vip(13);
    lab.start_bgplb(&[("RESYNC_INTERVAL", "1")]);
    let (_, c) = lab.serve("web", vip, Health::Checked);

    // Deleting one end of a veth deletes both: the container is cut off.
    run_ok("ip", &["link", "delete", &veth_of(&lab, &c)]);
    lab.wait_until(
        &format!("{vip}/32 is withdrawn once the container is cut off"),
        WAIT,
        || lab.withdrawn(vip),
    );
    assert_eq!(lab.status(&c), "running");
    assert_eq!(lab.health(&c), "healthy", "Docker does not notice");

    // A restart gives it a new veth, and it is announced once healthy.
    common::docker_ok(&["restart", "-t", "1", &c]);
    lab.wait_until(
        &format!("{vip}/32 is announced after the restart"),
        WAIT,
        || lab.announced(vip),
    );
    assert!(link_exists(&veth_of(&lab, &c)), "{}", lab.report());
    assert!(
        has_address(&c, vip),
        "the restarted container has its address"
    );
}

#[test]
#[ignore = "end-to-end: needs root, dockerd and gobgpd; run deploy/lab/test.sh"]
fn bridge_set_down_or_deleted_and_veth_taken_off_it_are_put_back() {
    let mut lab = Lab::new(14);
    let vip = vip(14);
    lab.start_bgplb(&[("RESYNC_INTERVAL", "1")]);
    let (net, c) = lab.serve("web", vip, Health::Checked);
    let is_up = |link: &str| {
        std::fs::read_to_string(format!("/sys/class/net/{link}/flags"))
            .ok()
            .and_then(|f| u32::from_str_radix(f.trim().trim_start_matches("0x"), 16).ok())
            .is_some_and(|flags| flags & 1 == 1)
    };

    run_ok("ip", &["link", "set", &net.bridge, "down"]);
    lab.wait_until("bgplb sets the bridge up again", WAIT, || {
        is_up(&net.bridge)
    });
    lab.wait_until(
        &format!("{vip}/32 is announced with the bridge up"),
        WAIT,
        || lab.announced(vip) && lab.has_kernel_route(vip, &net.bridge),
    );

    // A veth set down, or taken off its bridge, is put back.
    let veth = veth_of(&lab, &c);
    run_ok("ip", &["link", "set", &veth, "down"]);
    lab.wait_until("bgplb sets the veth up again", WAIT, || is_up(&veth));
    run_ok("ip", &["link", "set", &veth, "nomaster"]);
    lab.wait_until("bgplb puts the veth back on its bridge", WAIT, || {
        std::fs::read_link(format!("/sys/class/net/{veth}/master"))
            .is_ok_and(|m| m.ends_with(&net.bridge))
    });
    lab.wait_until(
        &format!("{vip}/32 is announced with the veth back"),
        WAIT,
        || lab.announced(vip),
    );
    assert!(has_address(&c, vip), "the container kept its address");

    // A bridge deleted by hand is made again, with the veth on it.
    run_ok("ip", &["link", "delete", &net.bridge]);
    lab.wait_until("the bridge is back, with the veth on it", WAIT, || {
        std::fs::read_link(format!("/sys/class/net/{veth}/master"))
            .is_ok_and(|m| m.ends_with(&net.bridge))
    });
    lab.wait_until(
        &format!("{vip}/32 is announced and routed through the new bridge"),
        WAIT,
        || lab.announced(vip) && lab.has_kernel_route(vip, &net.bridge),
    );
}

#[test]
#[ignore = "end-to-end: needs root, dockerd and gobgpd; run deploy/lab/test.sh"]
fn drain_stands_through_a_disconnect_and_reconnect() {
    let mut lab = Lab::new(15);
    let vip = vip(15);
    lab.start_bgplb(&[("SIGUSR2_HANDLER", "true"), ("DRAIN_DELAY", "4")]);
    let (net, c) = lab.serve("web", vip, Health::Checked);

    common::docker_ok(&["kill", "--signal", "SIGUSR2", &c]);
    lab.wait_until(&format!("{vip}/32 is withdrawn on SIGUSR2"), WAIT, || {
        lab.withdrawn(vip)
    });
    common::docker_ok(&["network", "disconnect", &net.name, &c]);
    common::docker_ok(&["network", "connect", &net.name, &c]);
    // Until the delay is over the container runs, and must stay withdrawn.
    let until = std::time::Instant::now() + Duration::from_secs(2);
    while std::time::Instant::now() < until {
        assert!(
            lab.withdrawn(vip),
            "re-announced while draining\n{}",
            lab.report()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    lab.wait_until("the drained container got SIGTERM and exited", WAIT, || {
        lab.status(&c) == "exited"
    });
    assert!(lab.withdrawn(vip), "{}", lab.report());
}
