//! Encoding of announced addresses as GoBGP paths, and decoding of the RIB.

use std::net::IpAddr;

use prost::Message;
use prost_types::Any;

use super::api::{
    family, AsPathAttribute, Family, IpAddressPrefix, MpReachNlriAttribute, NextHopAttribute,
    OriginAttribute, Path,
};

const TYPE_PREFIX: &str = "type.googleapis.com/apipb.";
const ORIGIN_IGP: u32 = 0;

/// The GoBGP family of an address: IPv4 or IPv6 unicast.
pub fn family_of(addr: IpAddr) -> Family {
    let afi = if addr.is_ipv4() {
        family::Afi::Ip
    } else {
        family::Afi::Ip6
    };
    Family {
        afi: afi as i32,
        safi: family::Safi::Unicast as i32,
    }
}

fn pack<M: Message>(name: &str, msg: &M) -> Any {
    Any {
        type_url: format!("{TYPE_PREFIX}{name}"),
        value: msg.encode_to_vec(),
    }
}

fn nlri(addr: IpAddr) -> Any {
    let prefix_len = if addr.is_ipv4() { 32 } else { 128 };
    pack(
        "IPAddressPrefix",
        &IpAddressPrefix {
            prefix_len,
            prefix: addr.to_string(),
        },
    )
}

/// A host route to `addr` with origin IGP and `next_hop`. IPv6 paths carry the
/// next hop in MP_REACH_NLRI, which must repeat the NLRI (PROTOCOLS 3.4).
pub fn announcement(addr: IpAddr, next_hop: IpAddr) -> Path {
    let next_hop_attr = if addr.is_ipv4() {
        pack(
            "NextHopAttribute",
            &NextHopAttribute {
                next_hop: next_hop.to_string(),
            },
        )
    } else {
        let reach = MpReachNlriAttribute {
            family: Some(family_of(addr)),
            next_hops: vec![next_hop.to_string()],
            nlris: vec![nlri(addr)],
        };
        pack("MpReachNLRIAttribute", &reach)
    };
    Path {
        nlri: Some(nlri(addr)),
        pattrs: vec![
            pack("OriginAttribute", &OriginAttribute { origin: ORIGIN_IGP }),
            pack("AsPathAttribute", &AsPathAttribute { segments: vec![] }),
            next_hop_attr,
        ],
        family: Some(family_of(addr)),
        ..Default::default()
    }
}

/// The path that identifies `addr` for a withdrawal. gobgpd keys it by family
/// and prefix, but 3.10 still refuses a DeletePath without a next hop
/// ("nexthop not found"), so the announced attributes go along.
pub fn withdrawal(addr: IpAddr, next_hop: IpAddr) -> Path {
    Path {
        is_withdraw: true,
        ..announcement(addr, next_hop)
    }
}

/// Whether a RIB path was originated by this speaker rather than learned from a
/// peer. gobgpd 3.10 prints a nil neighbor IP for its own paths.
pub fn is_local(path: &Path) -> bool {
    matches!(path.neighbor_ip.as_str(), "" | "<nil>" | "0.0.0.0" | "::")
}

/// The host address and next hop of a path; `None` for anything but a host route.
pub fn decode(path: &Path) -> Option<(IpAddr, Option<IpAddr>)> {
    let nlri = path.nlri.as_ref()?;
    if !nlri.type_url.ends_with(".IPAddressPrefix") {
        return None;
    }
    let prefix = IpAddressPrefix::decode(nlri.value.as_slice()).ok()?;
    let addr: IpAddr = prefix.prefix.parse().ok()?;
    let full = if addr.is_ipv4() { 32 } else { 128 };
    if prefix.prefix_len != full {
        return None;
    }
    Some((addr, path.pattrs.iter().find_map(next_hop)))
}

fn next_hop(attr: &Any) -> Option<IpAddr> {
    if attr.type_url.ends_with(".NextHopAttribute") {
        return NextHopAttribute::decode(attr.value.as_slice())
            .ok()?
            .next_hop
            .parse()
            .ok();
    }
    if attr.type_url.ends_with(".MpReachNLRIAttribute") {
        let reach = MpReachNlriAttribute::decode(attr.value.as_slice()).ok()?;
        return reach.next_hops.first()?.parse().ok();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_announcement_round_trips() {
        let vip: IpAddr = "203.0.113.10".parse().unwrap();
        let nh: IpAddr = "198.51.100.1".parse().unwrap();
        let path = announcement(vip, nh);
        assert_eq!(path.family, Some(family_of(vip)));
        assert_eq!(decode(&path), Some((vip, Some(nh))));
        let urls: Vec<&str> = path.pattrs.iter().map(|a| a.type_url.as_str()).collect();
        assert!(urls.contains(&"type.googleapis.com/apipb.OriginAttribute"));
        assert!(urls.contains(&"type.googleapis.com/apipb.NextHopAttribute"));
    }

    #[test]
    fn ipv6_announcement_carries_next_hop_in_mp_reach_with_the_nlri() {
        let vip: IpAddr = "2001:db8::10".parse().unwrap();
        let nh: IpAddr = "2001:db8:1::1".parse().unwrap();
        let path = announcement(vip, nh);
        let reach = path
            .pattrs
            .iter()
            .find(|a| a.type_url.ends_with("MpReachNLRIAttribute"))
            .unwrap();
        let reach = MpReachNlriAttribute::decode(reach.value.as_slice()).unwrap();
        assert_eq!(reach.nlris.len(), 1);
        assert_eq!(decode(&path), Some((vip, Some(nh))));
    }

    #[test]
    fn withdrawal_carries_the_next_hop_gobgpd_asks_for() {
        let vip: IpAddr = "203.0.113.10".parse().unwrap();
        let nh: IpAddr = "198.51.100.1".parse().unwrap();
        let path = withdrawal(vip, nh);
        assert!(path.is_withdraw);
        assert_eq!(decode(&path), Some((vip, Some(nh))));
    }

    #[test]
    fn paths_learned_from_peers_are_not_local() {
        let mut path = announcement(
            "203.0.113.10".parse().unwrap(),
            "198.51.100.1".parse().unwrap(),
        );
        path.neighbor_ip = "<nil>".into();
        assert!(is_local(&path));
        path.neighbor_ip = "198.51.100.2".into();
        assert!(!is_local(&path));
    }

    #[test]
    fn wider_prefixes_are_not_host_routes() {
        let mut path = announcement(
            "203.0.113.0".parse().unwrap(),
            "198.51.100.1".parse().unwrap(),
        );
        path.nlri = Some(pack(
            "IPAddressPrefix",
            &IpAddressPrefix {
                prefix_len: 24,
                prefix: "203.0.113.0".into(),
            },
        ));
        assert_eq!(decode(&path), None);
    }
}
