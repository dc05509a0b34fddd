//! Untrusted URL strings and DNS answers → allowed or refused.
//!
//! Properties (allow list empty, as in production by default):
//! * `HeadImgUrl::parse` never panics; what it accepts passes `check_url` and
//!   is http(s), without userinfo, with a host, at most `MAX_URL_LEN` bytes.
//! * `is_global` is false for every address std calls loopback, private,
//!   link-local, unique-local, multicast, broadcast, unspecified or
//!   documentation, for IPv4-mapped addresses, and for 6to4/NAT64 forms of
//!   any non-global IPv4.
//! * End to end: a `Fetcher` whose resolver answers with fuzzer-chosen
//!   addresses never asks its dialer for a non-global address. The dialer
//!   records and fails; no socket is ever opened.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::future::BoxFuture;
use gewe_server::domain::HeadImgUrl;
use gewe_server::fetch::{Dial, FetchConfig, Fetcher, MAX_URL_LEN, Resolve, check_url, is_global};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use tokio::net::TcpStream;

#[derive(Debug, Arbitrary)]
struct Input {
    url: String,
    /// What the resolver answers for any name.
    answer: Vec<[u8; 16]>,
    /// The answer entries that are IPv4 (by index parity of these bytes).
    v4_mask: u16,
}

#[derive(Default)]
struct Network {
    answer: Mutex<Vec<IpAddr>>,
    dialled: Mutex<Vec<SocketAddr>>,
}

struct FakeResolver(Arc<Network>);
impl Resolve for FakeResolver {
    fn resolve(&self, _host: &str) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>> {
        let answer = self.0.answer.lock().unwrap().clone();
        Box::pin(async move { Ok(answer) })
    }
}

struct RecordingDialer(Arc<Network>);
impl Dial for RecordingDialer {
    fn dial(&self, addr: SocketAddr) -> BoxFuture<'static, std::io::Result<TcpStream>> {
        self.0.dialled.lock().unwrap().push(addr);
        Box::pin(async { Err(std::io::Error::other("fuzz dialer never opens a socket")) })
    }
}

struct World {
    runtime: tokio::runtime::Runtime,
    network: Arc<Network>,
    fetcher: Fetcher,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let network = Arc::new(Network::default());
        let config = FetchConfig {
            total_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(1),
            ..FetchConfig::default()
        };
        let fetcher = runtime.block_on(async {
            Fetcher::with_network(
                config,
                Arc::new(FakeResolver(network.clone())),
                Arc::new(RecordingDialer(network.clone())),
            )
        });
        World {
            runtime,
            network,
            fetcher,
        }
    })
}

fn check_ip(ip: IpAddr) {
    let global = is_global(ip);
    match ip {
        IpAddr::V4(v4) => {
            let special = v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_unspecified()
                || v4.is_documentation()
                || v4.octets()[0] == 0;
            assert!(!(special && global), "{v4} is special but counted global");
            // Every IPv6 spelling of a v4 address is refused outright, and the
            // translation forms of a non-global v4 are never global.
            assert!(!is_global(IpAddr::V6(v4.to_ipv6_mapped())), "{v4} mapped");
            assert!(
                !is_global(IpAddr::V6(v4.to_ipv6_compatible())),
                "{v4} compatible"
            );
            if !global {
                let [a, b, c, d] = v4.octets();
                let six_to_four = Ipv6Addr::new(
                    0x2002,
                    u16::from_be_bytes([a, b]),
                    u16::from_be_bytes([c, d]),
                    0,
                    0,
                    0,
                    0,
                    1,
                );
                let nat64 = Ipv6Addr::new(
                    0x64,
                    0xff9b,
                    0,
                    0,
                    0,
                    0,
                    u16::from_be_bytes([a, b]),
                    u16::from_be_bytes([c, d]),
                );
                assert!(!is_global(IpAddr::V6(six_to_four)), "6to4 of {v4}");
                assert!(!is_global(IpAddr::V6(nat64)), "NAT64 of {v4}");
            }
        }
        IpAddr::V6(v6) => {
            let special = v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || v6.is_unique_local()
                || v6.is_unicast_link_local()
                || v6.to_ipv4_mapped().is_some();
            assert!(!(special && global), "{v6} is special but counted global");
        }
    }
}

fuzz_target!(|input: Input| {
    // 1. Syntax, as the API applies it.
    let parsed = HeadImgUrl::parse(Some(input.url.clone()));
    if let Ok(head) = &parsed {
        let url = head.as_url();
        assert!(check_url(url).is_ok());
        assert!(matches!(url.scheme(), "http" | "https"), "{url}");
        assert!(
            url.username().is_empty() && url.password().is_none(),
            "{url}"
        );
        assert!(url.host_str().is_some_and(|h| !h.is_empty()), "{url}");
        assert!(url.as_str().len() <= MAX_URL_LEN);
        match url.host() {
            Some(url::Host::Ipv4(v4)) => check_ip(IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => check_ip(IpAddr::V6(v6)),
            _ => {}
        }
    }

    // 2. The classification on addresses the fuzzer picks.
    let answer: Vec<IpAddr> = input
        .answer
        .iter()
        .enumerate()
        .take(8)
        .map(|(i, bytes)| {
            if input.v4_mask & (1 << i) != 0 {
                IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
            } else {
                IpAddr::V6(Ipv6Addr::from(*bytes))
            }
        })
        .collect();
    for &ip in &answer {
        check_ip(ip);
    }

    // 3. End to end through the guarded connector: nothing non-global is dialled.
    let Ok(head) = parsed else { return };
    let world = world();
    *world.network.answer.lock().unwrap() = answer;
    world.network.dialled.lock().unwrap().clear();
    let result = world.runtime.block_on(world.fetcher.fetch(head.as_url()));
    assert!(
        result.is_err(),
        "nothing can be downloaded without a socket"
    );
    for addr in world.network.dialled.lock().unwrap().iter() {
        assert!(is_global(addr.ip()), "dialled a non-global address {addr}");
    }
});
