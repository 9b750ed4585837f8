//! The tenant record cached in the key-value store is a versioned cache with an expiry: a
//! refresh that read an older row never overwrites a newer entry, and an expired entry is read
//! from SQLite again, so a lost write heals by itself.

use api_tests::{TestApp, admin_token, assert_problem, now, spawn_app};
use serde_json::json;

fn record_key(tenant: &str) -> String {
    format!("t:{tenant}:record")
}

fn kv(app: &TestApp) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(app.state_dir().join("sqlite_key_value.db")).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    conn
}

/// The cached record of `tenant`, as JSON.
fn cached(app: &TestApp, tenant: &str) -> serde_json::Value {
    let bytes: Vec<u8> = kv(app)
        .query_row(
            "SELECT value FROM spin_key_value WHERE store = 'default' AND key = ?1",
            [record_key(tenant)],
            |r| r.get(0),
        )
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn write_cached(app: &TestApp, tenant: &str, record: &serde_json::Value) {
    kv(app)
        .execute(
            "UPDATE spin_key_value SET value = ?1 WHERE store = 'default' AND key = ?2",
            rusqlite::params![record.to_string().into_bytes(), record_key(tenant)],
        )
        .unwrap();
}

/// Marks the cached record as past its expiry, as if its time-to-live had run out.
fn expire_cached(app: &TestApp, tenant: &str) {
    let mut record = cached(app, tenant);
    record["expires_at"] = json!(now() - 1);
    write_cached(app, tenant, &record);
}

fn db_version(app: &TestApp, tenant: &str) -> i64 {
    app.db()
        .query_row("SELECT version FROM tenants WHERE id = ?1", [tenant], |r| {
            r.get(0)
        })
        .unwrap()
}

/// Puts the `tenants` row back to what a slow refresh read earlier (its version included).
fn set_row(app: &TestApp, tenant: &str, capture_gen: i64, status: &str, version: i64) {
    app.db_rw()
        .execute(
            "UPDATE tenants SET capture_gen = ?1, status = ?2, version = ?3 WHERE id = ?4",
            rusqlite::params![capture_gen, status, version, tenant],
        )
        .unwrap();
}

async fn set_status(app: &TestApp, tenant: &str, status: &str) {
    let resp = app
        .client
        .patch(app.url(&format!("/v1/admin/tenants/{tenant}")))
        .bearer_auth(admin_token())
        .json(&json!({ "status": status }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "setting status {status}");
}

/// A request that goes through the gate (and so refreshes an expired record) whatever the
/// capture-key generation.
async fn touch(app: &TestApp, dashboard_token: &str) -> reqwest::Response {
    app.client
        .get(app.url("/v1/dashboard/settings"))
        .bearer_auth(dashboard_token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_out_of_order_refresh_cannot_resurrect_a_revoked_key_or_lose_a_suspension() {
    let app = spawn_app().await;
    let t = app.create_tenant("Cache Order").await;
    let old_key = t.capture_token.clone();
    assert_eq!(
        app.post_lead(&old_key, &json!({ "email": "a@example.com" }))
            .await
            .status(),
        201
    );
    assert_eq!(cached(&app, &t.id)["version"], db_version(&app, &t.id));

    // Rotation: the row and the cache move on to a new version together.
    let resp = app
        .client
        .post(app.url("/v1/dashboard/capture-key"))
        .bearer_auth(t.dashboard_token())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let new_key = resp.json::<serde_json::Value>().await.unwrap()["capture_token"]
        .as_str()
        .unwrap()
        .to_string();
    let rotated = db_version(&app, &t.id);
    assert!(rotated > 1, "a rotation raises the row's version");
    assert_eq!(cached(&app, &t.id)["version"], rotated);
    assert_eq!(cached(&app, &t.id)["capture_gen"], 2);

    // A slow refresh that read the row before the rotation finishes now: the database answers
    // it with the old row, and it finds the cached entry due for a refresh.
    set_row(&app, &t.id, 1, "active", rotated - 1);
    expire_cached(&app, &t.id);
    assert_eq!(touch(&app, &t.dashboard_token()).await.status(), 200);
    assert_eq!(
        cached(&app, &t.id)["capture_gen"],
        2,
        "the older read did not overwrite the newer entry"
    );
    assert_eq!(cached(&app, &t.id)["version"], rotated);
    set_row(&app, &t.id, 2, "active", rotated);
    assert_problem(
        app.post_lead(&old_key, &json!({ "email": "b@example.com" }))
            .await,
        401,
        "token_revoked",
    )
    .await;
    assert_eq!(
        app.post_lead(&new_key, &json!({ "email": "c@example.com" }))
            .await
            .status(),
        201
    );

    // The same for a suspension.
    set_status(&app, &t.id, "suspended").await;
    let suspended = db_version(&app, &t.id);
    assert!(suspended > rotated);
    assert_eq!(cached(&app, &t.id)["status"], "suspended");
    set_row(&app, &t.id, 2, "active", rotated);
    expire_cached(&app, &t.id);
    assert_eq!(touch(&app, &t.dashboard_token()).await.status(), 200);
    assert_eq!(cached(&app, &t.id)["status"], "suspended");
    set_row(&app, &t.id, 2, "suspended", suspended);
    assert_problem(
        app.post_lead(&new_key, &json!({ "email": "d@example.com" }))
            .await,
        403,
        "tenant_suspended",
    )
    .await;
    assert!(app.lead_row(&t.id, "d@example.com").is_none());
}

#[tokio::test]
async fn an_expired_entry_heals_a_lost_write() {
    let app = spawn_app().await;
    let t = app.create_tenant("Cache Heal").await;
    assert_eq!(
        app.post_lead(&t.capture_token, &json!({ "email": "a@example.com" }))
            .await
            .status(),
        201
    );
    let before = cached(&app, &t.id);
    let expires_at = before["expires_at"].as_i64().unwrap();
    assert!(
        expires_at > now() && expires_at <= now() + 120,
        "entries carry a short expiry: {before}"
    );

    // The suspension's cache write is lost: the entry still says active.
    set_status(&app, &t.id, "suspended").await;
    write_cached(&app, &t.id, &before);
    // Until it expires, the gate trusts it (one key-value read per request, by design) …
    assert_eq!(
        app.post_lead(&t.capture_token, &json!({ "email": "b@example.com" }))
            .await
            .status(),
        201
    );
    // … and once it has, SQLite answers and the entry is rewritten.
    expire_cached(&app, &t.id);
    assert_problem(
        app.post_lead(&t.capture_token, &json!({ "email": "c@example.com" }))
            .await,
        403,
        "tenant_suspended",
    )
    .await;
    let healed = cached(&app, &t.id);
    assert_eq!(healed["status"], "suspended");
    assert_eq!(healed["version"], db_version(&app, &t.id));
    assert!(healed["expires_at"].as_i64().unwrap() > now());

    // An entry written before entries had versions and expiries is refreshed on first read.
    let mut legacy = healed.clone();
    legacy.as_object_mut().unwrap().remove("version");
    legacy.as_object_mut().unwrap().remove("expires_at");
    legacy["status"] = json!("active");
    write_cached(&app, &t.id, &legacy);
    assert_problem(
        app.post_lead(&t.capture_token, &json!({ "email": "d@example.com" }))
            .await,
        403,
        "tenant_suspended",
    )
    .await;
}
