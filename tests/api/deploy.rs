//! `deploy/spinkube/` agrees with the app, checked without a cluster.
//!
//! Every overlay is rendered with `kubectl kustomize` (it renders offline) from a copy of the
//! tree in which each committed `*.example` file is turned into the file the operator creates,
//! with fresh random values. Then: the SpinApp's executor exists in its namespace; every
//! variable `spin.toml` requires is bound to a key that exists; no rendered Secret holds a value
//! the repository contains; the Ingress routes every public path and no admin path; only the
//! ingress controller, the sync job and the operators' namespace reach the pods; the runtime
//! config uses Spin 4's keys; the sync CronJob is bounded and reads its token from a file.
//! Where `kubectl` is missing these tests say so and pass (`./scripts/test` installs it).
//!
//! On the local host, black-box: the app given the example secrets never reports ready, and the
//! CronJob's own script fails loudly when the admin token has less than 7 days left.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use api_tests::{
    AppSpec, assert_problem, json_body, mint_admin, now, spawn_app, spawn_spec, workspace_root,
};
use base64::Engine as _;
use sha2::Digest as _;
use yaml_rust2::{Yaml, YamlLoader};

fn deploy_dir() -> PathBuf {
    workspace_root().join("deploy/spinkube")
}

/// The overlays: every directory under `deploy/spinkube/overlays`.
fn overlays() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(deploy_dir().join("overlays"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(
        names.iter().any(|n| n == "dev") && names.iter().any(|n| n == "production"),
        "overlays dev and production: {names:?}"
    );
    names
}

/// `kubectl`, or `None` with a message saying why the test does not render.
fn kubectl() -> Option<PathBuf> {
    let bin = std::env::var_os("KUBECTL")
        .filter(|b| !b.is_empty())
        .map_or_else(|| PathBuf::from("kubectl"), PathBuf::from);
    let works = Command::new(&bin)
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if works {
        Some(bin)
    } else {
        eprintln!(
            "SKIPPED: kubectl is not installed (or KUBECTL names no working binary), so the \
             overlays in deploy/spinkube are not rendered or checked; ./scripts/test installs \
             Debian's kubectl where it can"
        );
        None
    }
}

/// A value no file in the repository holds: 64 hex characters from a hash of the time, the
/// process and a counter.
fn fresh_value() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = format!(
        "{:?}-{}-{}",
        std::time::SystemTime::now(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    hex(&sha2::Sha256::digest(seed.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `key=value` lines of an env file (comments and blank lines skipped).
fn env_entries(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect()
}

/// Every committed `*.example` file under `deploy/spinkube`.
fn example_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "example") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&deploy_dir(), &mut out);
    out.sort();
    assert!(!out.is_empty(), "no *.example files in deploy/spinkube");
    out
}

/// The values the repository's example files publish: every non-empty value of the `*.env`
/// examples, and every `replace-with-…` string of the other examples (the runtime config).
fn published_example_values() -> BTreeMap<String, (String, PathBuf)> {
    let mut values = BTreeMap::new();
    for path in example_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        if path.to_string_lossy().ends_with(".env.example") {
            for (key, value) in env_entries(&text) {
                if !value.is_empty() {
                    values.insert(value, (key, path.clone()));
                }
            }
        } else {
            for placeholder in placeholders(&text) {
                values.insert(placeholder.clone(), ("placeholder".into(), path.clone()));
            }
        }
    }
    values
}

/// The `replace-with-…` words of a text.
fn placeholders(text: &str) -> Vec<String> {
    text.match_indices("replace-with-")
        .map(|(at, _)| {
            text[at..]
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
                .next()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// A copy of `deploy/spinkube` in which every `X.example` has become `X` as the operator would
/// make it, with fresh values: env files key by key (an empty value stays empty), other files
/// with each `replace-with-…` placeholder replaced.
fn prepared_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&deploy_dir(), &dir.path().join("spinkube"));
    for example in example_files() {
        let relative = example.strip_prefix(deploy_dir()).unwrap();
        let target = dir
            .path()
            .join("spinkube")
            .join(relative)
            .with_extension("");
        let text = std::fs::read_to_string(&example).unwrap();
        let made = if example.to_string_lossy().ends_with(".env.example") {
            env_entries(&text)
                .into_iter()
                .map(|(key, value)| {
                    let value = if value.is_empty() {
                        String::new()
                    } else if key == "signup_secret" {
                        format!(
                            "whsec_{}",
                            base64::engine::general_purpose::STANDARD.encode(fresh_value())
                        )
                    } else {
                        fresh_value()
                    };
                    format!("{key}={value}\n")
                })
                .collect::<String>()
        } else {
            placeholders(&text)
                .into_iter()
                .fold(text.clone(), |t, p| t.replace(&p, &fresh_value()))
        };
        std::fs::write(target, made).unwrap();
    }
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// The rendered documents of each overlay, or `None` (with a message) without kubectl.
fn rendered() -> Option<Vec<(String, Vec<Yaml>)>> {
    let kubectl = kubectl()?;
    let tree = prepared_tree();
    Some(
        overlays()
            .into_iter()
            .map(|overlay| {
                let dir = tree.path().join("spinkube/overlays").join(&overlay);
                let out = Command::new(&kubectl)
                    .arg("kustomize")
                    .arg(&dir)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "kubectl kustomize overlays/{overlay} failed:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let text = String::from_utf8(out.stdout).unwrap();
                let docs: Vec<Yaml> = YamlLoader::load_from_str(&text)
                    .unwrap()
                    .into_iter()
                    .filter(|d| !d.is_null())
                    .collect();
                assert!(!docs.is_empty(), "overlays/{overlay} renders nothing");
                (overlay, docs)
            })
            .collect(),
    )
}

fn of_kind<'a>(docs: &'a [Yaml], kind: &str) -> Vec<&'a Yaml> {
    docs.iter()
        .filter(|d| d["kind"].as_str() == Some(kind))
        .collect()
}

fn named<'a>(docs: &'a [Yaml], kind: &str, name: &str) -> Option<&'a Yaml> {
    of_kind(docs, kind)
        .into_iter()
        .find(|d| d["metadata"]["name"].as_str() == Some(name))
}

fn str_of<'a>(yaml: &'a Yaml, what: &str) -> &'a str {
    yaml.as_str()
        .unwrap_or_else(|| panic!("{what} is missing or not a string"))
}

fn int_of(yaml: &Yaml, what: &str) -> i64 {
    yaml.as_i64()
        .unwrap_or_else(|| panic!("{what} is missing or not a number"))
}

/// A rendered Secret's entries, decoded (`data` is base64, `stringData` plain).
fn secret_entries(secret: &Yaml) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(data) = secret["data"].as_hash() {
        for (k, v) in data {
            // A long value may be written over several lines.
            let b64: String = v
                .as_str()
                .unwrap_or_default()
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap();
            out.insert(
                k.as_str().unwrap().to_string(),
                String::from_utf8(bytes).unwrap(),
            );
        }
    }
    if let Some(data) = secret["stringData"].as_hash() {
        for (k, v) in data {
            out.insert(
                k.as_str().unwrap().to_string(),
                v.as_str().unwrap_or_default().to_string(),
            );
        }
    }
    out
}

fn configmap_entries(map: &Yaml) -> BTreeMap<String, String> {
    map["data"]
        .as_hash()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            (
                k.as_str().unwrap().to_string(),
                v.as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn the_spinapp(docs: &[Yaml]) -> &Yaml {
    let apps = of_kind(docs, "SpinApp");
    assert_eq!(apps.len(), 1, "one SpinApp");
    assert_eq!(
        apps[0]["apiVersion"].as_str(),
        Some("core.spinkube.dev/v1alpha1")
    );
    apps[0]
}

fn read_manifest() -> toml::Table {
    toml::from_str(&std::fs::read_to_string(workspace_root().join("spin.toml")).unwrap()).unwrap()
}

/// spin.toml's application variables: (name, required).
fn manifest_variables() -> Vec<(String, bool)> {
    read_manifest()["variables"]
        .as_table()
        .unwrap()
        .iter()
        .map(|(name, spec)| {
            let required = spec.get("required").and_then(toml::Value::as_bool) == Some(true);
            (name.clone(), required)
        })
        .collect()
}

#[test]
fn every_overlay_renders_with_the_executor_in_the_apps_namespace() {
    let Some(rendered) = rendered() else { return };
    for (overlay, docs) in &rendered {
        let app = the_spinapp(docs);
        let namespace = str_of(&app["metadata"]["namespace"], "SpinApp namespace");
        let executor = str_of(&app["spec"]["executor"], "spec.executor");
        let executors: Vec<&Yaml> = of_kind(docs, "SpinAppExecutor")
            .into_iter()
            .filter(|e| {
                e["metadata"]["name"].as_str() == Some(executor)
                    && e["metadata"]["namespace"].as_str() == Some(namespace)
            })
            .collect();
        assert_eq!(
            executors.len(),
            1,
            "overlays/{overlay}: the operator's webhook looks executor {executor:?} up in the \
             SpinApp's namespace {namespace:?}"
        );
        let executor = executors[0];
        assert_eq!(executor["spec"]["createDeployment"].as_bool(), Some(true));
        assert!(
            executor["spec"]["deploymentConfig"]["runtimeClassName"]
                .as_str()
                .is_some_and(|c| !c.is_empty()),
            "overlays/{overlay}: the executor names the shim's RuntimeClass"
        );
        assert!(
            named(docs, "Namespace", namespace).is_some(),
            "overlays/{overlay}: the Namespace {namespace:?} is part of the overlay"
        );
        for doc in docs {
            let kind = doc["kind"].as_str().unwrap_or_default();
            if kind == "Namespace" {
                continue;
            }
            assert_eq!(
                doc["metadata"]["namespace"].as_str(),
                Some(namespace),
                "overlays/{overlay}: {kind} {:?} is in the app's namespace",
                doc["metadata"]["name"]
            );
        }
        // Replicas belong to the autoscaler; it keeps two at least, and a disruption budget
        // keeps one serving through drains.
        let spec = &app["spec"];
        assert_eq!(spec["enableAutoscaling"].as_bool(), Some(true));
        assert!(
            spec["replicas"].is_badvalue(),
            "overlays/{overlay}: `replicas` must stay unset with enableAutoscaling"
        );
        let name = str_of(&app["metadata"]["name"], "SpinApp name");
        let hpa = named(docs, "HorizontalPodAutoscaler", name)
            .unwrap_or_else(|| panic!("overlays/{overlay}: an HPA named {name}"));
        assert_eq!(
            hpa["spec"]["scaleTargetRef"]["kind"].as_str(),
            Some("Deployment")
        );
        assert_eq!(hpa["spec"]["scaleTargetRef"]["name"].as_str(), Some(name));
        let min = int_of(&hpa["spec"]["minReplicas"], "minReplicas");
        assert!(min >= 2, "overlays/{overlay}: at least two replicas");
        assert!(int_of(&hpa["spec"]["maxReplicas"], "maxReplicas") >= min);
        let pdbs = of_kind(docs, "PodDisruptionBudget");
        assert!(
            pdbs.iter().any(
                |p| p["spec"]["selector"]["matchLabels"]["core.spinkube.dev/app-name"].as_str()
                    == Some(name)
            ),
            "overlays/{overlay}: a PodDisruptionBudget selects the app's pods"
        );
        // Pull secrets, resources, and a readiness timeout that fits the storage retry budget
        // (about 2 s) on SQLite, the one store, plus the round trips to a remote libSQL.
        assert!(
            spec["imagePullSecrets"]
                .as_vec()
                .is_some_and(|s| !s.is_empty()),
            "overlays/{overlay}: imagePullSecrets"
        );
        for field in ["requests", "limits"] {
            for resource in ["cpu", "memory"] {
                assert!(
                    spec["resources"][field][resource].as_str().is_some(),
                    "overlays/{overlay}: resources.{field}.{resource}"
                );
            }
        }
        let readiness = &spec["checks"]["readiness"];
        assert_eq!(readiness["httpGet"]["path"].as_str(), Some("/v1/health"));
        assert!(
            int_of(&readiness["timeoutSeconds"], "readiness.timeoutSeconds") >= 6,
            "overlays/{overlay}: readiness timeout under a retry budget and the round trips"
        );
        assert!(
            int_of(&readiness["failureThreshold"], "readiness.failureThreshold") >= 2,
            "overlays/{overlay}: one slow probe must not take a pod out"
        );
        assert_eq!(
            spec["checks"]["liveness"]["httpGet"]["path"].as_str(),
            Some("/.well-known/spin/health"),
            "a backend outage must not restart pods"
        );
    }
}

#[test]
fn the_spinapp_binds_every_required_variable_to_a_key_that_exists() {
    let Some(rendered) = rendered() else { return };
    let declared = manifest_variables();
    let declared_names: BTreeSet<&str> = declared.iter().map(|(n, _)| n.as_str()).collect();
    for (overlay, docs) in &rendered {
        let app = the_spinapp(docs);
        let mut bound = BTreeMap::new();
        for var in app["spec"]["variables"].as_vec().expect("spec.variables") {
            let name = str_of(&var["name"], "variables[].name");
            assert!(
                declared_names.contains(name),
                "overlays/{overlay}: the SpinApp binds {name:?}, which spin.toml does not declare"
            );
            let secret_ref = &var["valueFrom"]["secretKeyRef"];
            let map_ref = &var["valueFrom"]["configMapKeyRef"];
            let value = if !secret_ref.is_badvalue() {
                let secret = str_of(&secret_ref["name"], "secretKeyRef.name");
                let key = str_of(&secret_ref["key"], "secretKeyRef.key");
                let found = named(docs, "Secret", secret).unwrap_or_else(|| {
                    panic!("overlays/{overlay}: {name:?} reads Secret {secret:?}, not rendered")
                });
                secret_entries(found).remove(key).unwrap_or_else(|| {
                    panic!("overlays/{overlay}: Secret {secret:?} has no key {key:?} for {name}")
                })
            } else if !map_ref.is_badvalue() {
                let map = str_of(&map_ref["name"], "configMapKeyRef.name");
                let key = str_of(&map_ref["key"], "configMapKeyRef.key");
                let found = named(docs, "ConfigMap", map).unwrap_or_else(|| {
                    panic!("overlays/{overlay}: {name:?} reads ConfigMap {map:?}, not rendered")
                });
                configmap_entries(found).remove(key).unwrap_or_else(|| {
                    panic!("overlays/{overlay}: ConfigMap {map:?} has no key {key:?} for {name}")
                })
            } else {
                str_of(&var["value"], "variables[].value").to_string()
            };
            assert!(
                bound.insert(name.to_string(), value).is_none(),
                "overlays/{overlay}: {name:?} bound twice"
            );
        }
        for (name, required) in &declared {
            if *required {
                assert!(
                    bound.contains_key(name),
                    "overlays/{overlay}: spin.toml requires {name:?}; the SpinApp does not bind it"
                );
            }
        }
        // Behind the ingress every visitor arrives from the controller: the deploy names it.
        if declared_names.contains("trusted_proxies") {
            let proxies = bound.get("trusted_proxies").unwrap_or_else(|| {
                panic!("overlays/{overlay}: trusted_proxies (the ingress controller) is not bound")
            });
            assert!(
                !proxies.is_empty()
                    && proxies
                        .split(',')
                        .all(|cidr| cidr.trim().contains('/') || cidr.trim().contains('.')),
                "overlays/{overlay}: trusted_proxies {proxies:?} names the controller's addresses"
            );
        }
        // Secret variables come from Secrets, never from a value in a manifest or ConfigMap.
        let manifest = read_manifest();
        for var in app["spec"]["variables"].as_vec().unwrap() {
            let name = str_of(&var["name"], "variables[].name");
            let secret = manifest["variables"][name]
                .get("secret")
                .and_then(toml::Value::as_bool)
                == Some(true);
            if secret {
                assert!(
                    !var["valueFrom"]["secretKeyRef"].is_badvalue(),
                    "overlays/{overlay}: the secret {name:?} must come from a Secret"
                );
            }
        }
    }
}

#[test]
fn no_rendered_secret_holds_a_value_from_the_repository() {
    // Nothing committed is a Secret: every Secret is generated from the operator's files.
    for path in committed_yaml() {
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in YamlLoader::load_from_str(&text).unwrap() {
            assert_ne!(
                doc["kind"].as_str(),
                Some("Secret"),
                "{} commits a Secret",
                path.display()
            );
        }
    }
    let Some(rendered) = rendered() else { return };
    let mut known: BTreeSet<String> = published_example_values().into_keys().collect();
    known.extend(
        domain::secret::PUBLISHED_EXAMPLE_SECRETS
            .iter()
            .map(|s| (*s).to_string()),
    );
    known.extend(
        [
            api_tests::TOKEN_SECRET,
            api_tests::ADMIN_TOKEN_SECRET,
            api_tests::SIGNUP_SECRET,
            api_tests::SYSTEME_WEBHOOK_SECRET,
            api_tests::SYSTEME_API_KEY,
        ]
        .map(String::from),
    );
    for (overlay, docs) in &rendered {
        let secrets = of_kind(docs, "Secret");
        assert!(
            secrets.len() >= 3,
            "overlays/{overlay}: the generated Secrets"
        );
        for secret in secrets {
            let name = str_of(&secret["metadata"]["name"], "Secret name");
            for (key, value) in secret_entries(secret) {
                let mut values = vec![value.clone()];
                if key.ends_with(".toml") {
                    values.extend(toml_strings(&value));
                }
                for v in values {
                    assert!(
                        !known.contains(v.trim()) && !v.contains("replace-with-"),
                        "overlays/{overlay}: Secret {name} key {key} holds a value from the \
                         repository"
                    );
                }
            }
        }
    }
}

/// Every string in a TOML document, and the password of any URL among them.
fn toml_strings(text: &str) -> Vec<String> {
    fn walk(value: &toml::Value, out: &mut Vec<String>) {
        match value {
            toml::Value::String(s) => {
                out.push(s.clone());
                if let Some(password) = url_password(s) {
                    out.push(password);
                }
            }
            toml::Value::Table(t) => t.values().for_each(|v| walk(v, out)),
            toml::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&toml::Value::Table(toml::from_str(text).unwrap()), &mut out);
    out
}

fn url_password(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let userinfo = rest.split_once('@')?.0;
    Some(userinfo.split_once(':')?.1.to_string())
}

fn committed_yaml() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&deploy_dir(), &mut out);
    out
}

#[test]
fn every_example_secret_is_one_the_app_refuses() {
    let values = published_example_values();
    assert!(values.len() >= 5, "the examples' values: {values:?}");
    for (value, (key, path)) in &values {
        assert!(
            domain::secret::refuse_published("example", value).is_err(),
            "{} publishes {key}={value}, which domain::secret::PUBLISHED_EXAMPLE_SECRETS \
             does not list: the app would accept it",
            path.display()
        );
    }
    // The secrets the test harness runs with, and ones shaped like those ./scripts/run writes
    // into .env, are accepted.
    for value in [
        api_tests::TOKEN_SECRET,
        api_tests::ADMIN_TOKEN_SECRET,
        api_tests::SIGNUP_SECRET,
        api_tests::SYSTEME_WEBHOOK_SECRET,
        run_script_secret().as_str(),
    ] {
        assert!(domain::secret::refuse_published("test", value).is_ok());
    }
}

/// A secret shaped like the ones `./scripts/run` generates (`secrets.token_urlsafe(32)`).
fn run_script_secret() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&fresh_value().as_bytes()[..32])
}

/// Whether an Ingress path (`Exact` or `Prefix`) matches a request path.
fn ingress_matches(rule_path: &str, path_type: &str, path: &str) -> bool {
    match path_type {
        "Exact" => rule_path == path,
        "Prefix" => {
            let rule: Vec<&str> = rule_path.split('/').filter(|s| !s.is_empty()).collect();
            let req: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
            req.len() >= rule.len() && rule.iter().zip(&req).all(|(a, b)| a == b)
        }
        other => panic!("pathType {other:?}: use Exact or Prefix"),
    }
}

#[test]
fn the_ingress_routes_the_public_paths_over_tls_and_no_admin_path() {
    let Some(rendered) = rendered() else { return };
    let public = [
        ("/v1/leads", "Exact"),
        ("/v1/systeme/events", "Exact"),
        ("/v1/tenants", "Exact"),
        ("/v1/health", "Exact"),
        ("/v1/dashboard/", "Prefix"),
        ("/app/", "Prefix"),
        ("/embed/", "Prefix"),
    ];
    // spin.toml's routes, each as a concrete path (`/...` as one more segment).
    let routes: Vec<String> = read_manifest()["trigger"]["http"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let route = t["route"].as_str().unwrap();
            route.replace("/...", "/x").replace(":id", "x")
        })
        .collect();
    for (overlay, docs) in &rendered {
        let app = the_spinapp(docs);
        let service = str_of(&app["metadata"]["name"], "SpinApp name");
        let ingresses = of_kind(docs, "Ingress");
        assert_eq!(ingresses.len(), 1, "overlays/{overlay}: one Ingress");
        let ingress = ingresses[0];
        assert!(
            ingress["metadata"]["annotations"]
                .as_hash()
                .into_iter()
                .flatten()
                .any(|(k, _)| k
                    .as_str()
                    .is_some_and(|k| k.starts_with("cert-manager.io/"))),
            "overlays/{overlay}: cert-manager issues the certificate"
        );
        let tls = ingress["spec"]["tls"].as_vec().expect("spec.tls");
        let mut paths = Vec::new();
        for rule in ingress["spec"]["rules"].as_vec().unwrap() {
            let host = str_of(&rule["host"], "rules[].host");
            assert!(
                tls.iter().any(|t| t["secretName"].as_str().is_some()
                    && t["hosts"]
                        .as_vec()
                        .is_some_and(|h| h.iter().any(|x| x.as_str() == Some(host)))),
                "overlays/{overlay}: host {host} is served over TLS"
            );
            for p in rule["http"]["paths"].as_vec().unwrap() {
                assert_eq!(
                    p["backend"]["service"]["name"].as_str(),
                    Some(service),
                    "overlays/{overlay}: the operator's Service"
                );
                paths.push((
                    str_of(&p["path"], "path").to_string(),
                    str_of(&p["pathType"], "pathType").to_string(),
                ));
            }
        }
        let expected: BTreeSet<(String, String)> = public
            .iter()
            .map(|(p, t)| ((*p).to_string(), (*t).to_string()))
            .collect();
        let actual: BTreeSet<(String, String)> = paths.iter().cloned().collect();
        assert_eq!(actual, expected, "overlays/{overlay}: the public paths");
        for route in &routes {
            let exposed = paths.iter().any(|(p, t)| ingress_matches(p, t, route));
            let admin = route.starts_with("/v1/admin");
            assert_eq!(
                exposed,
                !admin,
                "overlays/{overlay}: route {route} is {} by the Ingress",
                if exposed { "exposed" } else { "not reached" }
            );
        }
        for probe in ["/v1/admin/sync", "/v1/admin/tenants", "/v1/admin/tenants/x"] {
            assert!(
                !paths.iter().any(|(p, t)| ingress_matches(p, t, probe)),
                "overlays/{overlay}: {probe} must not be public"
            );
        }
    }
}

#[test]
fn only_the_ingress_controller_the_sync_job_and_operators_reach_the_app() {
    let Some(rendered) = rendered() else { return };
    for (overlay, docs) in &rendered {
        let app = the_spinapp(docs);
        let name = str_of(&app["metadata"]["name"], "SpinApp name");
        let policy = of_kind(docs, "NetworkPolicy")
            .into_iter()
            .find(|p| {
                p["spec"]["podSelector"]["matchLabels"]["core.spinkube.dev/app-name"].as_str()
                    == Some(name)
            })
            .unwrap_or_else(|| panic!("overlays/{overlay}: a NetworkPolicy on the app's pods"));
        let types = policy["spec"]["policyTypes"].as_vec().unwrap();
        assert!(types.iter().any(|t| t.as_str() == Some("Ingress")));
        let rules = policy["spec"]["ingress"].as_vec().unwrap();
        let peers: Vec<Yaml> = rules
            .iter()
            .flat_map(|r| r["from"].as_vec().cloned().unwrap_or_default())
            .collect();
        assert_eq!(
            peers.len(),
            3,
            "overlays/{overlay}: the ingress controller, the sync job, the operators"
        );
        let namespaces: BTreeSet<&str> = peers
            .iter()
            .filter_map(|p| {
                p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"].as_str()
            })
            .collect();
        assert_eq!(namespaces.len(), 2, "overlays/{overlay}: {namespaces:?}");
        assert!(
            peers.iter().all(|p| p["ipBlock"].is_badvalue()),
            "overlays/{overlay}: no address ranges"
        );
        // The pod peer is the sync job's pods, by the labels its template gives them.
        let job = of_kind(docs, "CronJob")[0];
        let labels = &job["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"];
        let pod_peers: Vec<&Yaml> = peers
            .iter()
            .filter(|p| !p["podSelector"].is_badvalue())
            .collect();
        assert_eq!(pod_peers.len(), 1);
        for (k, v) in pod_peers[0]["podSelector"]["matchLabels"]
            .as_hash()
            .unwrap()
        {
            assert_eq!(
                &labels[k.as_str().unwrap()],
                v,
                "overlays/{overlay}: the pod peer selects the sync job's pods"
            );
        }
        assert!(
            pod_peers[0]["namespaceSelector"].is_badvalue(),
            "the sync job's pods in the app's own namespace"
        );
        // No other way in: no LoadBalancer or NodePort Service.
        for service in of_kind(docs, "Service") {
            let kind = service["spec"]["type"].as_str().unwrap_or("ClusterIP");
            assert_eq!(
                kind, "ClusterIP",
                "overlays/{overlay}: only in-cluster Services"
            );
        }
    }
}

#[test]
fn the_runtime_config_defines_the_apps_stores_with_spin_4_keys() {
    let Some(rendered) = rendered() else { return };
    let manifest = read_manifest();
    let repo: toml::Table = toml::from_str(
        &std::fs::read_to_string(workspace_root().join("runtime-config.toml")).unwrap(),
    )
    .unwrap();
    for (overlay, docs) in &rendered {
        let app = the_spinapp(docs);
        let name = str_of(
            &app["spec"]["runtimeConfig"]["loadFromSecret"],
            "spec.runtimeConfig.loadFromSecret",
        );
        let secret = named(docs, "Secret", name)
            .unwrap_or_else(|| panic!("overlays/{overlay}: Secret {name} is not rendered"));
        let entries = secret_entries(secret);
        assert_eq!(
            entries.keys().collect::<Vec<_>>(),
            ["runtime-config.toml"],
            "overlays/{overlay}: the operator reads the key runtime-config.toml"
        );
        let config: toml::Table = toml::from_str(&entries["runtime-config.toml"])
            .unwrap_or_else(|e| panic!("overlays/{overlay}: runtime-config.toml: {e}"));
        // The app keeps nothing in key-value, so no key-value store is configured: SQLite
        // (libSQL, Spin 4's keys `url` and `token`) is the only shared state.
        let keys = |t: &toml::Value| -> BTreeSet<String> {
            t.as_table().unwrap().keys().cloned().collect()
        };
        assert!(
            config.get("key_value_store").is_none(),
            "overlays/{overlay}: no key-value store is configured (the app opens none)"
        );
        let db = &config["sqlite_database"]["default"];
        assert_eq!(db["type"].as_str(), Some("libsql"), "shared SQLite");
        assert_eq!(
            keys(db),
            BTreeSet::from(["type".into(), "url".into(), "token".into()])
        );
        assert!(db["url"].as_str().unwrap().starts_with("http"));
        assert!(db["token"].as_str().is_some());
        // The same tables as the repository's runtime-config.toml, and every store a component
        // opens is defined.
        let tables = |t: &toml::Table| -> BTreeSet<String> {
            t.iter()
                .flat_map(|(kind, labels)| {
                    labels
                        .as_table()
                        .into_iter()
                        .flat_map(|l| l.keys())
                        .map(move |label| format!("{kind}.{label}"))
                })
                .collect()
        };
        assert_eq!(tables(&config), tables(&repo), "overlays/{overlay}");
        for (id, component) in manifest["component"].as_table().unwrap() {
            for (field, table) in [
                ("key_value_stores", "key_value_store"),
                ("sqlite_databases", "sqlite_database"),
            ] {
                for label in component
                    .get(field)
                    .and_then(toml::Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let label = label.as_str().unwrap();
                    assert!(
                        config.get(table).and_then(|t| t.get(label)).is_some(),
                        "overlays/{overlay}: component {id} opens {table}.{label}"
                    );
                }
            }
        }
    }
}

/// The operator's batches a CronJob calls: its name, the variable holding its URL, the route,
/// and the seconds between runs (a run must end before the next).
const BATCH_JOBS: [(&str, &str, &str, i64); 2] = [
    ("clientflow-sync", "SYNC_URL", "/v1/admin/sync", 120),
    ("clientflow-alerts", "RUN_URL", "/v1/admin/alerts/run", 60),
];

#[test]
fn the_batch_cronjobs_are_bounded_and_read_their_token_from_a_file() {
    let Some(rendered) = rendered() else { return };
    for (overlay, docs) in &rendered {
        let app = the_spinapp(docs);
        let name = str_of(&app["metadata"]["name"], "SpinApp name");
        let jobs = of_kind(docs, "CronJob");
        assert_eq!(
            jobs.len(),
            BATCH_JOBS.len(),
            "overlays/{overlay}: the batch CronJobs"
        );
        for (job_name, url_var, route, every) in BATCH_JOBS {
            let job = named(docs, "CronJob", job_name)
                .unwrap_or_else(|| panic!("overlays/{overlay}: CronJob {job_name}"));
            check_batch_job(overlay, docs, job, name, (url_var, route, every));
        }
    }
}

/// One batch CronJob: bounded, one run at a time, its token read from a mounted Secret.
fn check_batch_job(
    overlay: &str,
    docs: &[Yaml],
    job: &Yaml,
    name: &str,
    (url_var, route, every): (&str, &str, i64),
) {
    {
        assert_eq!(job["spec"]["concurrencyPolicy"].as_str(), Some("Forbid"));
        assert!(
            int_of(
                &job["spec"]["startingDeadlineSeconds"],
                "startingDeadlineSeconds"
            ) > 0
        );
        let job_spec = &job["spec"]["jobTemplate"]["spec"];
        let deadline = int_of(&job_spec["activeDeadlineSeconds"], "activeDeadlineSeconds");
        assert!(
            deadline < every,
            "overlays/{overlay}: a run ends before the next slot"
        );
        let pod = &job_spec["template"]["spec"];
        let container = &pod["containers"][0];
        let script: String = container["command"]
            .as_vec()
            .into_iter()
            .chain(container["args"].as_vec())
            .flatten()
            .filter_map(Yaml::as_str)
            .collect::<Vec<_>>()
            .join(" ");
        for flag in ["--max-time", "--retry", "--connect-timeout", "-H @-"] {
            assert!(script.contains(flag), "overlays/{overlay}: curl {flag}");
        }
        assert!(
            !script.contains("Bearer $("),
            "overlays/{overlay}: the token never goes into a process's arguments"
        );
        let env: BTreeMap<&str, &Yaml> = container["env"]
            .as_vec()
            .unwrap()
            .iter()
            .map(|e| (str_of(&e["name"], "env name"), e))
            .collect();
        for e in env.values() {
            assert!(
                e["valueFrom"].is_badvalue(),
                "overlays/{overlay}: no secret in the environment"
            );
        }
        let url = str_of(&env[url_var]["value"], url_var);
        assert!(
            url.starts_with(&format!("http://{name}{route}")),
            "overlays/{overlay}: through the operator's ClusterIP Service: {url}"
        );
        let min = str_of(&env["MIN_TOKEN_SECONDS"]["value"], "MIN_TOKEN_SECONDS");
        assert_eq!(min, (7 * 24 * 3600).to_string());
        // TOKEN_FILE is a key of the Secret mounted at its directory.
        let token_file = Path::new(str_of(&env["TOKEN_FILE"]["value"], "TOKEN_FILE"));
        let mount = container["volumeMounts"]
            .as_vec()
            .unwrap()
            .iter()
            .find(|m| Some(Path::new(str_of(&m["mountPath"], "mountPath"))) == token_file.parent())
            .unwrap_or_else(|| {
                panic!("overlays/{overlay}: nothing mounted at TOKEN_FILE's directory")
            });
        let volume_name = str_of(&mount["name"], "volumeMounts[].name");
        let volume = pod["volumes"]
            .as_vec()
            .unwrap()
            .iter()
            .find(|v| v["name"].as_str() == Some(volume_name))
            .unwrap();
        let secret_name = str_of(
            &volume["secret"]["secretName"],
            "volumes[].secret.secretName",
        );
        let secret = named(docs, "Secret", secret_name)
            .unwrap_or_else(|| panic!("overlays/{overlay}: Secret {secret_name} is not rendered"));
        let key = token_file.file_name().unwrap().to_str().unwrap();
        assert!(
            secret_entries(secret).contains_key(key),
            "overlays/{overlay}: Secret {secret_name} has the key {key}"
        );
    }
}

// ---- black-box, on the local host ----

/// The dev overlay's `secrets.env.example`, as the app's variables.
fn example_secret_variables() -> Vec<(String, String)> {
    let text =
        std::fs::read_to_string(deploy_dir().join("overlays/dev/secrets.env.example")).unwrap();
    env_entries(&text)
        .into_iter()
        .map(|(k, v)| (format!("SPIN_VARIABLE_{}", k.to_uppercase()), v))
        .collect()
}

async fn health_status_and_code(app: &api_tests::TestApp) -> (u16, serde_json::Value) {
    let resp = app.client.get(app.url("/v1/health")).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, json_body(resp).await)
}

#[tokio::test]
async fn a_pod_with_the_repositorys_example_secrets_never_reports_ready() {
    let systeme = api_tests::FakeSysteme::start().await;
    let spec = example_secret_variables()
        .into_iter()
        .fold(AppSpec::clientflow(&systeme.uri()), |spec, (k, v)| {
            spec.with_env(&k, &v)
        });
    let app = spawn_spec(spec).await;
    for _ in 0..3 {
        let resp = app.client.get(app.url("/v1/health")).send().await.unwrap();
        assert_eq!(resp.headers()["cache-control"], "no-store");
        let body = assert_problem(resp, 503, "insecure_secret").await;
        let detail = body["detail"].as_str().unwrap();
        for (_, value) in example_secret_variables() {
            assert!(
                value.is_empty() || !detail.contains(&value),
                "the answer never shows a secret"
            );
        }
    }
    // The log names every refused variable, and never its value.
    let log = app.stderr();
    for variable in [
        "token_secret",
        "admin_token_secret",
        "signup_secret",
        "systeme_webhook_secret",
    ] {
        assert!(
            log.contains(&format!("variable {variable}:")),
            "the log names {variable}:\n{log}"
        );
    }
    for (_, value) in example_secret_variables() {
        assert!(
            value.is_empty() || !log.contains(&value),
            "the log shows a secret value"
        );
    }
    // Nor does it serve what the secrets protect: an admin token minted with the published
    // admin_token_secret opens nothing.
    let published_admin_key = example_secret_variables()
        .into_iter()
        .find(|(k, _)| k == "SPIN_VARIABLE_ADMIN_TOKEN_SECRET")
        .unwrap()
        .1;
    let forged = domain::token::mint(
        &domain::secret::TokenSecret::parse_named("admin_token_secret", &published_admin_key)
            .unwrap(),
        &domain::token::Claims {
            sub: None,
            scope: domain::token::Scope::Admin,
            exp: Some(now() + 600),
            generation: None,
        },
    );
    for (method, path) in [
        (reqwest::Method::POST, "/v1/admin/sync"),
        (reqwest::Method::GET, "/v1/admin/tenants"),
    ] {
        let resp = app
            .client
            .request(method, app.url(path))
            .bearer_auth(&forged)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 500, "{path} with a forged admin token");
    }
}

#[tokio::test]
async fn a_secret_weaker_than_the_contract_is_refused_by_name_and_good_ones_are_ready() {
    let app = spawn_app_with_env(&[
        (
            "SPIN_VARIABLE_TOKEN_SECRET",
            "only-31-bytes-long-0123456789ab",
        ),
        ("SPIN_VARIABLE_SIGNUP_SECRET", "not-a-whsec-secret"),
    ])
    .await;
    let (status, body) = health_status_and_code(&app).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("insecure_secret"))
    );
    let log = app.stderr();
    assert!(log.contains("variable token_secret:"), "{log}");
    assert!(log.contains("variable signup_secret:"), "{log}");
    assert!(!log.contains("variable admin_token_secret:"), "{log}");
    drop(app);

    // Secrets shaped like the ones ./scripts/run writes into .env are fine.
    let whsec = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(&fresh_value().as_bytes()[..24])
    );
    let token = run_script_secret();
    let admin = run_script_secret();
    let webhook = run_script_secret();
    let app = spawn_app_with_env(&[
        ("SPIN_VARIABLE_TOKEN_SECRET", token.as_str()),
        ("SPIN_VARIABLE_ADMIN_TOKEN_SECRET", admin.as_str()),
        ("SPIN_VARIABLE_SIGNUP_SECRET", whsec.as_str()),
        ("SPIN_VARIABLE_SYSTEME_WEBHOOK_SECRET", webhook.as_str()),
    ])
    .await;
    let (status, body) = health_status_and_code(&app).await;
    assert_eq!(status, 200, "{body}");
}

async fn spawn_app_with_env(env: &[(&str, &str)]) -> api_tests::TestApp {
    let systeme = api_tests::FakeSysteme::start().await;
    let spec = env
        .iter()
        .fold(AppSpec::clientflow(&systeme.uri()), |spec, (k, v)| {
            spec.with_env(k, v)
        });
    spawn_spec(spec).await
}

/// The sync CronJob's shell script, as committed in the base.
fn sync_script() -> String {
    let text = std::fs::read_to_string(deploy_dir().join("base/sync-cronjob.yaml")).unwrap();
    let doc = YamlLoader::load_from_str(&text).unwrap().remove(0);
    let container = &doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["command"].as_vec().unwrap(),
        &vec![Yaml::from_str("/bin/sh"), Yaml::from_str("-c")]
    );
    str_of(&container["args"][0], "the script").to_string()
}

/// Runs the CronJob's script with `sh` and `curl` against `app`, with an admin token that
/// expires in `valid_for` seconds. Returns (exit code, stdout, stderr).
fn run_sync_script(sync_url: &str, valid_for: i64) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    let token = mint_admin(&domain::token::Claims {
        sub: None,
        scope: domain::token::Scope::Admin,
        exp: Some(now() + valid_for),
        generation: None,
    });
    std::fs::write(&token_file, &token).unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(sync_script())
        .env("SYNC_URL", sync_url)
        .env("TOKEN_FILE", &token_file)
        .env("MIN_TOKEN_SECONDS", (7 * 24 * 3600).to_string())
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        !stdout.contains(&token) && !stderr.contains(&token),
        "the script never prints the token"
    );
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

#[tokio::test]
async fn the_sync_job_reports_the_token_lifetime_and_fails_loudly_under_seven_days() {
    let curl_ok = Command::new("curl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !curl_ok {
        eprintln!("SKIPPED: curl is not installed, so the sync CronJob's script is not run");
        return;
    }
    let app = spawn_app().await;
    let url = app.url("/v1/admin/sync?limit=10");
    let run = |valid_for: i64| {
        let url = url.clone();
        tokio::task::spawn_blocking(move || run_sync_script(&url, valid_for))
    };
    let month = 30 * 24 * 3600;
    let (code, stdout, stderr) = run(month).await.unwrap();
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let left = report["admin_token_expires_in"].as_i64().unwrap();
    assert!(
        (month - 60..=month).contains(&left),
        "admin_token_expires_in {left}"
    );
    assert!(report["attempted"].is_u64(), "the batch report: {report}");

    let three_days = 3 * 24 * 3600;
    let (code, stdout, stderr) = run(three_days).await.unwrap();
    assert_eq!(code, 1, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.contains("\"admin_token_expires_in\""),
        "the batch ran and reported: {stdout}"
    );
    assert!(
        stderr.contains("the admin token expires in 2 days")
            || stderr.contains("the admin token expires in 3 days"),
        "a loud message: {stderr}"
    );

    // A refused token fails the Job with the problem shown.
    let (code, _, stderr) = run(-3600).await.unwrap();
    assert_eq!(code, 1);
    assert!(stderr.contains("token_expired"), "{stderr}");
}
