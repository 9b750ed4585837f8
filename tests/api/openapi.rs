//! `openapi.yaml` parses as OpenAPI 3.1, every reference resolves, every error is problem+json,
//! and its paths and `spin.toml`'s routes describe the same application.

use std::collections::BTreeSet;

use api_tests::workspace_root;
use yaml_rust2::{Yaml, YamlLoader};

fn openapi() -> Yaml {
    let text = std::fs::read_to_string(workspace_root().join("openapi.yaml")).unwrap();
    YamlLoader::load_from_str(&text).unwrap().remove(0)
}

/// `spin.toml`'s HTTP routes: (route, component).
fn spin_routes() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(workspace_root().join("spin.toml")).unwrap();
    let manifest: toml::Table = text.parse().unwrap();
    manifest["trigger"]["http"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["route"].as_str().unwrap().to_string(),
                t["component"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The component Spin would route `path` to: an exact route first, then the longest `/...`.
fn component_for(routes: &[(String, String)], path: &str) -> Option<String> {
    if let Some((_, c)) = routes.iter().find(|(r, _)| r == path) {
        return Some(c.clone());
    }
    routes
        .iter()
        .filter_map(|(r, c)| {
            let base = r.strip_suffix("/...")?;
            (path == base || path.starts_with(&format!("{base}/"))).then_some((base.len(), c))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, c)| c.clone())
}

fn refs(node: &Yaml, out: &mut Vec<String>) {
    match node {
        Yaml::Hash(h) => {
            for (k, v) in h {
                if k.as_str() == Some("$ref") {
                    out.push(v.as_str().unwrap().to_string());
                }
                refs(v, out);
            }
        }
        Yaml::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

fn resolve<'a>(doc: &'a Yaml, pointer: &str) -> &'a Yaml {
    let mut node = doc;
    for part in pointer.trim_start_matches("#/").split('/') {
        node = &node[part];
    }
    node
}

const METHODS: [&str; 6] = ["get", "post", "put", "patch", "delete", "options"];

#[test]
fn the_document_is_openapi_3_1_and_every_reference_resolves() {
    let doc = openapi();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(doc["info"]["title"].as_str().is_some());
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.len() > 20);
    for r in all {
        assert!(!resolve(&doc, &r).is_badvalue(), "unresolved {r}");
    }
    let schemes = doc["components"]["securitySchemes"].as_hash().unwrap();
    for (path, item) in doc["paths"].as_hash().unwrap() {
        let path = path.as_str().unwrap();
        for method in METHODS {
            let op = &item[method];
            if op.is_badvalue() {
                continue;
            }
            let security = op["security"]
                .as_vec()
                .unwrap_or_else(|| panic!("{method} {path}: no security"));
            for requirement in security {
                for (name, _) in requirement.as_hash().unwrap() {
                    assert!(
                        schemes.contains_key(name),
                        "{method} {path}: unknown scheme {name:?}"
                    );
                }
            }
            let responses = op["responses"]
                .as_hash()
                .unwrap_or_else(|| panic!("{method} {path}: no responses"));
            for (status, response) in responses {
                let status = status.as_str().unwrap();
                if status.starts_with('4') || status.starts_with('5') {
                    let resolved = match response["$ref"].as_str() {
                        Some(target) => resolve(&doc, target),
                        None => response,
                    };
                    assert!(
                        !resolved["content"]["application/problem+json"].is_badvalue(),
                        "{method} {path} {status} is not problem+json"
                    );
                }
            }
        }
    }
}

#[test]
fn the_documented_paths_and_the_spin_routes_match() {
    let doc = openapi();
    let routes = spin_routes();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_hash().unwrap() {
        let path = path.as_str().unwrap();
        documented.insert(path.to_string());
        let sample = path.replace("{id}", "0f8fad5b-d9cb-469f-a165-70867728950e");
        let component = component_for(&routes, &sample)
            .unwrap_or_else(|| panic!("{path} is documented but spin.toml routes nothing there"));
        assert_eq!(
            item["x-spin-component"].as_str(),
            Some(component.as_str()),
            "{path}: x-spin-component"
        );
    }
    for (route, component) in &routes {
        match route.strip_suffix("/...") {
            Some(base) => assert!(
                documented
                    .iter()
                    .any(|p| p == base || p.starts_with(&format!("{base}/"))),
                "{route} ({component}) has no documented path"
            ),
            None => assert!(
                documented.contains(route),
                "{route} ({component}) is not documented"
            ),
        }
    }
    // Every component in the manifest appears in the document.
    let components: BTreeSet<&str> = routes.iter().map(|(_, c)| c.as_str()).collect();
    let documented_components: BTreeSet<&str> = doc["paths"]
        .as_hash()
        .unwrap()
        .values()
        .filter_map(|i| i["x-spin-component"].as_str())
        .collect();
    assert_eq!(components, documented_components);
}
