//! The part of Spin's manifest v2 (`spin.toml`) the local host understands.
//!
//! Unknown keys are ignored, as Spin ignores fields it does not use for a trigger; anything the
//! host would have to guess about is a start-up error instead.

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Checks a variable name as Spin does: lowercase letters, digits and `_`, starting with a
/// letter, ending with a letter or digit, and without `__`. Used for the manifest's own names
/// and, at run time, for the names a component asks the `variables` interface for.
pub fn check_name(name: &str) -> Result<()> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    let starts = name.chars().next().is_some_and(|c| c.is_ascii_lowercase());
    let ends = name
        .chars()
        .last()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    if !(ok_chars && starts && ends && !name.contains("__")) {
        bail!(
            "invalid variable name {name:?}: must be lowercase letters, digits and '_', start with \
             a letter, end with a letter or digit, and not contain '__'"
        );
    }
    Ok(())
}

/// A parsed `spin.toml`, with paths resolved against the manifest's directory.
#[derive(Debug, Deserialize)]
pub struct Manifest {
    pub spin_manifest_version: u32,
    #[serde(default)]
    pub variables: BTreeMap<String, AppVariable>,
    #[serde(default)]
    pub trigger: Triggers,
    #[serde(default)]
    pub component: BTreeMap<String, ComponentSpec>,
    #[serde(skip)]
    pub dir: PathBuf,
}

/// An application variable: exactly one of `required = true` or `default`.
#[derive(Debug, Deserialize, Clone)]
pub struct AppVariable {
    #[serde(default)]
    pub required: bool,
    pub default: Option<String>,
    #[serde(default)]
    pub secret: bool,
}

#[derive(Debug, Deserialize, Default)]
pub struct Triggers {
    #[serde(default)]
    pub http: Vec<HttpTrigger>,
}

#[derive(Debug, Deserialize)]
pub struct HttpTrigger {
    pub route: RouteSpec,
    pub component: String,
}

/// A trigger's `route`: a path pattern, or `{ private = true }` for a component with no public
/// route, reachable only through service chaining (`http://<id>.spin.internal`).
#[derive(Debug, Deserialize, Clone, PartialEq, Eq)]
#[serde(untagged)]
pub enum RouteSpec {
    Path(String),
    Private(PrivateEndpoint),
}

#[derive(Debug, Deserialize, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PrivateEndpoint {
    pub private: bool,
}

impl std::fmt::Display for RouteSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Path(path) => f.write_str(path),
            Self::Private(p) => write!(f, "{{ private = {} }}", p.private),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ComponentSpec {
    pub source: String,
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    pub key_value_stores: Vec<String>,
    #[serde(default)]
    pub sqlite_databases: Vec<String>,
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
}

impl Manifest {
    /// Reads and checks a manifest the way `spin up` would refuse a bad one.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading manifest {}", path.display()))?;
        let mut manifest: Manifest =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        if manifest.spin_manifest_version != 2 {
            bail!(
                "{}: only spin_manifest_version = 2 is supported",
                path.display()
            );
        }
        manifest.dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        for (name, var) in &manifest.variables {
            check_name(name).with_context(|| format!("application variable {name:?}"))?;
            if var.required == var.default.is_some() {
                bail!("variable {name:?} must have exactly one of `required = true` or `default`");
            }
        }
        for trigger in &manifest.trigger.http {
            if trigger.route == RouteSpec::Private(PrivateEndpoint { private: false }) {
                // Spin's message for the same manifest.
                bail!(
                    "route must be a string pattern or '{{ private = true }}': component '{}' has \
                     {{ private = false }}",
                    trigger.component
                );
            }
            if !manifest.component.contains_key(&trigger.component) {
                bail!(
                    "route {} names component {:?}, which has no [component.{}] table",
                    trigger.route,
                    trigger.component,
                    trigger.component
                );
            }
        }
        Ok(manifest)
    }

    /// The component's `.wasm`, relative to the manifest's directory.
    pub fn source_path(&self, spec: &ComponentSpec) -> PathBuf {
        self.dir.join(&spec.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn triggers(toml_text: &str) -> Result<Vec<HttpTrigger>, toml::de::Error> {
        toml::from_str::<Triggers>(toml_text).map(|t| t.http)
    }

    #[test]
    fn a_route_is_a_path_or_private() {
        let parsed = triggers(
            "[[http]]\nroute = \"/a/...\"\ncomponent = \"a\"\n\
             [[http]]\nroute = { private = true }\ncomponent = \"b\"\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed[0].route, RouteSpec::Path("/a/...".into()));
        assert_eq!(
            parsed[1].route,
            RouteSpec::Private(PrivateEndpoint { private: true })
        );
        assert!(triggers("[[http]]\nroute = { hidden = true }\ncomponent = \"b\"\n").is_err());
    }

    #[test]
    fn names_follow_spin_rules() {
        assert!(check_name("token_secret").is_ok());
        assert!(check_name("a1").is_ok());
        for bad in ["Bad-Name", "1abc", "abc_", "a__b", "", "_a", "aB"] {
            assert!(check_name(bad).is_err(), "{bad} should be refused");
        }
    }
}
