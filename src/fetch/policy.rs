//! Which IP addresses the server may connect to.

use std::net::IpAddr;

use ipnet::IpNet;

/// The non-global rule, in one function: true only for globally routable
/// unicast addresses. Everything special-purpose, private, loopback,
/// link-local, multicast, documentation, translation or tunnelling is false.
///
/// Deliberately stricter than std's (unstable) `is_global`: the whole
/// 192.0.0.0/24 and 2001::/23 blocks are refused, IPv4-mapped/compatible
/// addresses are refused outright (see [`is_allowed`] for the allow list),
/// and any IPv6 address outside 2000::/3 is refused.
pub fn is_global(ip: IpAddr) -> bool {
    // (network, prefix length)
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
    // (network as eight 16-bit groups, prefix length)
    const V6_DENY: &[([u16; 8], u32)] = &[
        // :: unspecified
        ([0, 0, 0, 0, 0, 0, 0, 0], 128),
        // ::1 loopback
        ([0, 0, 0, 0, 0, 0, 0, 1], 128),
        // ::ffff:0:0/96 IPv4-mapped (refused outright)
        ([0, 0, 0, 0, 0, 0xffff, 0, 0], 96),
        // ::/96 IPv4-compatible, deprecated (refused outright)
        ([0, 0, 0, 0, 0, 0, 0, 0], 96),
        // 64:ff9b::/96 NAT64 well-known prefix
        ([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96),
        // 64:ff9b:1::/48 NAT64 local use
        ([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48),
        // 100::/64 discard-only
        ([0x100, 0, 0, 0, 0, 0, 0, 0], 64),
        // 2001::/32 Teredo (embeds an arbitrary IPv4)
        ([0x2001, 0, 0, 0, 0, 0, 0, 0], 32),
        // 2001:10::/28 ORCHID, deprecated
        ([0x2001, 0x10, 0, 0, 0, 0, 0, 0], 28),
        // 2001::/23 rest of IETF protocol assignments (benchmarking, AMT, AS112, ORCHIDv2)
        ([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),
        // 2001:db8::/32 documentation
        ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32),
        // 2002::/16 6to4 (embeds an arbitrary IPv4)
        ([0x2002, 0, 0, 0, 0, 0, 0, 0], 16),
        // 3fff::/20 documentation (RFC 9637)
        ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20),
        // 5f00::/16 SRv6 SIDs
        ([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16),
        // fc00::/7 unique local
        ([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
        // fe80::/10 link-local
        ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),
        // fec0::/10 site-local, deprecated
        ([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),
        // ff00::/8 multicast
        ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8),
    ];

    match ip {
        IpAddr::V4(v4) => {
            let addr = u32::from(v4);
            !V4_DENY.iter().any(|&(net, len)| {
                let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
                addr & mask == u32::from_be_bytes(net) & mask
            })
        }
        IpAddr::V6(v6) => {
            let addr = u128::from(v6);
            // Only 2000::/3 is allocated as global unicast; everything else
            // (all the ::/8 specials, 100::/8, 5f00::/16, fc00::/7, fe80::/10,
            // ff00::/8, unassigned space) is not a picture server.
            if addr >> 125 != 0b001 {
                return false;
            }
            !V6_DENY.iter().any(|&(net, len)| {
                let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
                addr & mask == u128::from(std::net::Ipv6Addr::from(net)) & mask
            })
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
}
