//! Request and response bodies of Docker's NetworkDriver and IpamDriver protocols.
//!
//! Field names are Docker's (Go field names, no JSON tags). Requests tolerate
//! missing fields and `null` maps, because dockerd omits or nulls them freely.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `/Plugin.Activate` response.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ActivateResponse {
    pub implements: Vec<&'static str>,
}

/// `/NetworkDriver.GetCapabilities` response.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkCapabilities {
    pub scope: &'static str,
    pub connectivity_scope: &'static str,
}

/// One element of `IPv4Data` / `IPv6Data`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IpamData {
    pub address_space: String,
    pub pool: String,
    pub gateway: String,
}

/// `/NetworkDriver.CreateNetwork` request.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CreateNetworkRequest {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "Options", deserialize_with = "null_as_default")]
    pub options: HashMap<String, Value>,
    #[serde(rename = "IPv4Data", deserialize_with = "null_as_default")]
    pub ipv4_data: Vec<IpamData>,
    #[serde(rename = "IPv6Data", deserialize_with = "null_as_default")]
    pub ipv6_data: Vec<IpamData>,
}

/// Requests that carry only a network id (`DeleteNetwork`, `FreeNetwork`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NetworkRequest {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
}

/// `/NetworkDriver.AllocateNetwork` response (swarm managers only).
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AllocateNetworkResponse {
    pub options: HashMap<String, String>,
}

/// The interface part of `CreateEndpoint`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointInterface {
    pub address: String,
    #[serde(rename = "AddressIPv6")]
    pub address_ipv6: String,
    pub mac_address: String,
}

/// `/NetworkDriver.CreateEndpoint` request.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CreateEndpointRequest {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    #[serde(rename = "Interface", deserialize_with = "null_as_default")]
    pub interface: EndpointInterface,
}

/// Requests that name an endpoint (`DeleteEndpoint`, `Leave`, `EndpointOperInfo`, ...).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct EndpointRequest {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
}

/// `/NetworkDriver.Join` request.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct JoinRequest {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    #[serde(rename = "SandboxKey")]
    pub sandbox_key: String,
}

/// The interface Docker moves into the container on Join.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InterfaceName {
    pub src_name: String,
    pub dst_prefix: &'static str,
}

/// `/NetworkDriver.Join` response. No gateway: as in docker-bgp-lb, the container
/// reaches the world through another network (or `docker_gwbridge`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct JoinResponse {
    pub interface_name: InterfaceName,
}

/// `/NetworkDriver.EndpointOperInfo` response.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointInfoResponse {
    pub value: HashMap<String, Value>,
}

/// `/IpamDriver.GetCapabilities` response.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct IpamCapabilities {
    #[serde(rename = "RequiresMACAddress")]
    pub requires_mac_address: bool,
}

/// `/IpamDriver.GetDefaultAddressSpaces` response.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AddressSpaces {
    pub local_default_address_space: &'static str,
    pub global_default_address_space: &'static str,
}

/// `/IpamDriver.RequestPool` request.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RequestPoolRequest {
    pub address_space: String,
    pub pool: String,
    pub sub_pool: String,
    #[serde(deserialize_with = "null_as_default")]
    pub options: HashMap<String, String>,
    #[serde(rename = "V6")]
    pub v6: bool,
}

/// `/IpamDriver.RequestPool` response.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RequestPoolResponse {
    #[serde(rename = "PoolID")]
    pub pool_id: String,
    pub pool: String,
    pub data: HashMap<String, String>,
}

/// `/IpamDriver.RequestAddress` request.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RequestAddressRequest {
    #[serde(rename = "PoolID")]
    pub pool_id: String,
    pub address: String,
    #[serde(deserialize_with = "null_as_default")]
    pub options: HashMap<String, String>,
}

/// `/IpamDriver.RequestAddress` response.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RequestAddressResponse {
    pub address: String,
    pub data: HashMap<String, String>,
}

/// An empty success body: dockerd always decodes a 200 body as JSON.
#[derive(Debug, Default, Serialize)]
pub struct Empty {}

/// The error body Docker reads on non-200 responses.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    #[serde(rename = "Err")]
    pub err: String,
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_network_accepts_null_ipv6_data() {
        let body = r#"{"NetworkID":"abc","Options":{"com.docker.network.generic":{}},
            "IPv4Data":[{"AddressSpace":"local","Pool":"203.0.113.10/32","Gateway":"203.0.113.10/32"}],
            "IPv6Data":null}"#;
        let req: CreateNetworkRequest = serde_json::from_str(body).unwrap();
        assert_eq!(req.network_id, "abc");
        assert_eq!(req.ipv4_data[0].pool, "203.0.113.10/32");
        assert!(req.ipv6_data.is_empty());
    }

    #[test]
    fn request_pool_accepts_null_options() {
        let req: RequestPoolRequest =
            serde_json::from_str(r#"{"AddressSpace":"local","Pool":"","Options":null,"V6":false}"#)
                .unwrap();
        assert!(req.options.is_empty());
        assert!(!req.v6);
    }

    #[test]
    fn join_response_uses_docker_field_names() {
        let r = JoinResponse {
            interface_name: InterfaceName {
                src_name: "vcx".into(),
                dst_prefix: "eth",
            },
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"InterfaceName":{"SrcName":"vcx","DstPrefix":"eth"}}"#
        );
    }

    #[test]
    fn ipam_capabilities_spell_mac_in_capitals() {
        let s = serde_json::to_string(&IpamCapabilities {
            requires_mac_address: false,
        })
        .unwrap();
        assert_eq!(s, r#"{"RequiresMACAddress":false}"#);
    }
}
