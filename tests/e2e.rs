//! End-to-end: real dockerd, real gobgpd router, bgplb as a legacy plugin.
//!
//! Each test has its own lab index (namespace, veth, driver name) and VIP,
//! so the labs never collide and the tests can run in parallel: each bgplb
//! removes only the links it marked as its own.

mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::{
    docker, docker_ok, link_exists, links_with_prefix, run_ok, subnet, Health, Lab, WAIT,
};

/// A VIP for the test with lab index `n`.
fn vip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(203, 0, 113, 10 + n)
}

#[test]
#[ignore = "end-to-end: needs root, dockerd and gobgpd; run deploy/lab/test.sh"]
fn healthy_container_is_announced_at_the_router() {
    let mut lab = Lab::new(1);
    let vip = vip(1);
    lab.start_bgplb(&[]);
    let net = lab
        .create_network("web", &subnet(vip))
        .expect("docker network create");
    let c = lab.run_container("web", &net, Health::Checked);

    lab.wait_until(
        &format!("{vip}/32 is announced via {}", lab.host_address()),
        WAIT,
        || lab.announced(vip),
    );
    assert_eq!(
        lab.next_hops(&subnet(vip)),
        vec![lab.host_address().to_string()],
        "the router should have exactly one path, with bgplb's ROUTER_ID as next hop"
    );
    lab.wait_until(
        &format!("kernel route {vip} dev {} proto 201", net.bridge),
        WAIT,
        || lab.has_kernel_route(vip, &net.bridge),
    );
    assert_eq!(lab.health(&c), "healthy");
}

#[test]
#[ignore = "end-to-end: needs root, dockerd and gobgpd; run deploy/lab/test.sh"]
fn failing_health_check_withdraws_and_recovery_announces_again() {
    let mut lab = Lab::new(2);
    let vip = vip(2);
    lab.start_bgplb(&[]);
    let (net, c) = lab.serve("web", vip, Health::Checked);

    lab.make_unhealthy(&c);
    lab.wait_until(
        &format!("{vip}/32 is withdrawn after the health check fails"),
        WAIT,
        || lab.withdrawn(vip),
    );
    assert_eq!(lab.health(&c), "unhealthy");
    assert_eq!(lab.status(&c), "running");
    // The kernel route follows the endpoint, not health: traffic in flight still arrives.
    assert!(
        lab.has_kernel_route(vip, &net.bridge),
        "kernel route to {vip} via {} must stay while the container runs\n{}",
        net.bridge,
        lab.report()
    );

    lab.make_healthy(&c);
    lab.wait_until(
        &format!("{vip}/32 is announced again after recovery"),
        WAIT,
        || lab.announced(vip),
    );
    assert!(lab.has_kernel_route(vip, &net.bridge), "{}", lab.report());
}

#[test]
#[ignore = "end-to-end: needs root, dockerd and gobgpd; run deploy/lab/test.sh"]
fn sigusr2_drains_then_container_gets_sigterm() {
    let mut lab = Lab::new(3);
    let vip = vip(3);
    lab.start_bgplb(&[("SIGUSR2_HANDLER", "true"), ("DRAIN_DELAY", "3")]);
    let (net, c) = lab.serve("web", vip, Health::Checked);

    let signalled = Instant::now();
    docker_ok(&["kill", "--signal", "SIGUSR2", &c]);
    lab.wait_until(
        &format!("{vip}/32 is withdrawn on SIGUSR2"),
        Duration::from_secs(10),
        || lab.withdrawn(vip),
    );
    assert_eq!(
        lab.status(&c),
        "running",
        "the route must leave before the container stops"
    );
    assert!(
        lab.has_kernel_route(vip, &net.bridge),
        "kernel route must stay while the draining container runs\n{}",
        lab.report()
    );

    lab.wait_until(
        "the drained container has exited",
        Duration::from_secs(10),
        || lab.status(&c) == "exited",
    );
    let waited = signalled.elapsed();
    assert_eq!(
        lab.exit_code(&c),
        0,
        "the container exits 0 only on SIGTERM"
    );
    assert!(
        waited >= Duration::from_secs(2),
        "SIGTERM came {waited:?} after SIGUSR2; DRAIN_DELAY=3 asks for about 3 s"
    );
    assert!(lab.withdrawn(vip), "{}", lab.report());
    lab.wait_until("the kernel route is gone after exit", WAIT, || {
        !lab.has_any_kernel_route(vip)
    });
}

#[test]
#[ignore = "end-to-end: needs root, dockerd and gobgpd; run deploy/lab/test.sh"]
fn container_without_healthcheck_is_announced_while_running() {
    let mut lab = Lab::new(4);
    let vip = vip(4);
    lab.start_bgplb(&[]);
    let net = lab
        .create_network("web", &subnet(vip))
        .expect("docker network create");
    let c = lab.run_container("plain", &net, Health::None);

    lab.wait_until(&format!("{vip}/32 is announced"), WAIT, || {
        lab.announced(vip)
    });
    lab.wait_until(
        &format!("kernel route {vip} dev {}", net.bridge),
        WAIT,
        || lab.has_kernel_route(vip, &net.bridge),
    );
    assert_eq!(lab.health(&c), "", "this container has no health check");

    docker_ok(&["stop", &c]);
    lab.wait_until(
        &format!("{vip}/32 is withdrawn after docker stop"),
        WAIT,
        || lab.withdrawn(vip),
    );
    lab.wait_until("the kernel route is gone after docker stop", WAIT, || {
        !lab.has_any_kernel_route(vip)
    });
    assert_eq!(lab.exit_code(&c), 0);
}

#[test]
#[ignore = "end-to-end: needs root, dockerd and gobgpd; run deploy/lab/test.sh"]
fn rm_force_withdraws_and_removes_kernel_route() {
    let mut lab = Lab::new(5);
    let vip = vip(5);
    lab.start_bgplb(&[]);
    let (net, c) = lab.serve("web", vip, Health::Checked);
    lab.wait_until("the kernel route exists", WAIT, || {
        lab.has_kernel_route(vip, &net.bridge)
    });

    lab.rm_force(&c);
    lab.wait_until(&format!("{vip}/32 is withdrawn after rm -f"), WAIT, || {
        lab.withdrawn(vip)
    });
    lab.wait_until("the kernel route is gone after rm -f", WAIT, || {
        !lab.has_any_kernel_route(vip)
    });
}

#[test]
#[ignore = "end-to-end: needs root, dockerd and gobgpd; run deploy/lab/test.sh"]
fn subnet_that_is_not_a_slash_32_is_refused() {
    let mut lab = Lab::new(6);
    lab.start_bgplb(&[]);
    let bridges_before = links_with_prefix("bgplb-");

    let err = match lab.create_network("wide", "203.0.113.0/24") {
        Ok(net) => panic!("a /24 network was created: {net:?}"),
        Err(stderr) => stderr,
    };
    assert!(
        err.contains("/32"),
        "the error should say a /32 is needed: {err}"
    );

    let name = "bgplb-t6-wide";
    let ls = docker(&["network", "ls", "-q", "--filter", &format!("name=^{name}$")]);
    assert!(
        String::from_utf8_lossy(&ls.stdout).trim().is_empty(),
        "network {name} exists"
    );

    // Bridges that appeared must belong to networks that exist (other tests' networks).
    let ids = docker_ok(&["network", "ls", "-q", "--no-trunc"]);
    let stray: Vec<String> = links_with_prefix("bgplb-")
        .into_iter()
        .filter(|b| !bridges_before.contains(b))
        .filter(|b| !ids.lines().any(|id| id.len() >= 9 && b[6..] == id[..9]))
        .collect();
    assert!(
        stray.is_empty(),
        "bridges left by the refused network: {stray:?}"
    );
    let routes = common::kernel_routes(common::ROUTE_PROTOCOL);
    assert!(
        !routes.iter().any(|(dst, _)| dst == "203.0.113.0/24"),
        "a route for the refused subnet exists: {routes:?}"
    );
    assert!(
        lab.next_hops("203.0.113.0/24").is_empty(),
        "{}",
        lab.report()
    );
}

#[test]
#[ignore = "end-to-end: needs root, dockerd and gobgpd; run deploy/lab/test.sh"]
fn restarted_bgplb_announces_running_containers_again() {
    let mut lab = Lab::new(7);
    let vip = vip(7);
    lab.start_bgplb(&[]);
    let net = lab
        .create_network("web", &subnet(vip))
        .expect("docker network create");
    lab.run_container("web", &net, Health::Checked);
    lab.wait_until(&format!("{vip}/32 is announced"), WAIT, || {
        lab.announced(vip)
    });

    // Docker never replays CreateNetwork: the restarted bgplb must remember the network.
    let status = lab.stop_bgplb().expect("bgplb was running");
    assert!(
        status.success(),
        "bgplb exited with {status} on SIGTERM\n{}",
        lab.report()
    );
    assert!(
        lab.bgplb_gobgpd_pids().is_empty(),
        "bgplb's gobgpd outlived it\n{}",
        lab.report()
    );
    lab.restart_bgplb();
    lab.wait_until(
        &format!("{vip}/32 is announced after the restart"),
        WAIT,
        || lab.announced(vip),
    );
    assert!(lab.has_kernel_route(vip, &net.bridge), "{}", lab.report());
}

#[test]
#[ignore = "end-to-end: needs root, dockerd and gobgpd; run deploy/lab/test.sh"]
fn killed_bgplb_heals_after_restart() {
    let mut lab = Lab::new(8);
    let vip = vip(8);
    lab.start_bgplb(&[]);
    let (net, c) = lab.serve("web", vip, Health::Checked);

    // While bgplb is down the container turns unhealthy; the new bgplb
    // learns that from observation, not from an event it never saw.
    lab.kill_bgplb();
    lab.make_unhealthy(&c);
    lab.wait_until("docker reports the container unhealthy", WAIT, || {
        lab.health(&c) == "unhealthy"
    });
    lab.restart_bgplb();
    lab.wait_until(
        &format!("{vip}/32 is withdrawn by the new bgplb"),
        WAIT,
        || lab.withdrawn(vip),
    );
    assert!(lab.has_kernel_route(vip, &net.bridge), "{}", lab.report());

    lab.make_healthy(&c);
    lab.wait_until(&format!("{vip}/32 is announced again"), WAIT, || {
        lab.announced(vip)
    });
}

#[test]
#[ignore = "end-to-end: needs root, dockerd and gobgpd; run deploy/lab/test.sh"]
fn network_rm_removes_its_bridge() {
    let mut lab = Lab::new(9);
    let vip = vip(9);
    lab.start_bgplb(&[]);
    let net = lab
        .create_network("web", &subnet(vip))
        .expect("docker network create");
    assert!(
        link_exists(&net.bridge),
        "no bridge {} after network create",
        net.bridge
    );

    lab.remove_network(&net);
    lab.wait_until(&format!("bridge {} is gone", net.bridge), WAIT, || {
        !link_exists(&net.bridge)
    });
}

#[test]
#[ignore = "end-to-end: needs root, dockerd and gobgpd; run deploy/lab/test.sh"]
fn routes_of_other_protocols_are_left_alone() {
    let mut lab = Lab::new(10);
    let vip = vip(10);
    // Someone else's route into the VIP range, on the lab's own veth.
    let foreign = "203.0.113.60";
    run_ok(
        "ip",
        &[
            "route",
            "add",
            foreign,
            "dev",
            &lab.host_if(),
            "proto",
            "static",
        ],
    );

    lab.start_bgplb(&[]);
    let (_, c) = lab.serve("web", vip, Health::Checked);
    lab.rm_force(&c);
    lab.wait_until(&format!("{vip}/32 is withdrawn"), WAIT, || {
        lab.withdrawn(vip)
    });
    lab.wait_until("bgplb's kernel route is gone", WAIT, || {
        !lab.has_any_kernel_route(vip)
    });

    let routes = run_ok("ip", &["route", "show", foreign]);
    assert!(
        routes.contains(&format!("dev {}", lab.host_if())),
        "bgplb removed a proto static route it does not own\n{}",
        lab.report()
    );
}

/// GET `path` from a status address over plain HTTP/1.0; (status code, body).
fn http_get(address: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).expect("connect to the status address");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: bgplb\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

#[test]
#[ignore = "end-to-end: needs root, dockerd and gobgpd; run deploy/lab/test.sh"]
fn status_endpoints_report_what_is_announced() {
    let mut lab = Lab::new(19);
    let vip = vip(19);
    let address = "127.0.0.1:19474";
    lab.start_bgplb(&[("STATUS_ADDRESS", address)]);
    let (_, c) = lab.serve("web", vip, Health::Checked);

    lab.wait_until("/status lists the announced address", WAIT, || {
        let (code, body) = http_get(address, "/status");
        code == 200 && body.contains(&format!("\"vip\":\"{vip}\"")) && body.contains(&c)
    });
    let (code, body) = http_get(address, "/healthz");
    assert_eq!((code, body.trim()), (200, "ok"));
    let (code, metrics) = http_get(address, "/metrics");
    assert_eq!(code, 200);
    assert!(metrics.contains("bgplb_announced_routes 1"), "{metrics}");
    assert!(metrics.contains("bgplb_bgp_session_up 1"), "{metrics}");
}

#[test]
#[ignore = "end-to-end: needs root, dockerd and gobgpd; run deploy/lab/test.sh"]
fn ipv6_address_is_announced_with_the_v6_next_hop() {
    let mut lab = Lab::new(18);
    let vip6 = "2001:db8::18";
    let next_hop = "2001:db8:ffff::18";
    lab.start_bgplb(&[("NEXT_HOP_V6", next_hop)]);
    let net = lab
        .create_network_v6("web6", &format!("{vip6}/128"))
        .expect("docker network create --ipv6");
    let c = lab.run_container("web6", &net, Health::Checked);

    let rib6 = |lab: &Lab| {
        String::from_utf8_lossy(&lab.gobgp(&["global", "rib", "-a", "ipv6"]).stdout).into_owned()
    };
    lab.wait_until(
        &format!("{vip6}/128 is announced via {next_hop}"),
        WAIT,
        || {
            rib6(&lab)
                .lines()
                .any(|l| l.contains(&format!("{vip6}/128")) && l.contains(next_hop))
        },
    );
    let routes = run_ok("ip", &["-6", "route", "show", vip6, "proto", "201"]);
    assert!(
        routes.contains(&net.bridge),
        "kernel route to {vip6} via {}: {routes}",
        net.bridge
    );

    lab.make_unhealthy(&c);
    lab.wait_until(&format!("{vip6}/128 is withdrawn"), WAIT, || {
        !rib6(&lab).contains(&format!("{vip6}/128"))
    });
}

#[test]
#[ignore = "end-to-end: needs root, dockerd and gobgpd; run deploy/lab/test.sh"]
fn an_address_is_one_network_and_a_network_is_one_address() {
    let mut lab = Lab::new(17);
    let vip = vip(17);
    lab.start_bgplb(&[]);
    let net = lab
        .create_network("web", &subnet(vip))
        .expect("docker network create");
    lab.run_container("web", &net, Health::None);
    lab.wait_until(&format!("{vip}/32 is announced"), WAIT, || {
        lab.announced(vip)
    });
    // Links marked as this lab's bgplb's; other labs may run meanwhile.
    let mark = format!("alias bgplb {}", lab.plugin_socket().display());
    let own_links = || {
        run_ok("ip", &["-d", "-o", "link", "show"])
            .lines()
            .filter(|l| l.contains(&mark))
            .count()
    };
    let links_before = own_links();
    assert!(
        links_before >= 2,
        "the first network's bridge and veth carry the mark"
    );

    let err = lab
        .create_network("dup", &subnet(vip))
        .expect_err("a second network with the same address must be refused");
    assert!(
        err.contains("already the address of network") && err.contains(&net.name),
        "{err}"
    );

    let second = Ipv4Addr::new(203, 0, 113, 90);
    let two = format!("--subnet={}", subnet(second));
    let err = lab
        .create_network_with(
            "two",
            &["--subnet", &subnet(Ipv4Addr::new(203, 0, 113, 89)), &two],
        )
        .expect_err("a network with two addresses must be refused");
    assert!(err.contains("one address per family"), "{err}");

    assert_eq!(own_links(), links_before, "no bridge for refused networks");
    assert!(lab.announced(vip), "the first network stays announced");
    assert!(lab.withdrawn(second));
}
