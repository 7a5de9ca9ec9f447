//! The host as the lab sees it: commands, their JSON output, links and routes.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// Parses `gobgp global rib -j`: `{"<prefix>": [{"attrs": [{"type": 3,
/// "nexthop": "<ip>"}, ...], ...}, ...]}` into prefix to next hops.
///
/// The next hop of an MP_REACH_NLRI attribute (type 14) has the same key.
pub fn parse_rib(json: &[u8]) -> Result<BTreeMap<String, Vec<String>>, String> {
    let value: Value = serde_json::from_slice(json).map_err(|e| {
        format!(
            "gobgp rib output is not JSON ({e}): {}",
            String::from_utf8_lossy(json)
        )
    })?;
    let Value::Object(destinations) = value else {
        return Err(format!("gobgp rib output is not an object: {value}"));
    };
    let mut rib = BTreeMap::new();
    for (prefix, paths) in destinations {
        let next_hops = paths
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|path| path["attrs"].as_array())
            .flatten()
            .filter_map(|attr| attr["nexthop"].as_str())
            .map(str::to_string)
            .collect();
        rib.insert(prefix, next_hops);
    }
    Ok(rib)
}

/// Parses `ip -j route show` into (prefix, device) pairs; host routes get `/32`.
pub fn parse_routes(json: &[u8]) -> Result<Vec<(String, String)>, String> {
    let value: Value = serde_json::from_slice(json).map_err(|e| {
        format!(
            "ip route output is not JSON ({e}): {}",
            String::from_utf8_lossy(json)
        )
    })?;
    let routes = value
        .as_array()
        .ok_or_else(|| format!("ip route output is not a list: {value}"))?;
    Ok(routes
        .iter()
        .map(|r| {
            let dst = r["dst"].as_str().unwrap_or_default();
            let dst = if dst.contains('/') || dst == "default" {
                dst.to_string()
            } else if dst.contains(':') {
                format!("{dst}/128")
            } else {
                format!("{dst}/32")
            };
            (dst, r["dev"].as_str().unwrap_or_default().to_string())
        })
        .collect())
}

/// Host kernel routes of route protocol `proto` in the main table.
pub fn kernel_routes(proto: u32) -> Vec<(String, String)> {
    let out = run_ok("ip", &["-j", "route", "show", "proto", &proto.to_string()]);
    // An empty table prints nothing at all on some iproute2 versions.
    if out.trim().is_empty() {
        return Vec::new();
    }
    parse_routes(out.as_bytes()).unwrap_or_else(|e| panic!("{e}"))
}

/// Whether a network device of that name exists on the host.
pub fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// Host network devices whose names start with `prefix`.
pub fn links_with_prefix(prefix: &str) -> Vec<String> {
    let Ok(entries) = fs::read_dir("/sys/class/net") else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with(prefix))
        .collect();
    names.sort();
    names
}

/// A VIP as a /32: the subnet of its network, and its prefix in a RIB.
pub fn subnet(vip: std::net::Ipv4Addr) -> String {
    format!("{vip}/32")
}

/// Runs a program to completion and returns its output.
pub fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("failed to run {program}: {e}"))
}

/// Runs a program, panics unless it succeeds, returns its stdout.
pub fn run_ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    if !out.status.success() {
        panic!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs the docker CLI.
pub fn docker(args: &[&str]) -> Output {
    run("docker", args)
}

/// Runs the docker CLI, panics unless it succeeds, returns its stdout.
pub fn docker_ok(args: &[&str]) -> String {
    run_ok("docker", args)
}

/// Two handles on one log file, for a child's stdout and stderr.
pub(super) fn log_handles(path: &Path, append: bool) -> (File, File) {
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(path)
        .unwrap_or_else(|e| panic!("failed to open log {}: {e}", path.display()));
    let clone = file.try_clone().expect("failed to clone a log file handle");
    (file, clone)
}

/// The last `lines` lines of a log file, without terminal colour codes.
pub(super) fn tail(path: &Path, lines: usize) -> String {
    match fs::read_to_string(path) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            strip_ansi(&all[all.len().saturating_sub(lines)..].join("\n"))
        }
        Err(e) => format!("(cannot read: {e})"),
    }
}

/// Removes `ESC [ ... <letter>` sequences.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

pub(super) fn require_root() {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next().map(str::to_string));
    assert_eq!(
        uid.as_deref(),
        Some("0"),
        "the end-to-end tests need root (network namespaces, routes, Docker); \
         run deploy/lab/test.sh as root"
    );
}
