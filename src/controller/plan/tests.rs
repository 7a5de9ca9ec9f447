use super::*;
use proptest::prelude::*;

fn ip(last: u8) -> IpAddr {
    IpAddr::from([203, 0, 113, last])
}

fn hop() -> IpAddr {
    IpAddr::from([198, 51, 100, 1])
}

fn desired_one(announce: bool) -> Desired {
    Desired {
        bridges: ["bgplb-a".to_string()].into(),
        keep_links: ["vbl1".to_string()].into(),
        ports: [("vbl1".to_string(), "bgplb-a".to_string())].into(),
        routes: [(ip(10), "bgplb-a".to_string())].into(),
        announce: if announce {
            [(ip(10), hop())].into()
        } else {
            BTreeMap::new()
        },
    }
}

fn actual_matching(d: &Desired) -> Actual {
    Actual {
        links: d.bridges.iter().chain(&d.keep_links).cloned().collect(),
        routes: d.routes.iter().map(|(a, b)| (*a, b.clone())).collect(),
        ports: d
            .ports
            .iter()
            .map(|(l, b)| (l.clone(), Some(b.clone())))
            .collect(),
        paths: Some(d.announce.iter().map(|(a, n)| (*a, Some(*n))).collect()),
    }
}

#[test]
fn table_of_cases() {
    let healthy = desired_one(true);
    let unhealthy = desired_one(false);
    let cases: Vec<(&str, Desired, Actual, Vec<Action>)> = vec![
        (
            "in sync does nothing",
            healthy.clone(),
            actual_matching(&healthy),
            vec![],
        ),
        (
            "new healthy container gets route then announcement",
            healthy.clone(),
            Actual {
                links: healthy.bridges.clone(),
                routes: BTreeSet::new(),
                ports: BTreeMap::new(),
                paths: Some(BTreeMap::new()),
            },
            vec![
                Action::AddRoute {
                    dst: ip(10),
                    dev: "bgplb-a".into(),
                },
                Action::Announce {
                    dst: ip(10),
                    next_hop: hop(),
                },
            ],
        ),
        (
            "unhealthy container is withdrawn but keeps its route",
            unhealthy.clone(),
            actual_matching(&healthy),
            vec![Action::Withdraw(ip(10))],
        ),
        (
            "gone container is withdrawn before its route is deleted",
            Desired {
                bridges: healthy.bridges.clone(),
                ..Default::default()
            },
            actual_matching(&healthy),
            vec![
                Action::Withdraw(ip(10)),
                Action::DeleteRoute {
                    dst: ip(10),
                    dev: "bgplb-a".into(),
                },
                Action::DeleteLink("vbl1".into()),
            ],
        ),
        (
            "wrong next hop is announced again",
            healthy.clone(),
            Actual {
                paths: Some([(ip(10), Some(IpAddr::from([198, 51, 100, 9])))].into()),
                ..actual_matching(&healthy)
            },
            vec![Action::Announce {
                dst: ip(10),
                next_hop: hop(),
            }],
        ),
        (
            "route on the wrong device moves",
            healthy.clone(),
            Actual {
                routes: [(ip(10), "bgplb-old".to_string())].into(),
                links: ["bgplb-a", "bgplb-old", "vbl1"].map(String::from).into(),
                ..actual_matching(&healthy)
            },
            vec![
                Action::DeleteRoute {
                    dst: ip(10),
                    dev: "bgplb-old".into(),
                },
                Action::AddRoute {
                    dst: ip(10),
                    dev: "bgplb-a".into(),
                },
                Action::DeleteLink("bgplb-old".into()),
            ],
        ),
        (
            "missing bridge is created before its route",
            healthy.clone(),
            Actual {
                links: ["vbl1".to_string()].into(),
                routes: BTreeSet::new(),
                ports: [("vbl1".to_string(), None)].into(),
                paths: Some(BTreeMap::new()),
            },
            vec![
                Action::EnsureBridge("bgplb-a".into()),
                Action::AttachPort {
                    link: "vbl1".into(),
                    bridge: "bgplb-a".into(),
                },
                Action::AddRoute {
                    dst: ip(10),
                    dev: "bgplb-a".into(),
                },
                Action::Announce {
                    dst: ip(10),
                    next_hop: hop(),
                },
            ],
        ),
        (
            "unknown speaker state plans no bgp action",
            healthy.clone(),
            Actual {
                paths: None,
                ..actual_matching(&healthy)
            },
            vec![],
        ),
        (
            "kept link that does not exist is not created",
            healthy.clone(),
            Actual {
                links: healthy.bridges.clone(),
                ..actual_matching(&healthy)
            },
            vec![],
        ),
    ];
    for (name, desired, actual, want) in cases {
        assert_eq!(plan(&desired, &actual), want, "case: {name}");
    }
}

/// The effect of the actions on a model of the kernel and the speaker.
fn apply(actions: &[Action], mut actual: Actual) -> Actual {
    for action in actions {
        match action {
            Action::EnsureBridge(b) => {
                actual.links.insert(b.clone());
            }
            Action::AttachPort { link, bridge } => {
                actual.ports.insert(link.clone(), Some(bridge.clone()));
            }
            Action::DeleteLink(l) => {
                actual.links.remove(l);
                actual.ports.remove(l);
                actual.routes.retain(|(_, dev)| dev != l);
            }
            Action::DeleteRoute { dst, dev } => {
                actual.routes.remove(&(*dst, dev.clone()));
            }
            Action::AddRoute { dst, dev } => {
                // Like `ip route replace`: one route per destination.
                actual.routes.retain(|(d, _)| d != dst);
                actual.routes.insert((*dst, dev.clone()));
            }
            Action::Announce { dst, next_hop } => {
                actual
                    .paths
                    .get_or_insert_with(BTreeMap::new)
                    .insert(*dst, Some(*next_hop));
            }
            Action::Withdraw(dst) => {
                if let Some(p) = actual.paths.as_mut() {
                    p.remove(dst);
                }
            }
        }
    }
    actual
}

fn names(prefix: &'static str) -> impl Strategy<Value = String> {
    (0u8..4).prop_map(move |i| format!("{prefix}{i}"))
}

fn arb_desired() -> impl Strategy<Value = Desired> {
    let bridges = proptest::collection::btree_set(names("bgplb-"), 0..4);
    let keep = proptest::collection::btree_set(names("vbl"), 0..4);
    (
        bridges,
        keep,
        proptest::collection::btree_map(0u8..6, (any::<bool>(), 1u8..3), 0..6),
    )
        .prop_map(|(bridges, keep_links, vips)| {
            let devs: Vec<String> = bridges.iter().cloned().collect();
            let mut d = Desired {
                bridges,
                keep_links,
                ..Default::default()
            };
            if devs.is_empty() {
                return d;
            }
            for (i, link) in d.keep_links.iter().enumerate() {
                d.ports.insert(link.clone(), devs[i % devs.len()].clone());
            }
            for (i, (healthy, nh)) in vips {
                d.routes
                    .insert(ip(i), devs[i as usize % devs.len()].clone());
                if healthy {
                    d.announce.insert(ip(i), IpAddr::from([198, 51, 100, nh]));
                }
            }
            d
        })
}

fn arb_actual() -> impl Strategy<Value = Actual> {
    let links = proptest::collection::btree_set(prop_oneof![names("bgplb-"), names("vbl")], 0..6);
    let routes = proptest::collection::btree_set((0u8..6, names("bgplb-")), 0..6);
    let paths = proptest::option::of(proptest::collection::btree_map(
        0u8..6,
        proptest::option::of(1u8..3),
        0..6,
    ));
    let ports =
        proptest::collection::btree_map(names("vbl"), proptest::option::of(names("bgplb-")), 0..4);
    (links, routes, ports, paths).prop_map(|(links, routes, ports, paths)| Actual {
        links,
        routes: routes.into_iter().map(|(i, dev)| (ip(i), dev)).collect(),
        ports,
        paths: paths.map(|p| {
            p.into_iter()
                .map(|(i, nh)| (ip(i), nh.map(|n| IpAddr::from([198, 51, 100, n]))))
                .collect()
        }),
    })
}

proptest! {
    #[test]
    fn applying_the_plan_reaches_the_desired_state(desired in arb_desired(), actual in arb_actual()) {
        let after = apply(&plan(&desired, &actual), actual.clone());

        let kept: BTreeSet<String> = desired.keep_links.intersection(&actual.links).cloned().collect();
        let want_links: BTreeSet<String> = desired.bridges.union(&kept).cloned().collect();
        prop_assert_eq!(&after.links, &want_links);
        let want_routes: BTreeSet<(IpAddr, String)> =
            desired.routes.iter().map(|(a, d)| (*a, d.clone())).collect();
        prop_assert_eq!(&after.routes, &want_routes);
        for (link, bridge) in desired.ports.iter().filter(|(l, _)| actual.ports.contains_key(*l)) {
            prop_assert_eq!(after.ports.get(link), Some(&Some(bridge.clone())));
        }
        if actual.paths.is_some() {
            let want_paths: BTreeMap<IpAddr, Option<IpAddr>> =
                desired.announce.iter().map(|(a, n)| (*a, Some(*n))).collect();
            prop_assert_eq!(after.paths.clone(), Some(want_paths));
        }
    }

    #[test]
    fn planning_again_after_applying_does_nothing(desired in arb_desired(), actual in arb_actual()) {
        let after = apply(&plan(&desired, &actual), actual);
        prop_assert_eq!(plan(&desired, &after), vec![]);
    }

    #[test]
    fn withdrawals_come_before_route_deletions(desired in arb_desired(), actual in arb_actual()) {
        let actions = plan(&desired, &actual);
        let last_withdraw = actions.iter().rposition(|a| matches!(a, Action::Withdraw(_)));
        let first_delete = actions.iter().position(|a| matches!(a, Action::DeleteRoute { .. }));
        if let (Some(w), Some(d)) = (last_withdraw, first_delete) {
            prop_assert!(w < d);
        }
    }
}
