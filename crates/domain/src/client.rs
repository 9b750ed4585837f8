//! Which client a request counts against for per-client rate limits.
//!
//! The peer address is the client unless the peer is a proxy the operator trusts
//! (`trusted_proxies`): then the client is the right-most address of the one forwarding header
//! those proxies write (`forwarded_header`: `X-Forwarded-For`, or `Forwarded` of RFC 7239) that
//! is not itself a trusted proxy. Addresses to its left were written by the client and prove
//! nothing, and so does the other header: a proxy that writes one passes the other through as
//! the client sent it. An IPv6 client is counted by its /64 network, the smallest
//! block a single subscriber is usually given, so one subscriber cannot rotate through its
//! addresses for a fresh allowance each.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::tenant::FieldError;

/// The proxies whose forwarding headers are believed. Empty: none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Comma- or space-separated CIDRs (`10.0.0.0/8`) or single addresses.
    pub fn parse(list: &str) -> Result<Self, FieldError> {
        list.split([',', ' ', '\n', '\t'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|item| {
                item.parse::<IpNet>()
                    .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| {
                        FieldError::new(
                            "trusted_proxies",
                            format!("{item:?} is not a CIDR like 10.0.0.0/8 or an address"),
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }
}

/// Which forwarding header the trusted proxies write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For` (ingress-nginx, Traefik, most load balancers).
    #[default]
    XForwardedFor,
    /// `Forwarded` (RFC 7239).
    Forwarded,
}

impl ForwardedHeader {
    /// `x-forwarded-for` or `forwarded` (any case).
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "x-forwarded-for" => Ok(Self::XForwardedFor),
            "forwarded" => Ok(Self::Forwarded),
            _ => Err(FieldError::new(
                "forwarded_header",
                "must be x-forwarded-for or forwarded",
            )),
        }
    }

    /// The header's name, lowercase.
    pub fn name(self) -> &'static str {
        match self {
            Self::XForwardedFor => "x-forwarded-for",
            Self::Forwarded => "forwarded",
        }
    }
}

/// The forwarding headers of a request, as sent (every line of each); only the one the trusted
/// proxies write is given, the other is left empty.
#[derive(Debug, Clone, Copy, Default)]
pub struct Forwarding<'a> {
    pub forwarded: &'a [&'a str],
    pub x_forwarded_for: &'a [&'a str],
}

/// The address a request counts against: see the module docs.
pub fn client_address(peer: IpAddr, headers: Forwarding<'_>, trusted: &TrustedProxies) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted.contains(peer) {
        return peer;
    }
    let hops: Vec<Option<IpAddr>> = if headers.forwarded.is_empty() {
        headers
            .x_forwarded_for
            .iter()
            .flat_map(|line| line.split(','))
            .map(parse_node)
            .collect()
    } else {
        headers
            .forwarded
            .iter()
            .flat_map(|line| line.split(','))
            .map(forwarded_for)
            .collect()
    };
    // From the nearest hop outwards: the first one no trusted proxy stands for is the client.
    // A hop that names no address (`unknown`, an obfuscated name) ends the walk at the last
    // proxy that reported it.
    let mut client = peer;
    for hop in hops.into_iter().rev() {
        match hop.map(|ip| ip.to_canonical()) {
            Some(ip) if trusted.contains(ip) => client = ip,
            Some(ip) => return ip,
            None => return client,
        }
    }
    client
}

/// The `for=` node of one `Forwarded` element.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element
        .split(';')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| key.trim().eq_ignore_ascii_case("for"))
        .and_then(|(_, value)| parse_node(value))
}

/// An address as forwarding headers write it: bare, quoted, `[v6]`, with or without a port.
fn parse_node(raw: &str) -> Option<IpAddr> {
    let node = raw.trim().trim_matches('"');
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    node.rsplit_once(':')?
        .0
        .parse::<std::net::Ipv4Addr>()
        .ok()
        .map(IpAddr::V4)
}

/// What a client's requests are counted under: an IPv4 address as it is, an IPv6 address by
/// its /64 network.
pub fn rate_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match ipnet::Ipv6Net::new(v6, 64) {
            Ok(net) => net.trunc().to_string(),
            Err(_) => v6.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn proxies(s: &str) -> TrustedProxies {
        TrustedProxies::parse(s).unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client_whatever_it_forwards() {
        let xff = ["198.51.100.9"];
        let headers = Forwarding {
            forwarded: &[],
            x_forwarded_for: &xff,
        };
        assert_eq!(
            client_address(ip("10.0.0.5"), headers, &TrustedProxies::default()),
            ip("10.0.0.5")
        );
        assert_eq!(
            client_address(ip("203.0.113.1"), headers, &proxies("10.0.0.0/8")),
            ip("203.0.113.1")
        );
    }

    #[test]
    fn the_right_most_untrusted_forwarded_address_is_the_client() {
        let xff = ["6.6.6.6, 198.51.100.9", "10.1.2.3"];
        let headers = Forwarding {
            forwarded: &[],
            x_forwarded_for: &xff,
        };
        // The visitor forged 6.6.6.6; the ingress saw 198.51.100.9; an inner proxy is trusted.
        assert_eq!(
            client_address(ip("10.0.0.5"), headers, &proxies("10.0.0.0/8")),
            ip("198.51.100.9")
        );
    }

    #[test]
    fn forwarded_is_parsed_in_all_its_forms() {
        let fwd = [r#"for=6.6.6.6, for="[2001:db8:cafe::17]:4711";proto=https"#];
        let headers = Forwarding {
            forwarded: &fwd,
            x_forwarded_for: &[],
        };
        assert_eq!(
            client_address(ip("10.0.0.5"), headers, &proxies("10.0.0.5")),
            ip("2001:db8:cafe::17")
        );
        assert_eq!(parse_node("192.0.2.43:47011"), Some(ip("192.0.2.43")));
        assert_eq!(parse_node("unknown"), None);
    }

    #[test]
    fn only_proxies_or_an_unknown_hop_leave_the_nearest_reporting_proxy() {
        let xff = ["10.9.9.9"];
        let headers = Forwarding {
            forwarded: &[],
            x_forwarded_for: &xff,
        };
        assert_eq!(
            client_address(ip("10.0.0.5"), headers, &proxies("10.0.0.0/8")),
            ip("10.9.9.9")
        );
        let fwd = ["for=unknown, for=10.9.9.9"];
        let headers = Forwarding {
            forwarded: &fwd,
            x_forwarded_for: &[],
        };
        assert_eq!(
            client_address(ip("10.0.0.5"), headers, &proxies("10.0.0.0/8")),
            ip("10.9.9.9")
        );
    }

    #[test]
    fn ipv6_clients_count_per_slash_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(rate_key(ip("2001:db8:1:2:aaaa::1")), "2001:db8:1:2::/64");
        assert_eq!(
            rate_key(ip("2001:db8:1:2:ffff::9")),
            rate_key(ip("2001:db8:1:2::7"))
        );
        assert_ne!(
            rate_key(ip("2001:db8:1:3::1")),
            rate_key(ip("2001:db8:1:2::1"))
        );
        assert_eq!(rate_key(ip("::ffff:198.51.100.9")), "198.51.100.9");
        assert_eq!(rate_key(ip("198.51.100.9")), "198.51.100.9");
    }

    #[test]
    fn the_forwarded_header_setting_names_one_header() {
        assert_eq!(
            ForwardedHeader::parse("").unwrap(),
            ForwardedHeader::XForwardedFor
        );
        assert_eq!(
            ForwardedHeader::parse("Forwarded").unwrap(),
            ForwardedHeader::Forwarded
        );
        assert!(ForwardedHeader::parse("x-real-ip").is_err());
    }

    #[test]
    fn a_bad_proxy_list_names_the_entry() {
        let err = TrustedProxies::parse("10.0.0.0/8, nope").unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
        assert!(TrustedProxies::parse("").unwrap().is_empty());
    }
}
