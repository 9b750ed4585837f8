//! Spin variables: application `[variables]`, component templates, and their providers.
//!
//! Resolution order follows Spin: `--variable k=v`, then `SPIN_VARIABLE_<NAME>` (the process
//! environment, including a `.env` file in the working directory), then the manifest default.

use anyhow::{Result, anyhow, bail};
use std::collections::{BTreeMap, HashMap};

use crate::manifest::{Manifest, check_name};

/// Application variables with their resolved values. Required variables without a value are a
/// start-up error, so a missing secret never turns into a silent default.
#[derive(Debug, Clone)]
pub struct AppVariables {
    values: HashMap<String, String>,
}

impl AppVariables {
    pub fn resolve(
        manifest: &Manifest,
        cli: &[(String, String)],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        let mut values = HashMap::new();
        let mut missing = Vec::new();
        for (name, var) in &manifest.variables {
            let from_cli = cli
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone());
            let from_env = || env(&format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase()));
            match from_cli.or_else(from_env).or_else(|| var.default.clone()) {
                Some(value) => {
                    values.insert(name.clone(), value);
                }
                None => missing.push(name.clone()),
            }
        }
        for (name, _) in cli {
            if !manifest.variables.contains_key(name) {
                bail!("--variable {name}: the manifest declares no such application variable");
            }
        }
        if !missing.is_empty() {
            bail!(
                "required application variable(s) with no value: {}. Set them with \
                 `--variable name=value` or the environment (SPIN_VARIABLE_<NAME>, or a .env file)",
                missing.join(", ")
            );
        }
        Ok(Self { values })
    }

    /// Expands `{{ name }}` templates against the application variables.
    pub fn expand(&self, template: &str) -> Result<String> {
        let mut out = String::new();
        let mut rest = template;
        while let Some(start) = rest.find("{{") {
            out.push_str(rest.get(..start).unwrap_or_default());
            let after = rest.get(start + 2..).unwrap_or_default();
            let end = after
                .find("}}")
                .ok_or_else(|| anyhow!("unterminated '{{{{' in template {template:?}"))?;
            let name = after.get(..end).unwrap_or_default().trim();
            let value = self
                .values
                .get(name)
                .ok_or_else(|| anyhow!("template {template:?} names unknown variable {name:?}"))?;
            out.push_str(value);
            rest = after.get(end + 2..).unwrap_or_default();
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Resolves a component's `[component.x.variables]` into final values.
    pub fn component_values(
        &self,
        templates: &BTreeMap<String, String>,
    ) -> Result<HashMap<String, String>> {
        templates
            .iter()
            .map(|(name, template)| {
                check_name(name)?;
                Ok((name.clone(), self.expand(template)?))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(vars: &str) -> Manifest {
        let text = format!("spin_manifest_version = 2\n[variables]\n{vars}");
        toml::from_str(&text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn cli_beats_env_beats_default() {
        let m =
            manifest("a = { default = \"d\" }\nb = { default = \"d\" }\nc = { default = \"d\" }");
        let env =
            |k: &str| (k == "SPIN_VARIABLE_A" || k == "SPIN_VARIABLE_B").then(|| "env".into());
        let vars = AppVariables::resolve(&m, &[("a".into(), "cli".into())], &env)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            vars.expand("{{a}}/{{ b }}/{{c}}").ok().as_deref(),
            Some("cli/env/d")
        );
    }

    #[test]
    fn a_required_variable_without_value_is_a_startup_error() {
        let m = manifest("token_secret = { required = true, secret = true }");
        let err = AppVariables::resolve(&m, &[], &|_| None)
            .err()
            .map(|e| e.to_string());
        assert!(err.unwrap_or_default().contains("token_secret"));
    }

    #[test]
    fn templates_naming_unknown_variables_fail() {
        let m = manifest("a = { default = \"x\" }");
        let vars = AppVariables::resolve(&m, &[], &|_| None).unwrap_or_else(|e| panic!("{e}"));
        assert!(vars.expand("{{ nope }}").is_err());
        assert!(vars.expand("{{ a").is_err());
    }
}
