//! `deploy/spinkube/` agrees with the app: the `SpinApp` binds every required variable of
//! `spin.toml` (and only declared ones) to a Secret key that exists, its runtime config
//! defines the stores the app opens, and the CronJob and Service reach the SpinApp's pods.

use std::collections::BTreeSet;
use std::path::PathBuf;

use api_tests::workspace_root;
use yaml_rust2::{Yaml, YamlLoader};

fn deploy_dir() -> PathBuf {
    workspace_root().join("deploy/spinkube")
}

/// Every document of every YAML file in `deploy/spinkube/`.
fn documents() -> Vec<Yaml> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in deploy/spinkube");
    files
        .iter()
        .flat_map(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        })
        .filter(|doc| !doc.is_null())
        .collect()
}

fn of_kind<'a>(docs: &'a [Yaml], kind: &str) -> Vec<&'a Yaml> {
    docs.iter()
        .filter(|d| d["kind"].as_str() == Some(kind))
        .collect()
}

fn str_of<'a>(yaml: &'a Yaml, what: &str) -> &'a str {
    yaml.as_str()
        .unwrap_or_else(|| panic!("{what} is missing or not a string"))
}

/// The value of `key` in the Secret `name` (`stringData`), if both exist.
fn secret_value<'a>(docs: &'a [Yaml], name: &str, key: &str) -> Option<&'a str> {
    of_kind(docs, "Secret")
        .into_iter()
        .find(|s| s["metadata"]["name"].as_str() == Some(name))
        .and_then(|s| s["stringData"][key].as_str())
}

fn the_spinapp(docs: &[Yaml]) -> &Yaml {
    let apps = of_kind(docs, "SpinApp");
    assert_eq!(apps.len(), 1, "one SpinApp");
    let app = apps[0];
    assert_eq!(
        app["apiVersion"].as_str(),
        Some("core.spinkube.dev/v1alpha1")
    );
    app
}

/// spin.toml's application variables: (name, required).
fn manifest_variables() -> Vec<(String, bool)> {
    let text = std::fs::read_to_string(workspace_root().join("spin.toml")).unwrap();
    let manifest: toml::Table = toml::from_str(&text).unwrap();
    manifest["variables"]
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
fn the_spinapp_binds_every_required_variable_to_a_secret_key_that_exists() {
    let docs = documents();
    let app = the_spinapp(&docs);
    let spec = &app["spec"];
    assert_eq!(spec["executor"].as_str(), Some("containerd-shim-spin"));
    assert!(
        spec["replicas"].as_i64().unwrap_or(0) > 1,
        "several replicas: the point of shared backends"
    );
    let bound: Vec<&Yaml> = spec["variables"]
        .as_vec()
        .expect("spec.variables")
        .iter()
        .collect();
    let declared = manifest_variables();
    let declared_names: BTreeSet<&str> = declared.iter().map(|(n, _)| n.as_str()).collect();
    let mut bound_names = BTreeSet::new();
    for var in &bound {
        let name = str_of(&var["name"], "variables[].name");
        assert!(
            declared_names.contains(name),
            "SpinApp binds {name:?}, which spin.toml does not declare"
        );
        assert!(bound_names.insert(name), "{name:?} bound twice");
        let reference = &var["valueFrom"]["secretKeyRef"];
        if !reference.is_badvalue() {
            let secret = str_of(&reference["name"], "secretKeyRef.name");
            let key = str_of(&reference["key"], "secretKeyRef.key");
            assert!(
                secret_value(&docs, secret, key).is_some(),
                "{name:?} reads Secret {secret:?} key {key:?}, which deploy/spinkube does not define"
            );
        } else {
            assert!(
                var["value"].as_str().is_some(),
                "{name:?} has neither a value nor a secretKeyRef"
            );
        }
    }
    for (name, required) in &declared {
        if *required {
            assert!(
                bound_names.contains(name.as_str()),
                "spin.toml requires {name:?}; the SpinApp does not bind it"
            );
        }
    }
}

#[test]
fn the_runtime_config_secret_defines_the_stores_the_app_opens() {
    let docs = documents();
    let app = the_spinapp(&docs);
    let secret = str_of(
        &app["spec"]["runtimeConfig"]["loadFromSecret"],
        "spec.runtimeConfig.loadFromSecret",
    );
    let text = secret_value(&docs, secret, "runtime-config.toml").unwrap_or_else(|| {
        panic!("Secret {secret:?} with key runtime-config.toml is not in deploy/spinkube")
    });
    let config: toml::Table =
        toml::from_str(text).unwrap_or_else(|e| panic!("runtime-config.toml: {e}"));
    let kv = &config["key_value_store"]["default"];
    assert_eq!(kv["type"].as_str(), Some("redis"), "shared key-value");
    assert!(kv["url"].as_str().unwrap().starts_with("redis"));
    let db = &config["sqlite_database"]["default"];
    assert_eq!(db["type"].as_str(), Some("libsql"), "shared SQLite");
    for field in ["url", "token"] {
        assert!(
            db[field].as_str().is_some(),
            "sqlite_database.default.{field}"
        );
    }
    // The same tables as the repository's runtime-config.toml, the one documented for `spin up`.
    let repo: toml::Table = toml::from_str(
        &std::fs::read_to_string(workspace_root().join("runtime-config.toml")).unwrap(),
    )
    .unwrap();
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
    assert_eq!(tables(&config), tables(&repo));
    // Every store a component declares is defined.
    let manifest: toml::Table =
        toml::from_str(&std::fs::read_to_string(workspace_root().join("spin.toml")).unwrap())
            .unwrap();
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
                    config[table].get(label).is_some(),
                    "component {id} opens {table}.{label}, which the runtime config lacks"
                );
            }
        }
    }
}

#[test]
fn the_sync_cronjob_and_the_service_reach_the_spinapp() {
    let docs = documents();
    let app = the_spinapp(&docs);
    let name = str_of(&app["metadata"]["name"], "SpinApp name");
    let namespace = app["metadata"]["namespace"].as_str();
    for doc in &docs {
        assert_eq!(
            doc["metadata"]["namespace"].as_str(),
            namespace,
            "every object in one namespace: {:?}",
            doc["metadata"]["name"]
        );
    }

    let jobs = of_kind(&docs, "CronJob");
    assert_eq!(jobs.len(), 1, "the sync CronJob");
    let container = &jobs[0]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<&str> = container["args"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    // The operator's Service for a SpinApp has the SpinApp's name.
    assert!(
        args.iter()
            .any(|a| a.starts_with(&format!("http://{name}/v1/admin/sync"))),
        "{args:?}"
    );
    assert!(args.contains(&"POST"), "{args:?}");
    for env in container["env"].as_vec().unwrap() {
        let reference = &env["valueFrom"]["secretKeyRef"];
        let (secret, key) = (
            str_of(&reference["name"], "secretKeyRef.name"),
            str_of(&reference["key"], "secretKeyRef.key"),
        );
        assert!(
            secret_value(&docs, secret, key).is_some(),
            "the CronJob reads Secret {secret:?} key {key:?}, which is not defined"
        );
    }

    let services = of_kind(&docs, "Service");
    assert_eq!(services.len(), 1, "the public Service");
    assert_eq!(
        services[0]["spec"]["selector"]["core.spinkube.dev/app-name"].as_str(),
        Some(name),
        "the Service selects the SpinApp's pods"
    );
    assert!(
        deploy_dir().join("README.md").is_file(),
        "deploy/spinkube/README.md"
    );
}
