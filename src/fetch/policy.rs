//! Which IP addresses the server may connect to.

use std::net::{IpAddr, Ipv6Addr};

use ipnet::IpNet;

/// IPv4 blocks that are not globally reachable, as (network, prefix length).
/// Everything else is global.
const V4_DENY: &[([u8; 4], u32)] = &[
    // "this network" (RFC 791); 0.0.0.0 reaches the local host on Linux
    ([0, 0, 0, 0], 8),
    // private (RFC 1918)
    ([10, 0, 0, 0], 8),
    // shared address space / carrier-grade NAT (RFC 6598)
    ([100, 64, 0, 0], 10),
    // loopback
    ([127, 0, 0, 0], 8),
    // link-local, incl. cloud metadata 169.254.169.254
    ([169, 254, 0, 0], 16),
    // private (RFC 1918)
    ([172, 16, 0, 0], 12),
    // IETF protocol assignments (RFC 6890), refused as a whole
    ([192, 0, 0, 0], 24),
    // TEST-NET-1 documentation
    ([192, 0, 2, 0], 24),
    // deprecated 6to4 relay anycast (RFC 7526)
    ([192, 88, 99, 0], 24),
    // private (RFC 1918)
    ([192, 168, 0, 0], 16),
    // benchmarking (RFC 2544)
    ([198, 18, 0, 0], 15),
    // TEST-NET-2 documentation
    ([198, 51, 100, 0], 24),
    // TEST-NET-3 documentation
    ([203, 0, 113, 0], 24),
    // multicast
    ([224, 0, 0, 0], 4),
    // reserved for future use
    ([240, 0, 0, 0], 4),
    // limited broadcast (already inside 240/4; listed for clarity)
    ([255, 255, 255, 255], 32),
];

/// IPv6 global unicast (RFC 4291 §2.4, IANA's "Global Unicast" allocation):
/// the only IPv6 space an address may come from, as (network, prefix length).
///
/// Everything outside it is refused without a row of its own, among them:
/// `::` unspecified, `::1` loopback, `::ffff:0:0/96` IPv4-mapped, `::/96`
/// IPv4-compatible, `::ffff:0:0:0/96` IPv4-translated, `64:ff9b::/96` and
/// `64:ff9b:1::/48` NAT64, `100::/64` discard-only, `5f00::/16` SRv6 SIDs,
/// `fc00::/7` unique local, `fe80::/10` link-local, `fec0::/10` site-local,
/// `ff00::/8` multicast, and all unassigned space (`4000::/3` …).
const V6_GLOBAL_UNICAST: ([u16; 8], u32) = ([0x2000, 0, 0, 0, 0, 0, 0, 0], 3);

/// The blocks inside [`V6_GLOBAL_UNICAST`] that are not global, as (network as
/// eight 16-bit groups, prefix length). No row lies outside 2000::/3 or inside
/// another row, so every row decides some address (a test keeps it so).
const V6_DENY_IN_GLOBAL_UNICAST: &[([u16; 8], u32)] = &[
    // 2001::/23 IETF protocol assignments (RFC 2928), refused as a whole:
    // Teredo 2001::/32 (embeds an arbitrary IPv4), PCP/TURN/DNS-SD anycast
    // 2001:1::1-3, benchmarking 2001:2::/48, AMT 2001:3::/32, AS112
    // 2001:4:112::/48, ORCHID 2001:10::/28, ORCHIDv2 2001:20::/28, DETs
    // 2001:30::/28, and what IANA assigns there next
    ([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),
    // 2001:db8::/32 documentation (RFC 3849)
    ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32),
    // 2002::/16 6to4 (RFC 3056; embeds an arbitrary IPv4)
    ([0x2002, 0, 0, 0, 0, 0, 0, 0], 16),
    // 3fff::/20 documentation (RFC 9637)
    ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20),
];

fn in_v4_net(addr: u32, (net, len): ([u8; 4], u32)) -> bool {
    let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
    addr & mask == u32::from_be_bytes(net) & mask
}

fn in_v6_net(addr: u128, (net, len): ([u16; 8], u32)) -> bool {
    let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
    addr & mask == u128::from(Ipv6Addr::from(net)) & mask
}

/// The non-global rule, in one function: true only for globally routable
/// unicast addresses. Everything special-purpose, private, loopback,
/// link-local, multicast, documentation, translation or tunnelling is false.
///
/// IPv4: global unless in [`V4_DENY`]. IPv6: global only inside 2000::/3
/// ([`V6_GLOBAL_UNICAST`]) and outside [`V6_DENY_IN_GLOBAL_UNICAST`].
///
/// Deliberately stricter than std's (unstable) `is_global`: the whole
/// 192.0.0.0/24 and 2001::/23 blocks are refused, IPv4-mapped/compatible
/// addresses are refused outright (see [`is_allowed`] for the allow list),
/// and any IPv6 address outside 2000::/3 is refused.
pub fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let addr = u32::from(v4);
            !V4_DENY.iter().any(|&row| in_v4_net(addr, row))
        }
        IpAddr::V6(v6) => {
            let addr = u128::from(v6);
            in_v6_net(addr, V6_GLOBAL_UNICAST)
                && !V6_DENY_IN_GLOBAL_UNICAST
                    .iter()
                    .any(|&row| in_v6_net(addr, row))
        }
    }
}

/// Allowed = global, or inside an allow-listed network. For an IPv4-mapped
/// IPv6 address the allow list is also checked against the embedded IPv4, so
/// allowing 127.0.0.0/8 also allows `::ffff:127.0.0.1`.
pub(crate) fn is_allowed(ip: IpAddr, allow_nets: &[IpNet]) -> bool {
    if is_global(ip) || allow_nets.iter().any(|net| net.contains(&ip)) {
        return true;
    }
    if let IpAddr::V6(v6) = ip
        && let Some(v4) = v6.to_ipv4_mapped()
    {
        let v4 = IpAddr::V4(v4);
        return allow_nets.iter().any(|net| net.contains(&v4));
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &[(&str, bool)] = &[
        // global, must pass
        ("1.1.1.1", true),
        ("8.8.8.8", true),
        ("93.184.216.34", true),
        ("100.63.255.255", true),
        ("100.128.0.0", true),
        ("172.15.255.255", true),
        ("172.32.0.0", true),
        ("192.0.1.1", true),
        ("198.17.255.255", true),
        ("198.20.0.0", true),
        ("223.255.255.255", true),
        ("2606:4700::1111", true),
        ("2001:4860:4860::8888", true),
        ("2001:200::1", true),
        ("2400:cb00::1", true),
        // IPv4 refused
        ("0.0.0.0", false),
        ("0.1.2.3", false),
        ("10.0.0.5", false),
        ("10.255.255.255", false),
        ("100.64.0.1", false),
        ("100.127.255.254", false),
        ("127.0.0.1", false),
        ("127.255.255.254", false),
        ("169.254.169.254", false),
        ("172.16.0.1", false),
        ("172.31.255.255", false),
        ("192.0.0.8", false),
        ("192.0.0.170", false),
        ("192.0.2.1", false),
        ("192.88.99.1", false),
        ("192.168.1.1", false),
        ("198.18.0.1", false),
        ("198.19.255.255", false),
        ("198.51.100.7", false),
        ("203.0.113.9", false),
        ("224.0.0.1", false),
        ("239.255.255.250", false),
        ("240.0.0.1", false),
        ("255.255.255.255", false),
        // IPv6 refused
        ("::", false),
        ("::1", false),
        ("::ffff:127.0.0.1", false),
        ("::ffff:1.1.1.1", false),
        ("::127.0.0.1", false),
        ("::8.8.8.8", false),
        ("64:ff9b::7f00:1", false),
        ("64:ff9b::808:808", false),
        ("64:ff9b:1::1", false),
        ("100::1", false),
        ("2001::", false),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", false),
        ("2001:2::1", false),
        ("2001:10::1", false),
        ("2001:20::1", false),
        ("2001:db8::1", false),
        ("2002:7f00:1::", false),
        ("2002:808:808::1", false),
        ("3fff::1", false),
        ("3fff:fff::1", false),
        ("5f00::1", false),
        ("fc00::1", false),
        ("fd00::1", false),
        ("fe80::1", false),
        ("febf::1", false),
        ("fec0::1", false),
        ("ff02::1", false),
        ("ff0e::1", false),
        ("4000::1", false),
        ("1000::1", false),
    ];

    #[test]
    fn is_global_table() {
        assert!(TABLE.len() >= 40);
        for &(text, expected) in TABLE {
            let ip: IpAddr = text.parse().expect("table entry parses");
            assert_eq!(is_global(ip), expected, "is_global({text})");
        }
    }

    #[test]
    fn range_edges_just_outside_are_global() {
        // 3fff::/20 ends at 3fff:0fff:...; 3fff:1000:: is ordinary 2000::/3 space.
        assert!(is_global("3fff:1000::1".parse().expect("parses")));
        // 2001::/23 ends at 2001:1ff:...
        assert!(is_global("2001:200::".parse().expect("parses")));
    }

    #[test]
    fn allow_list_exempts_networks_and_embedded_v4() {
        let nets: Vec<IpNet> = vec!["127.0.0.0/8".parse().expect("net")];
        let allowed = |s: &str| is_allowed(s.parse().expect("ip"), &nets);
        assert!(allowed("127.0.0.1"));
        assert!(allowed("127.9.9.9"));
        assert!(allowed("::ffff:127.0.0.1"));
        assert!(allowed("8.8.8.8"));
        assert!(!allowed("10.0.0.1"));
        assert!(!allowed("::1"));
        assert!(!allowed("::ffff:10.0.0.1"));
        // mapped form of a global v4 is still refused without an allow entry
        assert!(!allowed("::ffff:8.8.8.8"));
        assert!(!is_allowed("127.0.0.1".parse().expect("ip"), &[]));
    }

    // ------------------------------------------------ one test per special range

    fn first_middle_last(cidr: &str) -> [IpAddr; 3] {
        let net: IpNet = cidr.parse().expect("range parses");
        let (first, last) = (net.network(), net.broadcast());
        let middle = match (first, last) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let (a, b) = (u32::from(a), u32::from(b));
                IpAddr::from(std::net::Ipv4Addr::from(a + (b - a) / 2))
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let (a, b) = (u128::from(a), u128::from(b));
                IpAddr::from(Ipv6Addr::from(a + (b - a) / 2))
            }
            _ => unreachable!("one family"),
        };
        [first, middle, last]
    }

    /// A test per range: its first, middle and last address are refused.
    macro_rules! refused_ranges {
        ($($name:ident: $cidr:literal,)*) => {$(
            #[test]
            fn $name() {
                for ip in first_middle_last($cidr) {
                    assert!(!is_global(ip), "{ip} in {} must be refused", $cidr);
                }
            }
        )*};
    }

    refused_ranges! {
        // IPv6, outside 2000::/3
        v6_unspecified: "::/128",
        v6_loopback: "::1/128",
        v6_ipv4_mapped: "::ffff:0:0/96",
        v6_ipv4_compatible: "::/96",
        v6_ipv4_translated: "::ffff:0:0:0/96",
        v6_nat64_well_known: "64:ff9b::/96",
        v6_nat64_local_use: "64:ff9b:1::/48",
        v6_discard_only: "100::/64",
        v6_dummy_prefix: "100:0:0:1::/64",
        v6_srv6_sids: "5f00::/16",
        v6_unique_local: "fc00::/7",
        v6_link_local: "fe80::/10",
        v6_site_local: "fec0::/10",
        v6_multicast: "ff00::/8",
        v6_below_global_unicast: "::/3",
        v6_above_global_unicast: "4000::/2",
        v6_top_unassigned: "8000::/1",
        // IPv6, inside 2000::/3
        v6_ietf_protocol_assignments: "2001::/23",
        v6_teredo: "2001::/32",
        v6_pcp_turn_dnssd_anycast: "2001:1::/125",
        v6_benchmarking: "2001:2::/48",
        v6_amt: "2001:3::/32",
        v6_as112: "2001:4:112::/48",
        v6_orchid: "2001:10::/28",
        v6_orchid_v2: "2001:20::/28",
        v6_drone_remote_id: "2001:30::/28",
        v6_documentation: "2001:db8::/32",
        v6_6to4: "2002::/16",
        v6_documentation_rfc9637: "3fff::/20",
        // IPv4
        v4_this_network: "0.0.0.0/8",
        v4_private_10: "10.0.0.0/8",
        v4_shared_cgnat: "100.64.0.0/10",
        v4_loopback: "127.0.0.0/8",
        v4_link_local: "169.254.0.0/16",
        v4_private_172: "172.16.0.0/12",
        v4_ietf_protocol_assignments: "192.0.0.0/24",
        v4_test_net_1: "192.0.2.0/24",
        v4_6to4_relay_anycast: "192.88.99.0/24",
        v4_private_192: "192.168.0.0/16",
        v4_benchmarking: "198.18.0.0/15",
        v4_test_net_2: "198.51.100.0/24",
        v4_test_net_3: "203.0.113.0/24",
        v4_multicast: "224.0.0.0/4",
        v4_reserved: "240.0.0.0/4",
        v4_limited_broadcast: "255.255.255.255/32",
    }

    fn v6(groups: [u16; 8]) -> u128 {
        u128::from(Ipv6Addr::from(groups))
    }

    fn v6_range((net, len): ([u16; 8], u32)) -> (u128, u128) {
        let first = v6(net);
        (first, first | (u128::MAX >> len))
    }

    #[test]
    fn every_v6_row_decides_some_address() {
        let (gu_first, gu_last) = v6_range(V6_GLOBAL_UNICAST);
        for (i, &row) in V6_DENY_IN_GLOBAL_UNICAST.iter().enumerate() {
            let (first, last) = v6_range(row);
            assert_eq!(first, v6(row.0), "row {i}: host bits set in the network");
            assert!(
                gu_first <= first && last <= gu_last,
                "row {i} lies outside 2000::/3, where nothing passes anyway"
            );
            for (j, &other) in V6_DENY_IN_GLOBAL_UNICAST.iter().enumerate() {
                let (o_first, o_last) = v6_range(other);
                assert!(
                    i == j || last < o_first || o_last < first,
                    "rows {i} and {j} overlap, so one of them is dead weight"
                );
            }
        }
    }

    #[test]
    fn v6_rows_end_exactly_where_they_say() {
        let global = |n: u128| is_global(IpAddr::V6(Ipv6Addr::from(n)));
        let (gu_first, gu_last) = v6_range(V6_GLOBAL_UNICAST);
        assert!(!global(gu_first - 1), "1fff:ffff:…");
        assert!(global(gu_first), "2000::");
        assert!(global(gu_last), "3fff:ffff:…");
        assert!(!global(gu_last + 1), "4000::");
        for &row in V6_DENY_IN_GLOBAL_UNICAST {
            let (first, last) = v6_range(row);
            assert!(global(first - 1), "just below {:?}", row);
            assert!(!global(first) && !global(last), "{:?}", row);
            assert!(global(last + 1), "just above {:?}", row);
        }
    }

    #[test]
    fn special_but_global_v6_stays_reachable() {
        // 2620:4f:8000::/48 (AS112 direct delegation) is special-purpose yet
        // globally reachable (IANA), and outside every deny row.
        for ip in first_middle_last("2620:4f:8000::/48") {
            assert!(is_global(ip), "{ip}");
        }
        // 6to4's neighbours and the space around the documentation blocks.
        for text in [
            "2001:200::",
            "2001:db7:ffff::1",
            "2001:db9::",
            "2003::1",
            "3ffe::1",
        ] {
            assert!(is_global(text.parse().expect("parses")), "{text}");
        }
    }
}
