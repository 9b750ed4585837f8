//! `allowed_outbound_hosts`: which `scheme://host:port` a component may call.
//!
//! Entries are `scheme://host[:port]` with no path; the port may be `*` or an end-exclusive
//! range `a..b`; without a port the scheme's default applies. Hosts compare literally, so
//! `http://127.0.0.1:*` does not cover `localhost`, as in Spin; `*.example.com` covers any name
//! ending in `.example.com` (so `http://*.spin.internal` allows chaining to every component).
//!
//! Also here: the service-chaining host `<component-id>.spin.internal`, and the runtime config's
//! `[outbound_networking] block_networks`, which refuses connections to blocked addresses.

use anyhow::{Result, bail};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Ports {
    Any,
    Range(u16, u16),
}

/// One parsed `allowed_outbound_hosts` entry.
#[derive(Debug, Clone)]
pub struct AllowedHost {
    scheme: String,
    host: String,
    ports: Ports,
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

impl AllowedHost {
    pub fn parse(entry: &str) -> Result<Self> {
        let Some((scheme, rest)) = entry.split_once("://") else {
            bail!(
                "allowed_outbound_hosts entry {entry:?} needs a scheme, like https://example.com"
            );
        };
        if rest.contains('/') && rest.trim_end_matches('/').contains('/') {
            bail!("allowed_outbound_hosts entry {entry:?} must not have a path");
        }
        let rest = rest.trim_end_matches('/');
        let (host, ports) = match rest.rsplit_once(':') {
            Some((host, "*")) => (host, Ports::Any),
            Some((host, port)) => match port.split_once("..") {
                Some((a, b)) => (host, Ports::Range(a.parse()?, b.parse()?)),
                None => {
                    let p: u16 = port.parse()?;
                    (host, Ports::Range(p, p.saturating_add(1)))
                }
            },
            None => {
                let Some(p) = default_port(scheme) else {
                    bail!(
                        "allowed_outbound_hosts entry {entry:?} needs a port for scheme {scheme}"
                    );
                };
                (rest, Ports::Range(p, p + 1))
            }
        };
        if host.is_empty() {
            bail!("allowed_outbound_hosts entry {entry:?} has no host");
        }
        Ok(Self {
            scheme: scheme.to_ascii_lowercase(),
            host: host.to_ascii_lowercase(),
            ports,
        })
    }

    fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        let scheme_ok = self.scheme == "*" || self.scheme == scheme;
        let host_ok = match self.host.strip_prefix('*') {
            Some("") => true,
            // `*.example.com` is stored as `*.example.com`: the suffix keeps its leading dot.
            Some(suffix) if suffix.starts_with('.') => host.ends_with(suffix),
            _ => self.host == host,
        };
        let port_ok = match self.ports {
            Ports::Any => true,
            Ports::Range(a, b) => (a..b).contains(&port),
        };
        scheme_ok && host_ok && port_ok
    }
}

/// A component's allow-list.
#[derive(Debug, Clone, Default)]
pub struct OutboundPolicy {
    allowed: Vec<AllowedHost>,
}

impl OutboundPolicy {
    pub fn new(allowed: Vec<AllowedHost>) -> Self {
        Self { allowed }
    }

    /// Whether a request to `uri` may leave the host.
    pub fn allows(&self, uri: &http::Uri) -> bool {
        let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
        let Some(host) = uri.host() else { return false };
        let host = host.to_ascii_lowercase();
        let Some(port) = uri.port_u16().or_else(|| default_port(&scheme)) else {
            return false;
        };
        self.allowed.iter().any(|a| a.allows(&scheme, &host, port))
    }
}

/// The component a request to `http://<component-id>.spin.internal/...` is chained to, as
/// Spin reads it: the host's first label, when the rest is exactly `spin.internal`.
pub fn service_chaining_target(uri: &http::Uri) -> Option<&str> {
    let host = uri.host()?.trim();
    let (first, rest) = host.split_once('.')?;
    (rest.eq_ignore_ascii_case("spin.internal")).then_some(first)
}

/// One `block_networks` CIDR, host bits dropped as Spin does (`8.8.8.8/16` is `8.8.0.0/16`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn parse(s: &str) -> Option<Self> {
        let (ip, prefix) = s.split_once('/')?;
        let addr: IpAddr = ip.parse().ok()?;
        let prefix: u8 = prefix.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Self { addr, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// `[outbound_networking] block_networks` from the runtime config: CIDRs, and `"private"` for
/// every address that is not globally routable (Spin's definition, from the `ip_network`
/// crate's `is_global`).
#[derive(Debug, Clone, Default)]
pub struct BlockedNetworks {
    networks: Vec<Cidr>,
    block_private: bool,
}

impl BlockedNetworks {
    /// Parses the entries as Spin does: each is `"private"` or a CIDR with its `/prefix`.
    pub fn parse(entries: &[String]) -> Result<Self> {
        let mut blocked = Self::default();
        for entry in entries {
            if entry == "private" {
                blocked.block_private = true;
            } else if let Some(cidr) = Cidr::parse(entry) {
                blocked.networks.push(cidr);
            } else {
                bail!(
                    "outbound_networking.block_networks: invalid value {entry:?}, expected an IP \
                     network in CIDR notation or the keyword 'private'"
                );
            }
        }
        Ok(blocked)
    }

    pub fn is_empty(&self) -> bool {
        !self.block_private && self.networks.is_empty()
    }

    /// Whether a connection to `ip` is refused. An IPv6 address that embeds an IPv4 one
    /// (`::ffff:a.b.c.d`, `::a.b.c.d`) is checked again as that IPv4 address, as in Spin.
    pub fn is_blocked(&self, ip: IpAddr) -> bool {
        if self.block_private && !is_global(ip) {
            return true;
        }
        if self.networks.iter().any(|n| n.contains(ip)) {
            return true;
        }
        match ip {
            IpAddr::V6(v6) => v6
                .to_ipv4()
                .is_some_and(|v4| self.is_blocked(IpAddr::V4(v4))),
            IpAddr::V4(_) => false,
        }
    }
}

/// Spin's "private" is everything `ip_network`'s `is_global` rejects for a single address.
fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_global_v4(v4),
        IpAddr::V6(v6) => is_global_v6(v6),
    }
}

fn is_global_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    // The only globally routable addresses of 192.0.0.0/24.
    if o == [192, 0, 0, 9] || o == [192, 0, 0, 10] {
        return true;
    }
    let local_identification = o[0] == 0; // 0.0.0.0/8
    let private =
        o[0] == 10 || (o[0] == 172 && (16..=31).contains(&o[1])) || (o[0] == 192 && o[1] == 168);
    let ietf_protocol_assignments = o[0] == 192 && o[1] == 0 && o[2] == 0; // 192.0.0.0/24
    let shared = o[0] == 100 && o[1] & 0xc0 == 64; // 100.64.0.0/10
    let loopback = o[0] == 127;
    let link_local = o[0] == 169 && o[1] == 254;
    let broadcast = o == [255, 255, 255, 255];
    let documentation = matches!(o, [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _]);
    let benchmarking = o[0] == 198 && o[1] & 0xfe == 18; // 198.18.0.0/15
    let reserved = o[0] & 0xf0 == 240 && !broadcast; // 240.0.0.0/4
    !(local_identification
        || private
        || ietf_protocol_assignments
        || shared
        || loopback
        || link_local
        || broadcast
        || documentation
        || benchmarking
        || reserved)
}

fn is_global_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if s[0] & 0xff00 == 0xff00 {
        // Multicast: only the global scope (ffXe::) is global.
        return s[0] & 0x000f == 14;
    }
    let loopback = ip == Ipv6Addr::LOCALHOST;
    let unspecified = ip == Ipv6Addr::UNSPECIFIED;
    let link_local = s[0] & 0xffc0 == 0xfe80; // fe80::/10
    let site_local = s[0] & 0xffc0 == 0xfec0; // fec0::/10
    let unique_local = s[0] & 0xfe00 == 0xfc00; // fc00::/7
    let documentation = s[0] == 0x2001 && s[1] == 0xdb8; // 2001:db8::/32
    !(loopback || unspecified || link_local || site_local || unique_local || documentation)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(entries: &[&str]) -> OutboundPolicy {
        OutboundPolicy::new(
            entries
                .iter()
                .map(|e| AllowedHost::parse(e).unwrap_or_else(|e| panic!("{e}")))
                .collect(),
        )
    }

    fn allows(p: &OutboundPolicy, uri: &str) -> bool {
        p.allows(&uri.parse().unwrap_or_else(|e| panic!("{e}")))
    }

    #[test]
    fn default_ports_apply_when_none_given() {
        let p = policy(&["https://api.systeme.io"]);
        assert!(allows(&p, "https://api.systeme.io/api/contacts"));
        assert!(!allows(&p, "https://api.systeme.io:8443/"));
        assert!(!allows(&p, "http://api.systeme.io/"));
    }

    #[test]
    fn wildcard_port_does_not_cover_another_host_name() {
        let p = policy(&["http://127.0.0.1:*"]);
        assert!(allows(&p, "http://127.0.0.1:9999/x"));
        assert!(!allows(&p, "http://localhost:9999/x"));
    }

    #[test]
    fn port_ranges_are_end_exclusive() {
        let p = policy(&["http://127.0.0.1:8000..8002"]);
        assert!(allows(&p, "http://127.0.0.1:8001/"));
        assert!(!allows(&p, "http://127.0.0.1:8002/"));
    }

    #[test]
    fn entries_with_paths_are_refused() {
        assert!(AllowedHost::parse("https://example.com/api").is_err());
        assert!(AllowedHost::parse("example.com").is_err());
    }

    #[test]
    fn a_wildcard_subdomain_covers_every_component_of_the_app() {
        let p = policy(&["http://*.spin.internal"]);
        assert!(allows(&p, "http://backend.spin.internal/x"));
        assert!(!allows(&p, "http://spin.internal/x"));
        assert!(!allows(&p, "https://backend.spin.internal/x"));
    }

    #[test]
    fn the_chaining_target_is_the_first_label_before_spin_internal() {
        let target = |u: &str| {
            service_chaining_target(&u.parse().unwrap_or_else(|e| panic!("{e}")))
                .map(str::to_string)
        };
        assert_eq!(
            target("http://backend.spin.internal/a?b"),
            Some("backend".into())
        );
        assert_eq!(
            target("http://backend.spin.internal:8080/"),
            Some("backend".into())
        );
        assert_eq!(target("http://a.b.spin.internal/"), None);
        assert_eq!(target("http://spin.internal/"), None);
        assert_eq!(target("http://example.com/"), None);
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn private_blocks_what_spin_blocks() {
        let blocked = BlockedNetworks::parse(&["private".into()]).unwrap_or_else(|e| panic!("{e}"));
        for private in [
            "0.0.0.0",
            "10.10.10.10",
            "100.64.1.1",
            "127.0.0.1",
            "169.254.0.1",
            "172.16.0.1",
            "192.0.0.1",
            "192.168.1.1",
            "198.18.0.1",
            "192.0.2.1",
            "240.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "::ffff:10.10.10.10",
            "fc00::f00d",
            "fe80::1",
            "2001:db8::1",
        ] {
            assert!(blocked.is_blocked(ip(private)), "{private}");
        }
        for public in [
            "123.123.123.123",
            "8.8.8.8",
            "192.0.0.9",
            "2600::beef",
            "172.32.0.1",
        ] {
            assert!(!blocked.is_blocked(ip(public)), "{public}");
        }
    }

    #[test]
    fn cidrs_drop_host_bits_and_cover_mapped_addresses() {
        let blocked = BlockedNetworks::parse(&["123.123.1.1/16".into(), "2001::/96".into()])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(blocked.is_blocked(ip("123.123.123.123")));
        assert!(blocked.is_blocked(ip("::ffff:123.123.123.123")));
        assert!(blocked.is_blocked(ip("2001::1000")));
        assert!(!blocked.is_blocked(ip("123.100.100.100")));
        assert!(!blocked.is_blocked(ip("2002::1000")));
        assert!(!blocked.is_blocked(ip("127.0.0.1")));
    }

    #[test]
    fn block_networks_entries_need_a_prefix_or_the_private_keyword() {
        for bad in ["1.2.3.4", "1.2.3.4/33", "public", "::1/129", "/8"] {
            assert!(BlockedNetworks::parse(&[bad.into()]).is_err(), "{bad}");
        }
        assert!(
            BlockedNetworks::parse(&["0.0.0.0/0".into()])
                .unwrap_or_else(|e| panic!("{e}"))
                .is_blocked(ip("8.8.8.8"))
        );
    }
}
