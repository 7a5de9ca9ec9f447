//! The Docker plugin protocol: HTTP+JSON on a unix socket, served with axum.
//!
//! dockerd sends no Content-Type and sometimes an empty body, so bodies are
//! read as bytes and decoded here. Every error becomes `{"Err": "..."}` with
//! the whole cause chain, in one place ([`PluginError`]).

pub mod ipam;
pub mod network;
pub mod wire;

use std::path::Path;
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::controller::Msg;
use crate::netdev::{FreshLinks, NetDevices};

/// What the handlers share: they touch the kernel for Docker's synchronous
/// calls and leave the rest to the controller.
pub struct PluginState {
    pub netdev: NetDevices,
    pub fresh: Arc<FreshLinks>,
    pub controller: mpsc::Sender<Msg>,
    pub global_scope: bool,
    /// bgplb's networks as the controller last saw them.
    pub networks: tokio::sync::watch::Receiver<Vec<crate::docker::NetworkView>>,
}

/// Why a plugin call failed; the response body carries the full chain.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("malformed {call} request")]
    Malformed {
        call: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Ipam(#[from] ipam::IpamError),
    #[error(transparent)]
    Network(#[from] network::NetworkError),
}

impl IntoResponse for PluginError {
    fn into_response(self) -> Response {
        let status = match &self {
            PluginError::Malformed { .. } | PluginError::Ipam(_) => StatusCode::BAD_REQUEST,
            PluginError::Network(e) if e.is_input() => StatusCode::BAD_REQUEST,
            PluginError::Network(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = crate::error_chain(&self);
        tracing::warn!(error = %message, "plugin call refused");
        (status, Json(wire::ErrorBody { err: message })).into_response()
    }
}

/// Decodes a request body; an empty body is the default request.
pub fn decode<T: DeserializeOwned + Default>(
    call: &'static str,
    body: &Bytes,
) -> Result<T, PluginError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|source| PluginError::Malformed { call, source })
}

/// Every route of both drivers.
pub fn router(state: Arc<PluginState>) -> Router {
    Router::new()
        .route("/Plugin.Activate", post(activate))
        .merge(network::routes())
        .merge(ipam_routes())
        .fallback(unknown_call)
        .with_state(state)
        .layer(axum::middleware::map_response(errors_as_json))
        .layer(axum::middleware::from_fn(trace_call))
}

/// Refusals made before a handler runs (a body too large, a method other than
/// POST) come as plain text; Docker reads `{"Err": ...}`.
async fn errors_as_json(response: Response) -> Response {
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"application/json"));
    if is_json || !(response.status().is_client_error() || response.status().is_server_error()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, 64 * 1024).await {
        Ok(bytes) if !bytes.is_empty() => String::from_utf8_lossy(&bytes).into_owned(),
        _ => parts
            .status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_string(),
    };
    (parts.status, Json(wire::ErrorBody { err: text })).into_response()
}

async fn trace_call(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let call = req.uri().path().trim_start_matches('/').to_string();
    let span = tracing::debug_span!("plugin", call = %call);
    span.in_scope(|| tracing::debug!("request"));
    let response = tracing::Instrument::instrument(next.run(req), span.clone()).await;
    span.in_scope(|| tracing::debug!(status = response.status().as_u16(), "response"));
    response
}

async fn activate() -> Json<wire::ActivateResponse> {
    Json(wire::ActivateResponse {
        implements: vec!["NetworkDriver", "IpamDriver"],
    })
}

async fn unknown_call(uri: axum::http::Uri) -> Response {
    tracing::debug!(path = %uri.path(), "unknown plugin call");
    let body = wire::ErrorBody {
        err: format!("bgplb does not implement {}", uri.path()),
    };
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}

fn ipam_routes() -> Router<Arc<PluginState>> {
    Router::new()
        .route(
            "/IpamDriver.GetCapabilities",
            post(|| async {
                Json(wire::IpamCapabilities {
                    requires_mac_address: false,
                })
            }),
        )
        .route(
            "/IpamDriver.GetDefaultAddressSpaces",
            post(|| async {
                Json(wire::AddressSpaces {
                    local_default_address_space: "local",
                    global_default_address_space: "global",
                })
            }),
        )
        .route("/IpamDriver.RequestPool", post(request_pool))
        .route("/IpamDriver.RequestAddress", post(request_address))
        .route("/IpamDriver.ReleasePool", post(empty))
        .route("/IpamDriver.ReleaseAddress", post(empty))
}

async fn request_pool(body: Bytes) -> Result<Json<wire::RequestPoolResponse>, PluginError> {
    let req: wire::RequestPoolRequest = decode("RequestPool", &body)?;
    let resp = ipam::request_pool(&req)?;
    tracing::debug!(pool = %resp.pool, v6 = req.v6, "pool granted");
    Ok(Json(resp))
}

async fn request_address(body: Bytes) -> Result<Json<wire::RequestAddressResponse>, PluginError> {
    let req: wire::RequestAddressRequest = decode("RequestAddress", &body)?;
    Ok(Json(ipam::request_address(&req)?))
}

/// Calls that need nothing done: release calls, and calls for ids bgplb no
/// longer knows about, which Docker sends after restarts and must succeed.
pub async fn empty() -> Json<wire::Empty> {
    Json(wire::Empty {})
}

/// Serves the plugin protocol on `socket` until `shutdown` resolves, then removes the socket.
pub async fn serve(
    socket: &Path,
    state: Arc<PluginState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // A socket left by an earlier run would make bind fail.
    match std::fs::remove_file(socket) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let listener = tokio::net::UnixListener::bind(socket)?;
    tracing::info!(socket = %socket.display(), "plugin protocol listening");
    let served = axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await;
    let _ = std::fs::remove_file(socket);
    served
}

#[cfg(test)]
mod tests;
