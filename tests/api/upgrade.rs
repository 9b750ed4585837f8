//! A rolling update, on the local host: the previous release's components and this release's
//! run side by side on one SQLite file and one Redis, as two pods of a SpinKube rollout do.
//! The previous release starts first (the cluster as it was); this release's first readiness
//! probe migrates the shared database; then both serve every kind of request, each reading what
//! the other wrote, and the previous release alone keeps serving after this one stops (a
//! rollback). docs/upgrading.md states the migration rule this checks.
//!
//! The previous release is built from git history: `git archive` of [`PREVIOUS_RELEASE`] into
//! `target/previous-release/`, then its five components with their own `CARGO_TARGET_DIR`
//! there, so later runs reuse the build. It needs the repository's history (a full clone) and
//! `redis-server` (as `replicas.rs` does).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use api_tests::{
    AppSpec, FakeSysteme, TestApp, admin_token, json_body, spawn_spec, workspace_root,
};
use serde_json::{Value, json};

use crate::replicas::Redis;

/// The release this one must run beside: the commit the previous deploy was built from. Move it
/// forward at each release.
const PREVIOUS_RELEASE: &str = "710e44978f119eccc8f9e244e638fc01dbd29340";

/// The component packages of a release.
const COMPONENTS: [&str; 5] = [
    "dashboard",
    "lead-capture",
    "systeme-events",
    "tenant-signup",
    "web",
];

/// Builds the previous release's components (once; later runs find them built) and returns
/// its manifest, pointed at them.
fn previous_release_manifest() -> PathBuf {
    static BUILD: Mutex<()> = Mutex::new(());
    let _one_at_a_time = BUILD
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let root = workspace_root().join("target/previous-release");
    let src = root.join(&PREVIOUS_RELEASE[..12]);
    let target = root.join("target");
    if !src.join("spin.toml").is_file() {
        let known = Command::new("git")
            .args(["cat-file", "-e", &format!("{PREVIOUS_RELEASE}^{{commit}}")])
            .current_dir(workspace_root())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            known,
            "commit {PREVIOUS_RELEASE} (the previous release) is not in this clone: the \
             rolling-update test needs the repository's history (git fetch --unshallow)"
        );
        let partial = root.join(format!("{}.partial", &PREVIOUS_RELEASE[..12]));
        let _ = std::fs::remove_dir_all(&partial);
        std::fs::create_dir_all(&partial).unwrap();
        let archive = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "git -C '{}' archive --format=tar {PREVIOUS_RELEASE} | tar -x -C '{}'",
                workspace_root().display(),
                partial.display()
            ))
            .status()
            .unwrap();
        assert!(archive.success(), "git archive {PREVIOUS_RELEASE}");
        std::fs::rename(&partial, &src).unwrap();
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args([
            "build",
            "--locked",
            "--release",
            "--target",
            "wasm32-wasip2",
        ])
        .args(COMPONENTS.iter().flat_map(|c| ["-p", c]))
        .current_dir(&src)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("CARGO_BUILD_TARGET_DIR");
    let out = build.output().unwrap();
    assert!(
        out.status.success(),
        "building the previous release ({PREVIOUS_RELEASE}) failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Its own manifest, with each component's source pointed at the build above.
    let manifest = std::fs::read_to_string(src.join("spin.toml")).unwrap();
    let built = target.join("wasm32-wasip2/release");
    let manifest = manifest.replace(
        "source = \"target/wasm32-wasip2/release/",
        &format!("source = \"{}/", built.display()),
    );
    let path = root.join(format!("{}.spin.toml", &PREVIOUS_RELEASE[..12]));
    std::fs::write(&path, manifest).unwrap();
    path
}

fn runtime_config(redis_url: &str, database: &Path) -> String {
    format!(
        "[key_value_store.default]\ntype = \"redis\"\nurl = \"{redis_url}\"\n\n\
         [sqlite_database.default]\ntype = \"spin\"\npath = \"{}\"\n",
        database.display()
    )
}

async fn health(app: &TestApp) -> Value {
    let resp = app.client.get(app.url("/v1/health")).send().await.unwrap();
    assert_eq!(resp.status(), 200, "health");
    json_body(resp).await
}

async fn capture(app: &TestApp, token: &str, email: &str) -> u16 {
    app.client
        .post(app.url("/v1/leads"))
        .bearer_auth(token)
        .json(
            &json!({"email": email, "name": "Visitor", "ib_type": "forex-ib", "tags": ["webinar"]}),
        )
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn dashboard(app: &TestApp, token: &str, path: &str) -> Value {
    let resp = app
        .client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    json_body(resp).await
}

/// Every kind of request `app` serves, on leads both releases wrote.
async fn serves_everything(who: &str, app: &TestApp, tenant: &api_tests::TestTenant, round: u32) {
    health(app).await;
    // Capture: a new email, then the same one again.
    let email = format!("{who}-{round}@example.com");
    assert_eq!(
        capture(app, &tenant.capture_token, &email).await,
        201,
        "{who}: new lead"
    );
    assert_eq!(
        capture(app, &tenant.capture_token, &email).await,
        200,
        "{who}: repeat"
    );
    // Signup.
    app.create_tenant(&format!("{who}-signup-{round}")).await;
    // A Systeme.io callback on a lead.
    let tag = format!("{}hot", tenant.tag_prefix);
    let body = json!({
        "contact": {"email": email, "tags": [{"id": 7, "name": tag}]},
        "tag": {"id": 7, "name": tag}
    })
    .to_string();
    let resp = app
        .post_systeme_event("CONTACT_TAG_ADDED", &format!("msg-{who}-{round}"), &body)
        .await;
    assert_eq!(resp.status(), 200, "{who}: callback");
    // The dashboard: stats, the lead list, and each lead's timeline, whichever release wrote it.
    let token = tenant.dashboard_token();
    let stats = dashboard(app, &token, "/v1/dashboard/stats").await;
    assert!(stats.is_object(), "{who}: stats");
    let leads = dashboard(app, &token, "/v1/dashboard/leads?limit=200").await;
    let leads = leads["leads"].as_array().unwrap().clone();
    assert!(!leads.is_empty());
    for lead in &leads {
        let id = lead["id"].as_str().unwrap();
        let detail = dashboard(app, &token, &format!("/v1/dashboard/leads/{id}")).await;
        let timeline = detail["timeline"]
            .as_array()
            .unwrap_or_else(|| panic!("{who}: the lead's timeline: {detail}"));
        // Migration 0013 moved each lead's first entry out of `lead_events` into the lead's row,
        // where only this release reads it; the previous release answers every timeline, but
        // without that entry (docs/upgrading.md).
        if who == "current" {
            assert!(
                !timeline.is_empty(),
                "{who}: lead {} has its first timeline entry: {detail}",
                lead["email"]
            );
        }
    }
    // The operator's batch.
    let resp = app
        .client
        .post(app.url("/v1/admin/sync?limit=50"))
        .bearer_auth(admin_token())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{who}: admin sync");
}

#[tokio::test]
async fn the_previous_release_and_this_one_serve_side_by_side_on_one_database() {
    let started = std::time::Instant::now();
    let previous = tokio::task::spawn_blocking(previous_release_manifest)
        .await
        .unwrap();
    eprintln!(
        "the previous release's components were ready in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let redis = tokio::task::spawn_blocking(Redis::start).await.unwrap();
    let systeme = FakeSysteme::start().await;
    let shared = tempfile::tempdir().unwrap();
    let database = shared.path().join("sqlite_db.db");
    let config = shared.path().join("runtime-config.toml");
    std::fs::write(&config, runtime_config(&redis.url(), &database)).unwrap();
    let current = AppSpec::clientflow(&systeme.uri()).with_runtime_config(&config, Some(&database));
    let before = AppSpec {
        manifest: previous,
        ..current.clone()
    };

    // The cluster as it was: the previous release, its schema, its data.
    let old = spawn_spec(before).await;
    let old_version = health(&old).await["schema_version"].as_i64().unwrap();
    let tenant = old.create_tenant("Rolling").await;
    assert_eq!(
        capture(&old, &tenant.capture_token, "first@example.com").await,
        201
    );

    // This release's first pod: its readiness probe migrates the shared database.
    let new = spawn_spec(current).await;
    let new_version = health(&new).await["schema_version"].as_i64().unwrap();
    assert!(
        new_version >= old_version,
        "schema {old_version} → {new_version}"
    );

    // Mid-rollout both serve, each on what the other wrote.
    for round in 0..2 {
        serves_everything("previous", &old, &tenant, round).await;
        serves_everything("current", &new, &tenant, round).await;
    }

    // Rolled back: this release's pods are gone, the previous one keeps serving on the
    // migrated database.
    drop(new);
    serves_everything("previous", &old, &tenant, 9).await;
    eprintln!(
        "rolling-update test: {:.1} s in all (schema {old_version} → {new_version})",
        started.elapsed().as_secs_f64()
    );
}
