//! Settings from the environment and the command line, validated before start-up.
//!
//! Every setting is an environment variable (so that `docker plugin set NAME=value`
//! works) and a flag. The names of docker-bgp-lb keep their meaning.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// What to do with a container after SIGUSR2 drained it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DrainAction {
    /// Send SIGTERM after the drain delay.
    Stop,
    /// Leave the container running, withdrawn, until it restarts.
    None,
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The command line and environment of bgplb.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "bgplb",
    version,
    about = "Docker network and IPAM plugin that announces healthy containers' addresses over BGP"
)]
pub struct Settings {
    /// BGP router id of this host; also the next hop of every announced address.
    #[arg(long, env = "ROUTER_ID")]
    pub router_id: Ipv4Addr,

    /// TCP port the BGP speaker listens on; -1 means do not listen (bgplb dials its peers).
    #[arg(long, env = "ROUTER_PORT", default_value_t = -1, allow_negative_numbers = true,
          value_parser = clap::value_parser!(i32).range(-1..=65535))]
    pub router_port: i32,

    /// Autonomous system number of this host.
    #[arg(long, env = "LOCAL_AS", default_value_t = 64512,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub local_as: u32,

    /// Address of the BGP peer (the router).
    #[arg(long, env = "PEER_ADDRESS")]
    pub peer_address: IpAddr,

    /// Autonomous system number of the peer.
    #[arg(long, env = "PEER_AS", value_parser = clap::value_parser!(u32).range(1..))]
    pub peer_as: u32,

    /// TCP MD5 password of the BGP session (never logged).
    #[arg(long, env = "PEER_PASSWORD", hide_env_values = true)]
    pub peer_password: Option<String>,

    /// Next hop of announced IPv6 (/128) addresses; without it they are routed
    /// on this host but not announced.
    #[arg(long, env = "NEXT_HOP_V6")]
    pub next_hop_v6: Option<std::net::Ipv6Addr>,

    /// Offer BGP graceful restart (RFC 4724), so that the peer keeps bgplb's
    /// routes while bgplb or its gobgpd restarts.
    #[arg(long, env = "GRACEFUL_RESTART", default_value_t = true, action = clap::ArgAction::Set)]
    pub graceful_restart: bool,

    /// Seconds the peer keeps bgplb's routes after the session drops, with graceful restart.
    #[arg(long, env = "GRACEFUL_RESTART_TIME", default_value_t = 120,
          value_parser = clap::value_parser!(u32).range(1..=4095))]
    pub graceful_restart_time: u32,

    /// Seconds between attempts to connect to a peer that is down.
    #[arg(long, env = "CONNECT_RETRY", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub connect_retry: u64,

    /// Drain a container that receives SIGUSR2: withdraw its address at once.
    #[arg(long, env = "SIGUSR2_HANDLER", default_value_t = false, action = clap::ArgAction::Set)]
    pub sigusr2_handler: bool,

    /// What to do after the drain delay: `stop` sends SIGTERM, `none` leaves it running.
    #[arg(long, env = "SIGUSR2_ACTION", value_enum, default_value_t = DrainAction::Stop)]
    pub sigusr2_action: DrainAction,

    /// Seconds between the withdrawal of a drained container and its SIGTERM.
    #[arg(long, env = "DRAIN_DELAY", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub drain_delay: u64,

    /// Report the network driver's scope as global (Docker Swarm).
    #[arg(long, env = "GLOBAL_SCOPE", default_value_t = false, action = clap::ArgAction::Set)]
    pub global_scope: bool,

    /// Unix socket of the Docker plugin protocol; Docker names the driver after its file stem.
    #[arg(
        long,
        env = "PLUGIN_SOCKET",
        default_value = "/run/docker/plugins/bgplb.sock"
    )]
    pub plugin_socket: PathBuf,

    /// Docker driver name of this plugin. By default the socket's file name for
    /// a legacy plugin, and the installed NAME:TAG for a managed plugin.
    #[arg(long, env = "DRIVER_NAME")]
    pub driver_name: Option<String>,

    /// Unix socket of the Docker Engine API.
    #[arg(long, env = "DOCKER_SOCKET", default_value = "/var/run/docker.sock")]
    pub docker_socket: PathBuf,

    /// gobgpd binary to run as a child process.
    #[arg(long, env = "GOBGPD_PATH", default_value = "gobgpd")]
    pub gobgpd_path: PathBuf,

    /// gRPC address of gobgpd: `unix:///path` or `host:port` on loopback.
    #[arg(
        long,
        env = "GOBGP_API",
        default_value = "unix:///run/bgplb/gobgp.sock"
    )]
    pub gobgp_api: String,

    /// Seconds between full reconcile passes when nothing happens.
    #[arg(long, env = "RESYNC_INTERVAL", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub resync_interval: u64,

    /// Kernel route protocol number that marks the routes bgplb owns.
    #[arg(long, env = "ROUTE_PROTOCOL", default_value_t = 201,
          value_parser = clap::value_parser!(u8).range(5..=254))]
    pub route_protocol: u8,

    /// Address of the /healthz, /status and /metrics endpoints; `off` disables them.
    #[arg(long, env = "STATUS_ADDRESS", default_value = "127.0.0.1:9474")]
    pub status_address: String,

    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Where gobgpd's gRPC API lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiAddress {
    /// A unix socket path.
    Unix(PathBuf),
    /// A TCP address on loopback.
    Tcp(std::net::SocketAddr),
}

impl std::fmt::Display for ApiAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiAddress::Unix(p) => write!(f, "unix://{}", p.display()),
            ApiAddress::Tcp(a) => write!(f, "{a}"),
        }
    }
}

/// A setting whose value is not acceptable.
#[derive(Debug, thiserror::Error)]
#[error("invalid {name}={value:?}: {valid}")]
pub struct InvalidSetting {
    pub name: &'static str,
    pub value: String,
    pub valid: &'static str,
}

/// Validated settings, in the types the rest of bgplb uses.
#[derive(Debug, Clone)]
pub struct Config {
    pub router_id: Ipv4Addr,
    pub router_port: i32,
    pub local_as: u32,
    pub peer: PeerConfig,
    pub next_hop_v6: Option<std::net::Ipv6Addr>,
    pub connect_retry: Duration,
    /// Graceful restart time in seconds, when graceful restart is on.
    pub graceful_restart: Option<u32>,
    pub drain: Option<DrainConfig>,
    pub global_scope: bool,
    pub plugin_socket: PathBuf,
    pub driver_name: Option<String>,
    pub docker_socket: PathBuf,
    pub gobgpd_path: PathBuf,
    pub gobgp_api: ApiAddress,
    pub resync_interval: Duration,
    pub route_protocol: u8,
    pub status_address: Option<std::net::SocketAddr>,
}

/// The one BGP peer of this host.
#[derive(Clone)]
pub struct PeerConfig {
    pub address: IpAddr,
    pub asn: u32,
    pub password: Option<String>,
}

impl std::fmt::Debug for PeerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerConfig")
            .field("address", &self.address)
            .field("asn", &self.asn)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

/// SIGUSR2 drain behaviour, present when SIGUSR2_HANDLER is on.
#[derive(Debug, Clone, Copy)]
pub struct DrainConfig {
    pub delay: Duration,
    pub action: DrainAction,
}

impl Settings {
    /// Checks what clap cannot and converts to [`Config`].
    pub fn validate(self) -> Result<Config, InvalidSetting> {
        if !is_unicast(self.router_id.into()) {
            return Err(InvalidSetting {
                name: "ROUTER_ID",
                value: self.router_id.to_string(),
                valid: "an IPv4 address of this host that the peer can reach \
                        (not 0.0.0.0, loopback, multicast or broadcast)",
            });
        }
        if !is_unicast(self.peer_address) {
            return Err(InvalidSetting {
                name: "PEER_ADDRESS",
                value: self.peer_address.to_string(),
                valid: "the router's unicast address (not unspecified, loopback or multicast)",
            });
        }
        if self.router_port == 0 {
            return Err(InvalidSetting {
                name: "ROUTER_PORT",
                value: "0".into(),
                valid: "-1 to not listen, or a TCP port from 1 to 65535 (179 is BGP's)",
            });
        }
        check_plugin_socket(&self.plugin_socket)?;
        if let Some(hop) = self
            .next_hop_v6
            .filter(|h| h.is_unspecified() || h.is_loopback())
        {
            return Err(InvalidSetting {
                name: "NEXT_HOP_V6",
                value: hop.to_string(),
                valid: "a global IPv6 address of this host that the peer can reach",
            });
        }
        if self.peer_address == std::net::IpAddr::V4(self.router_id) {
            return Err(InvalidSetting {
                name: "PEER_ADDRESS",
                value: self.peer_address.to_string(),
                valid: "the router's address, not this host's ROUTER_ID",
            });
        }
        let gobgp_api = parse_api_address(&self.gobgp_api)?;
        let status_address = match self.status_address.as_str() {
            "" | "off" => None,
            text => Some(text.parse().map_err(|_| InvalidSetting {
                name: "STATUS_ADDRESS",
                value: text.to_string(),
                valid: "an address and port such as 127.0.0.1:9474, or off",
            })?),
        };
        let drain = self.sigusr2_handler.then_some(DrainConfig {
            delay: Duration::from_secs(self.drain_delay),
            action: self.sigusr2_action,
        });
        Ok(Config {
            router_id: self.router_id,
            router_port: self.router_port,
            local_as: self.local_as,
            peer: PeerConfig {
                address: self.peer_address,
                asn: self.peer_as,
                password: self.peer_password.filter(|p| !p.is_empty()),
            },
            next_hop_v6: self.next_hop_v6,
            connect_retry: Duration::from_secs(self.connect_retry),
            graceful_restart: self.graceful_restart.then_some(self.graceful_restart_time),
            drain,
            global_scope: self.global_scope,
            plugin_socket: self.plugin_socket,
            driver_name: self.driver_name.filter(|d| !d.is_empty()),
            docker_socket: self.docker_socket,
            gobgpd_path: self.gobgpd_path,
            gobgp_api,
            resync_interval: Duration::from_secs(self.resync_interval),
            route_protocol: self.route_protocol,
            status_address,
        })
    }
}

/// Whether an address can be a BGP speaker's or a peer's: not unspecified,
/// loopback, multicast or the IPv4 broadcast address.
pub fn is_unicast(addr: IpAddr) -> bool {
    let special = match addr {
        IpAddr::V4(a) => a.is_broadcast(),
        IpAddr::V6(_) => false,
    };
    !(addr.is_unspecified() || addr.is_loopback() || addr.is_multicast() || special)
}

/// Docker finds a legacy plugin by a socket named `NAME.sock`, and names the
/// driver NAME; any other name would never be dialled.
fn check_plugin_socket(path: &std::path::Path) -> Result<(), InvalidSetting> {
    let named_sock = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".sock"))
        .is_some_and(|stem| !stem.is_empty());
    if path.is_absolute() && named_sock {
        return Ok(());
    }
    Err(InvalidSetting {
        name: "PLUGIN_SOCKET",
        value: path.display().to_string(),
        valid: "an absolute path ending in NAME.sock, such as /run/docker/plugins/bgplb.sock",
    })
}

/// Finds the gobgpd binary as the process will run it: a path with a `/`
/// as it is, a bare name on `search_path` (the value of PATH).
pub fn find_gobgpd(binary: &std::path::Path, search_path: &str) -> Result<PathBuf, InvalidSetting> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    let found = if binary.components().count() > 1 {
        executable(binary).then(|| binary.to_path_buf())
    } else {
        std::env::split_paths(search_path)
            .map(|dir| dir.join(binary))
            .find(|p| executable(p))
    };
    found.ok_or_else(|| InvalidSetting {
        name: "GOBGPD_PATH",
        value: binary.display().to_string(),
        valid: "an executable gobgpd, by path or on PATH (Debian: apt-get install gobgpd)",
    })
}

/// Parses GOBGP_API: a unix socket URL, or a TCP address that must be loopback,
/// because gobgpd's API has no authentication.
pub fn parse_api_address(value: &str) -> Result<ApiAddress, InvalidSetting> {
    let invalid = || InvalidSetting {
        name: "GOBGP_API",
        value: value.to_string(),
        valid: "unix:///absolute/path.sock, or a loopback address and port such as 127.0.0.1:50052",
    };
    if let Some(path) = value.strip_prefix("unix://") {
        let path = PathBuf::from(path);
        return if path.is_absolute() {
            Ok(ApiAddress::Unix(path))
        } else {
            Err(invalid())
        };
    }
    match value.parse::<std::net::SocketAddr>() {
        Ok(addr) if addr.ip().is_loopback() && addr.port() != 0 => Ok(ApiAddress::Tcp(addr)),
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Settings, clap::Error> {
        let base = [
            "bgplb",
            "--router-id",
            "198.51.100.1",
            "--peer-address",
            "198.51.100.2",
        ];
        let all: Vec<&str> = base
            .iter()
            .copied()
            .chain(["--peer-as", "64512"])
            .chain(args.iter().copied())
            .collect();
        Settings::try_parse_from(all)
    }

    #[test]
    fn defaults_match_the_original_plugin() {
        let c = parse(&[]).unwrap().validate().unwrap();
        assert_eq!(c.local_as, 64512);
        assert_eq!(c.router_port, -1);
        assert!(c.drain.is_none());
        assert!(!c.global_scope);
        assert_eq!(
            c.plugin_socket,
            PathBuf::from("/run/docker/plugins/bgplb.sock")
        );
    }

    #[test]
    fn drain_settings_apply_only_with_the_handler_on() {
        let c = parse(&["--sigusr2-handler", "true", "--drain-delay", "3"])
            .unwrap()
            .validate()
            .unwrap();
        let d = c.drain.unwrap();
        assert_eq!(d.delay, Duration::from_secs(3));
        assert_eq!(d.action, DrainAction::Stop);
    }

    #[test]
    fn bad_numbers_are_refused() {
        assert!(parse(&["--local-as", "0"]).is_err());
        assert!(parse(&["--router-port", "70000"]).is_err());
        assert!(parse(&["--local-as", "abc"]).is_err());
        assert!(parse(&["--sigusr2-action", "reboot"]).is_err());
    }

    #[test]
    fn loopback_router_id_is_refused_with_the_name() {
        let s = Settings::try_parse_from([
            "bgplb",
            "--router-id",
            "127.0.0.1",
            "--peer-address",
            "198.51.100.2",
            "--peer-as",
            "1",
        ])
        .unwrap();
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("ROUTER_ID"), "{err}");
        assert!(err.contains("127.0.0.1"), "{err}");
    }

    #[test]
    fn gobgp_api_must_be_unix_or_loopback() {
        assert_eq!(
            parse_api_address("unix:///run/x.sock").unwrap(),
            ApiAddress::Unix("/run/x.sock".into())
        );
        assert!(parse_api_address("127.0.0.1:50052").is_ok());
        assert!(parse_api_address("0.0.0.0:50051").is_err());
        assert!(parse_api_address("unix://relative").is_err());
        assert!(parse_api_address("nonsense").is_err());
    }

    #[test]
    fn status_address_can_be_turned_off_but_not_garbled() {
        assert!(parse(&["--status-address", "off"])
            .unwrap()
            .validate()
            .unwrap()
            .status_address
            .is_none());
        let err = parse(&["--status-address", "9474"])
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("STATUS_ADDRESS"), "{err}");
    }

    fn refused(args: &[&str]) -> String {
        let all: Vec<&str> = ["bgplb"].iter().chain(args).copied().collect();
        Settings::try_parse_from(all)
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn addresses_that_cannot_peer_are_refused_with_the_name() {
        let peer = ["--peer-address", "198.51.100.2", "--peer-as", "1"];
        for id in ["255.255.255.255", "224.0.0.1", "0.0.0.0"] {
            let args = [&["--router-id", id][..], &peer[..]].concat();
            let err = refused(&args);
            assert!(err.contains("ROUTER_ID") && err.contains(id), "{err}");
        }
        for addr in ["0.0.0.0", "::1", "ff02::1", "127.0.0.1"] {
            let args = [
                "--router-id",
                "198.51.100.1",
                "--peer-as",
                "1",
                "--peer-address",
                addr,
            ];
            let err = refused(&args);
            assert!(err.contains("PEER_ADDRESS") && err.contains(addr), "{err}");
        }
    }

    #[test]
    fn router_port_zero_is_refused() {
        let err = parse(&["--router-port", "0"])
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(err.name, "ROUTER_PORT");
        assert!(parse(&["--router-port", "179"]).unwrap().validate().is_ok());
    }

    #[test]
    fn plugin_socket_must_be_an_absolute_dot_sock() {
        for bad in [
            "/run/docker/plugins/bgplb",
            "bgplb.sock",
            "/run/docker/plugins/.sock",
        ] {
            let err = parse(&["--plugin-socket", bad])
                .unwrap()
                .validate()
                .unwrap_err();
            assert_eq!(err.name, "PLUGIN_SOCKET", "{bad}");
        }
        let ok = parse(&["--plugin-socket", "/run/docker/plugins/lb2.sock"]).unwrap();
        assert!(ok.validate().is_ok());
    }

    #[test]
    fn gobgpd_is_found_on_the_search_path_or_refused() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("gobgpd");
        std::fs::write(&bin, "#!/bin/sh\n").unwrap();
        let search = dir.path().display().to_string();
        assert!(
            find_gobgpd(std::path::Path::new("gobgpd"), &search).is_err(),
            "not executable"
        );
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            find_gobgpd(std::path::Path::new("gobgpd"), &search).unwrap(),
            bin
        );
        assert_eq!(find_gobgpd(&bin, "").unwrap(), bin);
        let err = find_gobgpd(std::path::Path::new("/nonexistent/gobgpd"), &search).unwrap_err();
        assert_eq!(err.name, "GOBGPD_PATH");
    }

    #[test]
    fn password_is_hidden_in_debug_output() {
        let c = parse(&["--peer-password", "s3cret"])
            .unwrap()
            .validate()
            .unwrap();
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
