//! The NetworkDriver side: a bridge per network, a veth pair per endpoint.
//! Routes and announcements are the controller's; these handlers only do what
//! Docker waits for, then ask the controller for a pass.

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};

use super::wire::{self, CreateNetworkRequest, EndpointRequest, JoinRequest, NetworkRequest};
use super::{decode, empty, ipam, PluginError, PluginState};
use crate::controller::Msg;
use crate::netdev;

/// Why a network driver call failed.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("network {0} has no IPv4 data: create it with --ipam-driver set to this plugin and --subnet A.B.C.D/32")]
    NoPool(String),
    #[error("network pool {0} is not one address: create the network with this plugin as its IPAM driver too (--ipam-driver) and --subnet A.B.C.D/32")]
    NotSingle(String),
    #[error("a bgplb network has one address per family, but {0} were given: give one --subnet (and one v6subnet)")]
    SeveralPools(usize),
    #[error("address {vip} is already the address of network {network}: one address, one network")]
    Taken { vip: IpAddr, network: String },
    #[error("invalid {kind} id {id:?}: expected Docker's hexadecimal id")]
    BadId { kind: &'static str, id: String },
    #[error("failed to set up the network device")]
    Device(#[source] netdev::Error),
}

impl NetworkError {
    /// Whether the caller's input, not the host, is at fault.
    pub fn is_input(&self) -> bool {
        !matches!(self, NetworkError::Device(_))
    }
}

/// Refuses ids that cannot be Docker's, before they become interface names.
fn check_id(kind: &'static str, id: &str) -> Result<(), NetworkError> {
    if id.len() >= 12 && id.chars().all(|c| c.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(NetworkError::BadId {
            kind,
            id: id.to_string(),
        })
    }
}

/// The NetworkDriver routes.
pub fn routes() -> Router<Arc<PluginState>> {
    Router::new()
        .route("/NetworkDriver.GetCapabilities", post(capabilities))
        .route("/NetworkDriver.CreateNetwork", post(create_network))
        .route("/NetworkDriver.DeleteNetwork", post(delete_network))
        .route("/NetworkDriver.AllocateNetwork", post(allocate_network))
        .route("/NetworkDriver.FreeNetwork", post(empty))
        .route("/NetworkDriver.CreateEndpoint", post(create_endpoint))
        .route("/NetworkDriver.DeleteEndpoint", post(delete_endpoint))
        .route("/NetworkDriver.EndpointOperInfo", post(endpoint_info))
        .route("/NetworkDriver.Join", post(join))
        .route("/NetworkDriver.Leave", post(leave))
        .route("/NetworkDriver.ProgramExternalConnectivity", post(empty))
        .route("/NetworkDriver.RevokeExternalConnectivity", post(empty))
        .route("/NetworkDriver.DiscoverNew", post(empty))
        .route("/NetworkDriver.DiscoverDelete", post(empty))
}

async fn capabilities(State(state): State<Arc<PluginState>>) -> Json<wire::NetworkCapabilities> {
    let scope = if state.global_scope {
        "global"
    } else {
        "local"
    };
    Json(wire::NetworkCapabilities {
        scope,
        connectivity_scope: scope,
    })
}

/// The addresses a network announces, checked again here because a network
/// may have been created with another IPAM driver.
pub fn network_addresses(req: &CreateNetworkRequest) -> Result<Vec<IpAddr>, NetworkError> {
    if req.ipv4_data.is_empty() {
        return Err(NetworkError::NoPool(req.network_id.clone()));
    }
    for pools in [&req.ipv4_data, &req.ipv6_data] {
        if pools.len() > 1 {
            return Err(NetworkError::SeveralPools(pools.len()));
        }
    }
    let mut vips = Vec::new();
    for data in req.ipv4_data.iter().chain(&req.ipv6_data) {
        if data.pool == ipam::V4_PLACEHOLDER && !req.ipv6_data.is_empty() {
            continue;
        }
        let vip = ipam::parse_single(&data.pool)
            .map_err(|_| NetworkError::NotSingle(data.pool.clone()))?;
        vips.push(vip);
    }
    Ok(vips)
}

/// Refuses an address another of bgplb's networks already announces: the
/// kernel has one route per address, and traffic would reach only one of them.
fn check_unique(state: &PluginState, id: &str, vips: &[IpAddr]) -> Result<(), NetworkError> {
    let networks = state.networks.borrow();
    for other in networks.iter().filter(|n| n.id != id) {
        if let Some(vip) = vips.iter().find(|v| other.vips.contains(v)) {
            return Err(NetworkError::Taken {
                vip: *vip,
                network: other.name.clone(),
            });
        }
    }
    Ok(())
}

async fn create_network(
    State(state): State<Arc<PluginState>>,
    body: Bytes,
) -> Result<Json<wire::Empty>, PluginError> {
    let req: CreateNetworkRequest = decode("CreateNetwork", &body)?;
    check_id("network", &req.network_id)?;
    let vips = network_addresses(&req)?;
    check_unique(&state, &req.network_id, &vips)?;
    let bridge = netdev::bridge_name(&req.network_id);
    state.fresh.mark(&bridge);
    state
        .netdev
        .ensure_bridge(&bridge)
        .await
        .map_err(NetworkError::Device)?;
    tracing::info!(network = %req.network_id, bridge = %bridge, vips = ?vips, "network created");
    let _ = state
        .controller
        .send(Msg::NetworkCreated(req.network_id))
        .await;
    Ok(Json(wire::Empty {}))
}

async fn delete_network(
    State(state): State<Arc<PluginState>>,
    body: Bytes,
) -> Result<Json<wire::Empty>, PluginError> {
    let req: NetworkRequest = decode("DeleteNetwork", &body)?;
    check_id("network", &req.network_id)?;
    let bridge = netdev::bridge_name(&req.network_id);
    // Before deleting: a pass with an older snapshot must not bring it back.
    state.fresh.mark_deleted(&bridge);
    state
        .netdev
        .delete(&bridge)
        .await
        .map_err(NetworkError::Device)?;
    tracing::info!(network = %req.network_id, bridge = %bridge, "network deleted");
    let _ = state.controller.send(Msg::Trigger("network deleted")).await;
    Ok(Json(wire::Empty {}))
}

async fn allocate_network(body: Bytes) -> Result<Json<wire::AllocateNetworkResponse>, PluginError> {
    let _: NetworkRequest = decode("AllocateNetwork", &body)?;
    Ok(Json(wire::AllocateNetworkResponse::default()))
}

async fn create_endpoint(body: Bytes) -> Result<Json<wire::Empty>, PluginError> {
    let req: wire::CreateEndpointRequest = decode("CreateEndpoint", &body)?;
    check_id("network", &req.network_id)?;
    check_id("endpoint", &req.endpoint_id)?;
    tracing::debug!(endpoint = %req.endpoint_id, address = %req.interface.address, "endpoint created");
    // Nothing to echo: Docker fails the call if the driver returns fields it set.
    Ok(Json(wire::Empty {}))
}

async fn delete_endpoint(
    State(state): State<Arc<PluginState>>,
    body: Bytes,
) -> Result<Json<wire::Empty>, PluginError> {
    let req: EndpointRequest = decode("DeleteEndpoint", &body)?;
    remove_veth(&state, &req.endpoint_id).await?;
    Ok(Json(wire::Empty {}))
}

async fn endpoint_info(body: Bytes) -> Result<Json<wire::EndpointInfoResponse>, PluginError> {
    let _: EndpointRequest = decode("EndpointOperInfo", &body)?;
    Ok(Json(wire::EndpointInfoResponse::default()))
}

async fn join(
    State(state): State<Arc<PluginState>>,
    body: Bytes,
) -> Result<Json<wire::JoinResponse>, PluginError> {
    let req: JoinRequest = decode("Join", &body)?;
    check_id("network", &req.network_id)?;
    check_id("endpoint", &req.endpoint_id)?;
    let bridge = netdev::bridge_name(&req.network_id);
    let (host, _) = netdev::veth_names(&req.endpoint_id);
    state.fresh.mark(&bridge);
    state.fresh.mark(&host);
    // The bridge may be gone after a host reboot; Docker still knows the network.
    state
        .netdev
        .ensure_bridge(&bridge)
        .await
        .map_err(NetworkError::Device)?;
    let peer = state
        .netdev
        .ensure_veth(&req.endpoint_id, &bridge)
        .await
        .map_err(NetworkError::Device)?;
    tracing::debug!(endpoint = %req.endpoint_id, veth = %host, sandbox = %req.sandbox_key, "endpoint joined");
    let _ = state.controller.send(Msg::Trigger("endpoint joined")).await;
    Ok(Json(wire::JoinResponse {
        interface_name: wire::InterfaceName {
            src_name: peer,
            dst_prefix: "eth",
        },
    }))
}

async fn leave(
    State(state): State<Arc<PluginState>>,
    body: Bytes,
) -> Result<Json<wire::Empty>, PluginError> {
    let req: EndpointRequest = decode("Leave", &body)?;
    remove_veth(&state, &req.endpoint_id).await?;
    Ok(Json(wire::Empty {}))
}

async fn remove_veth(state: &PluginState, endpoint_id: &str) -> Result<(), PluginError> {
    check_id("endpoint", endpoint_id)?;
    let (host, _) = netdev::veth_names(endpoint_id);
    state
        .netdev
        .delete(&host)
        .await
        .map_err(NetworkError::Device)?;
    tracing::debug!(endpoint = %endpoint_id, veth = %host, "endpoint left");
    let _ = state.controller.send(Msg::Trigger("endpoint left")).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::wire::IpamData;

    fn request(v4: &[&str], v6: &[&str]) -> CreateNetworkRequest {
        let data = |pools: &[&str]| {
            pools
                .iter()
                .map(|p| IpamData {
                    pool: p.to_string(),
                    ..Default::default()
                })
                .collect()
        };
        CreateNetworkRequest {
            network_id: "0123456789abcdef".into(),
            ipv4_data: data(v4),
            ipv6_data: data(v6),
            ..Default::default()
        }
    }

    #[test]
    fn one_address_per_family_is_accepted() {
        let vips =
            network_addresses(&request(&["203.0.113.10/32"], &["2001:db8::10/128"])).unwrap();
        assert_eq!(vips.len(), 2);
        let v6_only =
            network_addresses(&request(&[ipam::V4_PLACEHOLDER], &["2001:db8::10/128"])).unwrap();
        assert_eq!(v6_only, vec!["2001:db8::10".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn two_subnets_are_refused() {
        let err =
            network_addresses(&request(&["203.0.113.10/32", "203.0.113.11/32"], &[])).unwrap_err();
        assert!(matches!(err, NetworkError::SeveralPools(2)), "{err}");
    }

    #[test]
    fn another_ipam_drivers_pool_is_refused_with_a_hint() {
        let err = network_addresses(&request(&["172.20.0.0/16"], &[]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("172.20.0.0/16") && err.contains("--ipam-driver"),
            "{err}"
        );
        assert!(
            !err.contains("172.20.0.0/32"),
            "no misleading suggestion: {err}"
        );
    }
}
