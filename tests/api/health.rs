//! `GET /v1/health` and the migration runner behind it.

use api_tests::{assert_problem, json_body, spawn_app};

fn migration_count() -> i64 {
    std::fs::read_dir(api_tests::workspace_root().join("migrations"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".sql")
        })
        .count() as i64
}

fn applied(db: &std::path::Path) -> Vec<(i64, String, String)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT version, name, applied_at FROM schema_migrations ORDER BY version")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test]
async fn health_reports_ok_and_the_current_schema_version() {
    let app = spawn_app().await;
    let resp = app.client.get(app.url("/v1/health")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body = json_body(resp).await;
    assert_eq!(
        body,
        serde_json::json!({ "status": "ok", "schema_version": migration_count() })
    );
}

#[tokio::test]
async fn concurrent_first_requests_apply_each_migration_exactly_once() {
    let app = spawn_app().await;
    let requests = (0..12).map(|_| app.client.get(app.url("/v1/health")).send());
    for resp in futures_join(requests).await {
        let resp = resp.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(json_body(resp).await["schema_version"], migration_count());
    }
    let rows = applied(&app.database_path());
    let versions: Vec<i64> = rows.iter().map(|r| r.0).collect();
    assert_eq!(versions, (1..=migration_count()).collect::<Vec<_>>());
}

#[tokio::test]
async fn migrations_are_not_applied_again_after_a_restart() {
    let app = spawn_app().await;
    assert_eq!(
        app.client
            .get(app.url("/v1/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let before = applied(&app.database_path());
    let api_tests::SpawnedApp {
        app,
        systeme: _systeme,
    } = app;
    let app = tokio::task::spawn_blocking(move || app.restart())
        .await
        .unwrap();
    assert_eq!(
        app.client
            .get(app.url("/v1/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(applied(&app.database_path()), before);
}

#[tokio::test]
async fn every_migration_statement_was_applied() {
    let app = spawn_app().await;
    app.client.get(app.url("/v1/health")).send().await.unwrap();
    let conn = rusqlite::Connection::open(app.database_path()).unwrap();
    // 0001 has several statements; Spin runs only the first of a string, so each must have
    // been executed on its own.
    let indexes: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name IN ('tenants_email', 'tenants_tag_prefix')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(indexes, 2);
    let signup: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'signup_requests'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(signup, 1);
}

#[tokio::test]
async fn a_wrong_method_is_a_problem_json_405() {
    let app = spawn_app().await;
    let resp = app.client.post(app.url("/v1/health")).send().await.unwrap();
    assert_eq!(resp.headers()["allow"], "GET");
    assert_problem(resp, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn a_path_no_route_matches_is_spins_empty_404() {
    let app = spawn_app().await;
    let resp = app
        .client
        .get(app.url("/no/such/route"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.text().await.unwrap(), "");
}

async fn futures_join<F, T>(futures: impl Iterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}
