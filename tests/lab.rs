//! The lab itself: its parsers, and its router seen from a plain gobgpd speaker.
//!
//! When an end-to-end test fails, these say whether the lab or bgplb is at fault.

mod common;

use std::fs::{self, File};
use std::process::{Child, Command, Stdio};

use common::{parse_rib, parse_routes, run, Lab, BGPLB_AS, ROUTER_AS, WAIT};

#[test]
fn gobgp_rib_json_is_read_as_prefix_to_next_hops() {
    // Shape printed by `gobgp global rib -a ipv4 -j` (gobgp 3.10), trimmed.
    let json = br#"{"203.0.113.98/32":[{"nlri":{"prefix":"203.0.113.98/32"},"age":1796322798,
        "best":true,"attrs":[{"type":1,"value":2},{"type":2,"as_paths":[{"segment_type":2,
        "num":1,"asns":[65534]}]},{"type":3,"nexthop":"198.51.100.37"}],"stale":false,
        "source-id":"198.51.100.37","neighbor-ip":"198.51.100.37"}],
        "203.0.113.99/32":[{"attrs":[{"type":3,"nexthop":"198.51.100.37"}]},
        {"attrs":[{"type":3,"nexthop":"198.51.100.41"}]}]}"#;
    let rib = parse_rib(json).unwrap();
    assert_eq!(rib["203.0.113.98/32"], vec!["198.51.100.37"]);
    assert_eq!(
        rib["203.0.113.99/32"],
        vec!["198.51.100.37", "198.51.100.41"]
    );
    assert!(parse_rib(b"{}").unwrap().is_empty());
    assert!(parse_rib(b"Network not in table").is_err());
}

#[test]
fn ip_route_json_host_routes_get_a_prefix_length() {
    let json = br#"[{"dst":"203.0.113.10","dev":"bgplb-0123456789","protocol":"201",
        "scope":"link","flags":[]},{"dst":"198.51.100.36/30","dev":"bgplbh9","flags":[]}]"#;
    assert_eq!(
        parse_routes(json).unwrap(),
        vec![
            (
                "203.0.113.10/32".to_string(),
                "bgplb-0123456789".to_string()
            ),
            ("198.51.100.36/30".to_string(), "bgplbh9".to_string()),
        ]
    );
}

#[test]
#[ignore = "end-to-end: needs root, dockerd and gobgpd; run deploy/lab/test.sh"]
fn router_learns_paths_from_a_speaker_on_the_host_link() {
    let lab = Lab::new(60);
    let api = lab.dir().join("speaker.sock");
    let config = lab.dir().join("speaker.toml");
    fs::write(
        &config,
        format!(
            "[global.config]\n  as = {BGPLB_AS}\n  router-id = \"{host}\"\n  port = -1\n\
             [[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{router}\"\n    \
             peer-as = {ROUTER_AS}\n  [neighbors.timers.config]\n    connect-retry = 5\n",
            host = lab.host_address(),
            router = lab.router_address(),
        ),
    )
    .unwrap();
    let log = File::create(lab.dir().join("speaker.log")).unwrap();
    let speaker = Command::new("gobgpd")
        .arg("-f")
        .arg(&config)
        .arg(format!("--api-hosts=unix://{}", api.display()))
        .args(["--pprof-disable", "-l", "debug", "-p"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("failed to start the speaker gobgpd");
    let _speaker = Stopped(speaker);
    let target = format!("unix://{}", api.display());
    let cli = |args: &[&str]| {
        let mut all = vec!["--target", target.as_str()];
        all.extend_from_slice(args);
        run("gobgp", &all)
    };

    let host = lab.host_address().to_string();
    lab.wait_until("the speaker's API answers", WAIT, || {
        cli(&["global"]).status.success()
    });
    let added = cli(&[
        "global",
        "rib",
        "add",
        "-a",
        "ipv4",
        "203.0.113.99/32",
        "nexthop",
        &host,
    ]);
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    lab.wait_until(
        "the router has 203.0.113.99/32 via the speaker",
        WAIT,
        || lab.next_hops("203.0.113.99/32") == vec![host.clone()],
    );

    let deleted = cli(&["global", "rib", "del", "-a", "ipv4", "203.0.113.99/32"]);
    assert!(
        deleted.status.success(),
        "{}",
        String::from_utf8_lossy(&deleted.stderr)
    );
    lab.wait_until("the router has dropped 203.0.113.99/32", WAIT, || {
        lab.next_hops("203.0.113.99/32").is_empty()
    });
}

/// Stops a child process when dropped, also when the test panics.
struct Stopped(Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = run("kill", &["-TERM", &self.0.id().to_string()]);
        let _ = self.0.wait();
    }
}
