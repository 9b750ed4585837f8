//! Spin's HTTP router: exact routes, `/:name` segments and trailing `/...` wildcards.
//!
//! Precedence as observed in Spin: a route without a wildcard beats any wildcard; otherwise
//! routes compare segment by segment (literal > parameter > wildcard), so the most specific wins
//! whatever the manifest order; on a tie (a duplicate route) the later one wins.

use anyhow::{Result, bail};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

/// One `[[trigger.http]]` route, parsed.
#[derive(Debug, Clone)]
pub struct Route {
    raw: String,
    segments: Vec<Segment>,
    wildcard: bool,
    /// Index of the component this route serves.
    pub target: usize,
}

/// The outcome of routing one request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    pub target: usize,
    /// The route as written in the manifest (`spin-matched-route`, `spin-raw-component-route`).
    pub raw_route: String,
    /// The route without its trailing `/...` (`spin-component-route`).
    pub component_route: String,
    /// What the wildcard matched, with a leading `/` (`spin-path-info`); empty otherwise.
    pub path_info: String,
    /// `:name` captures in route order (`spin-path-match-<name>`).
    pub params: Vec<(String, String)>,
}

impl Route {
    pub fn parse(raw: &str, target: usize) -> Result<Self> {
        if !raw.starts_with('/') {
            bail!("route {raw:?} must start with '/'");
        }
        let (body, wildcard) = match raw.strip_suffix("/...") {
            Some(prefix) => (prefix, true),
            None if raw == "/..." => ("", true),
            None => (raw, false),
        };
        let mut segments = Vec::new();
        for part in body.split('/').skip(1) {
            if part == "..." {
                bail!("route {raw:?}: '...' is only allowed as the last segment");
            }
            segments.push(match part.strip_prefix(':') {
                Some("") => bail!("route {raw:?}: a ':' segment needs a name"),
                Some(name) => Segment::Param(name.to_string()),
                None => Segment::Literal(part.to_string()),
            });
        }
        // "/" is the exact route for the root path: one empty literal segment.
        if !wildcard && segments.is_empty() {
            segments.push(Segment::Literal(String::new()));
        }
        Ok(Self {
            raw: raw.to_string(),
            segments,
            wildcard,
            target,
        })
    }

    /// Ranks used to pick the most specific route; bigger is more specific.
    fn rank(&self) -> (bool, Vec<u8>) {
        let mut ranks: Vec<u8> = self
            .segments
            .iter()
            .map(|s| match s {
                Segment::Literal(_) => 3,
                Segment::Param(_) => 2,
            })
            .collect();
        if self.wildcard {
            ranks.push(1);
        }
        (!self.wildcard, ranks)
    }

    fn matches(&self, path: &str) -> Option<RouteMatch> {
        let mut parts = path.split('/').skip(1);
        let mut params = Vec::new();
        let mut consumed = 0usize;
        for segment in &self.segments {
            let part = parts.next()?;
            match segment {
                Segment::Literal(lit) if lit == part => {}
                Segment::Literal(_) => return None,
                Segment::Param(name) => params.push((name.clone(), part.to_string())),
            }
            consumed += 1 + part.len();
        }
        let rest = path.get(consumed..).unwrap_or_default();
        if !self.wildcard && !rest.is_empty() {
            return None;
        }
        // "/prefix/..." matches "/prefix" and "/prefix/anything", never "/prefixes".
        if self.wildcard && !rest.is_empty() && !rest.starts_with('/') {
            return None;
        }
        Some(RouteMatch {
            target: self.target,
            raw_route: self.raw.clone(),
            component_route: if self.wildcard {
                self.raw
                    .strip_suffix("/...")
                    .unwrap_or_default()
                    .to_string()
            } else {
                self.raw.clone()
            },
            path_info: if self.wildcard {
                rest.to_string()
            } else {
                String::new()
            },
            params,
        })
    }
}

/// All routes of an application.
#[derive(Debug, Default)]
pub struct Router {
    routes: Vec<Route>,
}

impl Router {
    pub fn new(routes: Vec<Route>) -> Self {
        Self { routes }
    }

    /// The most specific route matching `path`; on a tie the route declared last wins.
    pub fn route(&self, path: &str) -> Option<RouteMatch> {
        let mut best: Option<(&Route, RouteMatch)> = None;
        for route in &self.routes {
            if let Some(m) = route.matches(path) {
                let better = best.as_ref().is_none_or(|(b, _)| route.rank() >= b.rank());
                if better {
                    best = Some((route, m));
                }
            }
        }
        best.map(|(_, m)| m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(routes: &[&str]) -> Router {
        Router::new(
            routes
                .iter()
                .enumerate()
                .map(|(i, r)| Route::parse(r, i).unwrap_or_else(|e| panic!("{e}")))
                .collect(),
        )
    }

    fn target(r: &Router, path: &str) -> Option<usize> {
        r.route(path).map(|m| m.target)
    }

    #[test]
    fn exact_beats_wildcard_in_any_order() {
        let r = router(&["/v1/...", "/v1/health"]);
        assert_eq!(target(&r, "/v1/health"), Some(1));
        let r = router(&["/v1/health", "/v1/..."]);
        assert_eq!(target(&r, "/v1/health"), Some(0));
        assert_eq!(target(&r, "/v1/other"), Some(1));
    }

    #[test]
    fn longest_wildcard_prefix_wins() {
        let r = router(&["/a/b/...", "/...", "/a/..."]);
        assert_eq!(target(&r, "/a/b/c"), Some(0));
        assert_eq!(target(&r, "/a/c"), Some(2));
        assert_eq!(target(&r, "/z"), Some(1));
    }

    #[test]
    fn a_parameter_segment_beats_a_trailing_wildcard() {
        let r = router(&["/items/:id", "/items/..."]);
        assert_eq!(target(&r, "/items/abc"), Some(0));
        assert_eq!(target(&r, "/items/abc/def"), Some(1));
    }

    #[test]
    fn wildcard_matches_its_own_prefix_but_not_a_longer_word() {
        let r = router(&["/v1/dashboard/..."]);
        let m = r
            .route("/v1/dashboard")
            .unwrap_or_else(|| panic!("no match"));
        assert_eq!(m.path_info, "");
        assert_eq!(target(&r, "/v1/dashboards"), None);
    }

    #[test]
    fn duplicate_route_last_wins() {
        let r = router(&["/dup", "/dup"]);
        assert_eq!(target(&r, "/dup"), Some(1));
    }

    #[test]
    fn headers_data_matches_spin_for_a_param_wildcard_route() {
        let r = router(&["/items/:item_id/..."]);
        let m = r
            .route("/items/abc/rest/of/path")
            .unwrap_or_else(|| panic!("no match"));
        assert_eq!(m.component_route, "/items/:item_id");
        assert_eq!(m.raw_route, "/items/:item_id/...");
        assert_eq!(m.path_info, "/rest/of/path");
        assert_eq!(m.params, vec![("item_id".to_string(), "abc".to_string())]);
    }

    #[test]
    fn root_wildcard_has_empty_component_route() {
        let r = router(&["/..."]);
        let m = r.route("/headers").unwrap_or_else(|| panic!("no match"));
        assert_eq!(m.component_route, "");
        assert_eq!(m.path_info, "/headers");
    }

    #[test]
    fn exact_route_does_not_match_a_subpath() {
        let r = router(&["/v1/health"]);
        assert_eq!(target(&r, "/v1/health/x"), None);
        assert_eq!(target(&r, "/v1"), None);
    }
}
