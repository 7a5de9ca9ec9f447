//! A typed client of gobgpd's gRPC API, over a unix socket or loopback TCP.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

use super::api::gobgp_api_client::GobgpApiClient;
use super::api::{
    self, family, peer_state::SessionState, AddPathRequest, AddPeerRequest, DeletePathRequest,
    Family, GetBgpRequest, ListPathRequest, ListPeerRequest, StartBgpRequest, TableType,
};
use super::path;
use crate::config::ApiAddress;

const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors of the gRPC client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to {action}")]
    Call {
        action: String,
        #[source]
        source: Grpc,
    },
    #[error("invalid gobgp api address {0}")]
    Address(String),
}

/// A gRPC status, shown as its code and message only (tonic's own text
/// carries empty details and metadata too).
#[derive(Debug)]
pub struct Grpc(pub Box<tonic::Status>);

impl std::fmt::Display for Grpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({:?})", self.0.message(), self.0.code())
    }
}

impl std::error::Error for Grpc {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&*self.0)
    }
}

/// A request that fails after [`CALL_TIMEOUT`] instead of hanging on a stuck gobgpd.
fn timed<T>(msg: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(msg);
    request.set_timeout(CALL_TIMEOUT);
    request
}

fn call(action: impl Into<String>) -> impl FnOnce(tonic::Status) -> Error {
    let action = action.into();
    move |source| Error::Call {
        action,
        source: Grpc(Box::new(source)),
    }
}

/// A peer as gobgpd reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    pub address: String,
    pub asn: u32,
    pub established: bool,
}

/// gobgpd's global settings; `asn == 0` means BGP has not been started.
pub type Global = api::Global;

/// A client of one gobgpd. Cheap to clone; connects lazily and reconnects.
#[derive(Clone)]
pub struct BgpClient {
    inner: GobgpApiClient<Channel>,
}

impl BgpClient {
    /// A client of the API at `address`; nothing is dialled until the first call.
    pub fn new(address: &ApiAddress) -> Result<Self, Error> {
        let channel = match address {
            ApiAddress::Tcp(addr) => Endpoint::from_shared(format!("http://{addr}"))
                .map_err(|_| Error::Address(addr.to_string()))?
                .connect_timeout(CALL_TIMEOUT)
                .connect_lazy(),
            ApiAddress::Unix(socket) => {
                let socket = socket.clone();
                // The URI is required by tonic but unused: the connector dials the socket.
                Endpoint::from_static("http://gobgpd.local").connect_with_connector_lazy(
                    tower::service_fn(move |_: Uri| {
                        let socket = socket.clone();
                        async move {
                            Ok::<_, std::io::Error>(TokioIo::new(
                                tokio::net::UnixStream::connect(socket).await?,
                            ))
                        }
                    }),
                )
            }
        };
        Ok(Self {
            inner: GobgpApiClient::new(channel),
        })
    }

    /// gobgpd's global configuration.
    pub async fn global(&self) -> Result<Global, Error> {
        let resp = self
            .inner
            .clone()
            .get_bgp(timed(GetBgpRequest {}))
            .await
            .map_err(call("get bgp global"))?;
        Ok(resp.into_inner().global.unwrap_or_default())
    }

    /// Starts BGP. Not idempotent in gobgpd: call only when [`Self::global`] shows asn 0.
    pub async fn start(&self, global: Global) -> Result<(), Error> {
        let req = StartBgpRequest {
            global: Some(global),
        };
        self.inner
            .clone()
            .start_bgp(timed(req))
            .await
            .map_err(call("start bgp"))?;
        Ok(())
    }

    /// Every configured peer with its session state.
    pub async fn peers(&self) -> Result<Vec<PeerStatus>, Error> {
        let req = ListPeerRequest {
            address: String::new(),
            enable_advertised: false,
        };
        let mut stream = self
            .inner
            .clone()
            .list_peer(timed(req))
            .await
            .map_err(call("list peers"))?
            .into_inner();
        let mut peers = Vec::new();
        while let Some(resp) = stream.message().await.map_err(call("list peers"))? {
            let Some(peer) = resp.peer else { continue };
            let conf = peer.conf.unwrap_or_default();
            let state = peer.state.unwrap_or_default();
            peers.push(PeerStatus {
                address: conf.neighbor_address,
                asn: conf.peer_asn,
                established: state.session_state == SessionState::Established as i32,
            });
        }
        Ok(peers)
    }

    /// Adds a peer; gobgpd refuses an address it already has.
    pub async fn add_peer(&self, peer: api::Peer) -> Result<(), Error> {
        let address = peer
            .conf
            .as_ref()
            .map(|c| c.neighbor_address.clone())
            .unwrap_or_default();
        let req = AddPeerRequest { peer: Some(peer) };
        self.inner
            .clone()
            .add_peer(timed(req))
            .await
            .map_err(call(format!("add peer {address}")))?;
        Ok(())
    }

    /// Removes a peer.
    pub async fn delete_peer(&self, address: &str) -> Result<(), Error> {
        let req = api::DeletePeerRequest {
            address: address.to_string(),
            interface: String::new(),
        };
        self.inner
            .clone()
            .delete_peer(timed(req))
            .await
            .map_err(call(format!("delete peer {address}")))?;
        Ok(())
    }

    /// The host routes this speaker originates, with their next hops.
    pub async fn local_paths(&self) -> Result<BTreeMap<IpAddr, Option<IpAddr>>, Error> {
        let mut found = BTreeMap::new();
        for afi in [family::Afi::Ip, family::Afi::Ip6] {
            let req = ListPathRequest {
                table_type: TableType::Global as i32,
                family: Some(Family {
                    afi: afi as i32,
                    safi: family::Safi::Unicast as i32,
                }),
                ..Default::default()
            };
            let mut stream = self
                .inner
                .clone()
                .list_path(timed(req))
                .await
                .map_err(call("list paths"))?
                .into_inner();
            while let Some(resp) = stream.message().await.map_err(call("list paths"))? {
                let paths = resp.destination.map(|d| d.paths).unwrap_or_default();
                for p in paths.iter().filter(|p| path::is_local(p)) {
                    if let Some((addr, next_hop)) = path::decode(p) {
                        found.insert(addr, next_hop);
                    }
                }
            }
        }
        Ok(found)
    }

    /// Announces `addr` with `next_hop`, replacing any path of ours to it.
    pub async fn announce(&self, addr: IpAddr, next_hop: IpAddr) -> Result<(), Error> {
        let req = AddPathRequest {
            table_type: TableType::Global as i32,
            vrf_id: String::new(),
            path: Some(path::announcement(addr, next_hop)),
        };
        self.inner
            .clone()
            .add_path(timed(req))
            .await
            .map_err(call(format!("announce {addr}")))?;
        Ok(())
    }

    /// Withdraws our path to `addr`, announced with `next_hop`. Always names
    /// the path: an empty DeletePath would delete every local path.
    pub async fn withdraw(&self, addr: IpAddr, next_hop: IpAddr) -> Result<(), Error> {
        let req = DeletePathRequest {
            table_type: TableType::Global as i32,
            family: Some(path::family_of(addr)),
            path: Some(path::withdrawal(addr, next_hop)),
            ..Default::default()
        };
        self.inner
            .clone()
            .delete_path(timed(req))
            .await
            .map_err(call(format!("withdraw {addr}")))?;
        Ok(())
    }

    /// Streams peer session changes: `(address, established)`.
    pub async fn watch_peers(&self) -> Result<tonic::Streaming<api::WatchEventResponse>, Error> {
        let req = api::WatchEventRequest {
            peer: Some(api::watch_event_request::Peer {}),
        };
        // No timeout: the stream lives as long as gobgpd does.
        Ok(self
            .inner
            .clone()
            .watch_event(req)
            .await
            .map_err(call("watch peers"))?
            .into_inner())
    }
}
