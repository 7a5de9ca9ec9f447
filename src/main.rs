//! The `bgplb` command: settings, logging, run.

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use bgplb::config::{LogFormat, Settings};

/// Exit code for settings that are missing or invalid.
const EXIT_BAD_CONFIG: u8 = 2;

fn main() -> ExitCode {
    unset_empty_settings();
    let settings = Settings::parse();
    init_logging(settings.log_format);
    // Without PATH, the C library's own default applies when gobgpd is started.
    let search_path = std::env::var("PATH")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "/bin:/usr/bin".to_string());
    let config = settings.validate().and_then(|config| {
        bgplb::config::find_gobgpd(&config.gobgpd_path, &search_path)?;
        Ok(config)
    });
    let config = match config {
        Ok(c) => c,
        Err(error) => {
            eprintln!("bgplb: {error}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(error) => {
            eprintln!("bgplb: failed to start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(bgplb::app::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "bgplb failed");
            ExitCode::FAILURE
        }
    }
}

/// An empty setting means "not set", as in docker-bgp-lb, whose plugin
/// config ships `SIGUSR2_HANDLER=""`; clap would refuse it as a value. Done
/// first thing, while the process has one thread.
fn unset_empty_settings() {
    let command = <Settings as clap::CommandFactory>::command();
    for name in command.get_arguments().filter_map(|a| a.get_env()) {
        if std::env::var_os(name).is_some_and(|v| v.is_empty()) {
            std::env::remove_var(name);
        }
    }
    // An empty filter would silence every line, errors included.
    if std::env::var_os("RUST_LOG").is_some_and(|v| v.is_empty()) {
        std::env::remove_var("RUST_LOG");
    }
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // netlink-packet-route warns about every attribute newer than itself.
    let filter = filter.add_directive(
        "netlink_packet_route=error"
            .parse()
            .expect("static directive"),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
