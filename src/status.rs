//! The operator's view of bgplb: `/healthz`, `/status` (JSON) and `/metrics`
//! (Prometheus text), served on a loopback TCP address.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use serde::Serialize;
use tokio::sync::watch;

/// Labels of the pass counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PassLabels {
    /// `ok` or `error`.
    pub result: &'static str,
}

/// Labels of the action counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    /// The action's kind, e.g. `announce`.
    pub action: &'static str,
    /// `ok` or `error`.
    pub result: &'static str,
}

/// bgplb's metrics. Cheap to update from any task.
pub struct Metrics {
    registry: Registry,
    /// Reconcile passes by result.
    pub passes: Family<PassLabels, Counter>,
    /// Applied actions by kind and result.
    pub actions: Family<ActionLabels, Counter>,
    /// How long passes take.
    pub pass_seconds: Histogram,
    /// Addresses bgplb wants announced now.
    pub announced: Gauge,
    /// bgplb's host routes in the kernel now.
    pub kernel_routes: Gauge,
    /// 1 while the BGP session with the peer is established.
    pub session_up: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("bgplb");
        let passes = Family::<PassLabels, Counter>::default();
        let actions = Family::<ActionLabels, Counter>::default();
        let pass_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 14));
        let (announced, kernel_routes, session_up) =
            (Gauge::default(), Gauge::default(), Gauge::default());
        registry.register(
            "reconcile_passes",
            "Reconcile passes by result",
            passes.clone(),
        );
        registry.register(
            "actions",
            "Applied actions by kind and result",
            actions.clone(),
        );
        registry.register(
            "reconcile_pass_seconds",
            "Duration of reconcile passes",
            pass_seconds.clone(),
        );
        registry.register(
            "announced_routes",
            "Addresses announced over BGP",
            announced.clone(),
        );
        registry.register(
            "kernel_routes",
            "Host routes bgplb keeps in the kernel",
            kernel_routes.clone(),
        );
        registry.register(
            "bgp_session_up",
            "1 while the BGP session is established",
            session_up.clone(),
        );
        Self {
            registry,
            passes,
            actions,
            pass_seconds,
            announced,
            kernel_routes,
            session_up,
        }
    }
}

impl Metrics {
    fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// An announced address, for `/status`.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Announced {
    pub vip: IpAddr,
    pub next_hop: IpAddr,
    pub network: String,
    pub container: String,
}

/// What the controller last saw and did, for `/status` and `/healthz`.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Status {
    /// Whether the last pass finished; `None` before the first one.
    pub last_pass_ok: Option<bool>,
    /// The last pass's error, with its causes.
    pub last_error: Option<String>,
    /// Seconds since the Unix epoch at the end of the last pass.
    pub last_pass_at: u64,
    pub announced: Vec<Announced>,
    /// bgplb's kernel routes: address and device.
    pub kernel_routes: Vec<(IpAddr, String)>,
    /// Names of the containers draining now.
    pub drained: Vec<String>,
    /// Each BGP peer's session state as gobgpd reports it ("established", "active", ...).
    pub bgp_sessions: std::collections::BTreeMap<String, String>,
}

#[derive(Clone)]
struct StatusState {
    metrics: Arc<Metrics>,
    status: watch::Receiver<Status>,
}

/// Serves the status endpoints on `address` until `shutdown` resolves.
pub async fn serve(
    address: SocketAddr,
    metrics: Arc<Metrics>,
    status: watch::Receiver<Status>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    tracing::info!(address = %address, "status endpoints listening");
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/status", get(status_json))
        .route("/metrics", get(metrics_text))
        .with_state(StatusState { metrics, status });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// 200 once a reconcile pass has finished and while the last one did;
/// 503 before the first and after a failed one.
async fn healthz(State(state): State<StatusState>) -> impl IntoResponse {
    let status = state.status.borrow().clone();
    match status.last_pass_ok {
        Some(true) => (StatusCode::OK, "ok\n".to_string()),
        Some(false) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "last pass failed: {}\n",
                status.last_error.unwrap_or_default()
            ),
        ),
        None => (StatusCode::SERVICE_UNAVAILABLE, "starting\n".to_string()),
    }
}

async fn status_json(State(state): State<StatusState>) -> Json<Status> {
    Json(state.status.borrow().clone())
}

async fn metrics_text(State(state): State<StatusState>) -> impl IntoResponse {
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    (
        [(header::CONTENT_TYPE, content_type)],
        state.metrics.encode(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_exposed_with_the_bgplb_prefix() {
        let m = Metrics::default();
        m.passes.get_or_create(&PassLabels { result: "ok" }).inc();
        m.announced.set(2);
        let text = m.encode();
        assert!(
            text.contains("bgplb_reconcile_passes_total{result=\"ok\"} 1"),
            "{text}"
        );
        assert!(text.contains("bgplb_announced_routes 2"), "{text}");
    }
}
