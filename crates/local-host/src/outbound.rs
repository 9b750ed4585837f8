//! `allowed_outbound_hosts`: which `scheme://host:port` a component may call.
//!
//! Entries are `scheme://host[:port]` with no path; the port may be `*` or an end-exclusive
//! range `a..b`; without a port the scheme's default applies. Hosts compare literally, so
//! `http://127.0.0.1:*` does not cover `localhost`, as in Spin.

use anyhow::{Result, bail};

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
        let host_ok = self.host == "*" || self.host == host;
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
}
