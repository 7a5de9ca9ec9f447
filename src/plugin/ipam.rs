//! IPAM as in docker-bgp-lb: the user names the one address of a network and
//! every address request on it returns that address.

use std::collections::HashMap;
use std::net::IpAddr;

use super::wire::{
    RequestAddressRequest, RequestAddressResponse, RequestPoolRequest, RequestPoolResponse,
};

/// The IPAM option that carries a network's IPv6 address.
pub const V6_SUBNET_OPTION: &str = "v6subnet";
/// The placeholder IPv4 pool of a network that announces only an IPv6 address.
/// Docker always asks for an IPv4 pool; this one is never announced or routed.
pub const V4_PLACEHOLDER: &str = "0.0.0.0/32";

/// Why an IPAM request is refused. The message is what `docker network create` prints.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamError {
    #[error("bgplb needs the address to announce: give --subnet A.B.C.D/32 (or --ipv6 --ipam-opt v6subnet=X::Y/128)")]
    NoSubnet,
    #[error("invalid subnet {0:?}: bgplb accepts one address, as A.B.C.D/32 for IPv4 or X::Y/128 for IPv6")]
    NotAnAddress(String),
    #[error("subnet {given} is not a single address: bgplb announces one address per network, so give it as {suggestion}")]
    NotSingle { given: String, suggestion: String },
    #[error("subnet {given} is {found}, but an {wanted} address was asked for")]
    WrongFamily {
        given: String,
        found: &'static str,
        wanted: &'static str,
    },
    #[error("address {0} cannot be announced: give a unicast address (not unspecified, loopback, multicast or broadcast)")]
    NotUnicast(IpAddr),
    #[error("sub-pools are not supported: bgplb networks have exactly one address")]
    SubPool,
    #[error("address {asked} is not the address of this network ({pool})")]
    OtherAddress { asked: String, pool: String },
}

/// Parses a network's address as the user wrote it: exactly one address, /32 or /128.
pub fn parse_single(subnet: &str) -> Result<IpAddr, IpamError> {
    let (addr, len) = subnet
        .split_once('/')
        .ok_or_else(|| IpamError::NotAnAddress(subnet.into()))?;
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| IpamError::NotAnAddress(subnet.into()))?;
    let len: u8 = len
        .parse()
        .map_err(|_| IpamError::NotAnAddress(subnet.into()))?;
    let full = if addr.is_ipv4() { 32 } else { 128 };
    if len > full {
        return Err(IpamError::NotAnAddress(subnet.into()));
    }
    if len != full {
        return Err(IpamError::NotSingle {
            given: subnet.into(),
            suggestion: format!("{addr}/{full}"),
        });
    }
    Ok(addr)
}

fn family_name(v6: bool) -> &'static str {
    if v6 {
        "IPv6"
    } else {
        "IPv4"
    }
}

/// `/IpamDriver.RequestPool`: the pool is the user's /32 (or /128), and its id is the same text.
pub fn request_pool(req: &RequestPoolRequest) -> Result<RequestPoolResponse, IpamError> {
    if !req.sub_pool.is_empty() {
        return Err(IpamError::SubPool);
    }
    let v6_option = req.options.get(V6_SUBNET_OPTION).filter(|s| !s.is_empty());
    let given = match (req.v6, req.pool.as_str(), v6_option) {
        (false, "", Some(_)) => return Ok(pool_response(V4_PLACEHOLDER.to_string())),
        (false, "", None) => return Err(IpamError::NoSubnet),
        (true, "", Some(v6)) => v6.clone(),
        (true, "", None) => return Err(IpamError::NoSubnet),
        (_, pool, _) => pool.to_string(),
    };
    let addr = parse_single(&given)?;
    if !crate::config::is_unicast(addr) {
        return Err(IpamError::NotUnicast(addr));
    }
    if addr.is_ipv6() != req.v6 {
        return Err(IpamError::WrongFamily {
            given,
            found: family_name(addr.is_ipv6()),
            wanted: family_name(req.v6),
        });
    }
    let full = if addr.is_ipv4() { 32 } else { 128 };
    Ok(pool_response(format!("{addr}/{full}")))
}

fn pool_response(pool: String) -> RequestPoolResponse {
    RequestPoolResponse {
        pool_id: pool.clone(),
        pool,
        data: HashMap::new(),
    }
}

/// `/IpamDriver.RequestAddress`: the pool's one address, for the gateway and
/// every container alike.
pub fn request_address(req: &RequestAddressRequest) -> Result<RequestAddressResponse, IpamError> {
    let addr = parse_single(&req.pool_id)?;
    if !req.address.is_empty() {
        let asked: IpAddr = req
            .address
            .parse()
            .map_err(|_| IpamError::NotAnAddress(req.address.clone()))?;
        if asked != addr {
            return Err(IpamError::OtherAddress {
                asked: req.address.clone(),
                pool: req.pool_id.clone(),
            });
        }
    }
    Ok(RequestAddressResponse {
        address: req.pool_id.clone(),
        data: HashMap::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(pool: &str, v6: bool, v6subnet: Option<&str>) -> RequestPoolRequest {
        RequestPoolRequest {
            pool: pool.into(),
            v6,
            options: v6subnet
                .map(|s| HashMap::from([(V6_SUBNET_OPTION.to_string(), s.to_string())]))
                .unwrap_or_default(),
            ..Default::default()
        }
    }

    #[test]
    fn slash_32_becomes_the_pool() {
        let r = request_pool(&pool("203.0.113.10/32", false, None)).unwrap();
        assert_eq!(r.pool, "203.0.113.10/32");
        assert_eq!(r.pool_id, "203.0.113.10/32");
    }

    #[test]
    fn slash_24_is_refused_with_what_is_accepted() {
        let err = request_pool(&pool("203.0.113.0/24", false, None))
            .unwrap_err()
            .to_string();
        assert!(err.contains("203.0.113.0/24"), "{err}");
        assert!(err.contains("/32"), "{err}");
    }

    #[test]
    fn garbage_is_refused() {
        for bad in [
            "hello",
            "203.0.113.10",
            "203.0.113.10/33",
            "300.1.1.1/32",
            "203.0.113.10/x",
        ] {
            let err = request_pool(&pool(bad, false, None)).unwrap_err();
            assert!(matches!(err, IpamError::NotAnAddress(_)), "{bad}: {err}");
        }
    }

    #[test]
    fn addresses_that_cannot_be_announced_are_refused() {
        for bad in [
            "0.0.0.0/32",
            "127.0.0.5/32",
            "224.0.0.5/32",
            "255.255.255.255/32",
        ] {
            let err = request_pool(&pool(bad, false, None)).unwrap_err();
            assert!(matches!(err, IpamError::NotUnicast(_)), "{bad}: {err}");
        }
        for bad in ["::/128", "::1/128", "ff02::1/128"] {
            let err = request_pool(&pool(bad, true, None)).unwrap_err();
            assert!(matches!(err, IpamError::NotUnicast(_)), "{bad}: {err}");
        }
    }

    #[test]
    fn missing_subnet_is_refused() {
        assert_eq!(
            request_pool(&pool("", false, None)).unwrap_err(),
            IpamError::NoSubnet
        );
    }

    #[test]
    fn ipv6_comes_from_the_v6subnet_option() {
        let v4 = request_pool(&pool("", false, Some("2001:db8::10/128"))).unwrap();
        assert_eq!(v4.pool, V4_PLACEHOLDER);
        let v6 = request_pool(&pool("", true, Some("2001:db8::10/128"))).unwrap();
        assert_eq!(v6.pool, "2001:db8::10/128");
        assert!(request_pool(&pool("", true, Some("2001:db8::/64"))).is_err());
    }

    #[test]
    fn family_mismatch_is_refused() {
        let err = request_pool(&pool("2001:db8::10/128", false, None)).unwrap_err();
        assert!(matches!(err, IpamError::WrongFamily { .. }), "{err}");
    }

    #[test]
    fn every_address_request_returns_the_pool_address() {
        let req = RequestAddressRequest {
            pool_id: "203.0.113.10/32".into(),
            ..Default::default()
        };
        assert_eq!(request_address(&req).unwrap().address, "203.0.113.10/32");
        let gw = RequestAddressRequest {
            pool_id: "203.0.113.10/32".into(),
            options: HashMap::from([(
                "RequestAddressType".into(),
                "com.docker.network.gateway".into(),
            )]),
            ..Default::default()
        };
        assert_eq!(request_address(&gw).unwrap().address, "203.0.113.10/32");
    }

    #[test]
    fn a_different_fixed_address_is_refused() {
        let req = RequestAddressRequest {
            pool_id: "203.0.113.10/32".into(),
            address: "203.0.113.11".into(),
            ..Default::default()
        };
        assert!(matches!(
            request_address(&req),
            Err(IpamError::OtherAddress { .. })
        ));
    }
}
