//! bgplb: a Docker network and IPAM plugin that announces container addresses
//! over BGP while, and only while, the container is healthy.
//!
//! The parts, in the order a change travels through them: the Docker plugin
//! protocol ([`plugin`]), network devices ([`netdev`]), kernel routes
//! ([`routes`]), the Docker watcher ([`docker`]), the BGP speaker ([`bgp`]),
//! and the reconcile loop that joins them ([`controller`]); [`app`] starts them.

#![deny(unsafe_code)]

pub mod app;
pub mod bgp;
pub mod config;
pub mod controller;
pub mod docker;
pub mod identity;
pub mod netdev;
pub mod plugin;
pub mod routes;
pub mod status;

/// An error and its causes, joined with ": ", for logs and plugin responses.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Resolves once `flag` turns true (or its sender is gone).
pub async fn stopped(flag: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = flag.wait_for(|stop| *stop).await;
}
