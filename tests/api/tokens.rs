//! Token rules that keep one credential from standing in for another: admin tokens have their
//! own secret, `nbf` is honoured, and dashboard and admin tokens have a maximum lifetime.

use api_tests::{
    AppSpec, TOKEN_SECRET, admin_token, assert_problem, mint, mint_admin, now, spawn_app,
    spawn_expecting_failure,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::token::{Claims, MAX_ADMIN_LIFETIME_SECS, MAX_DASHBOARD_LIFETIME_SECS, Scope};
use serde_json::json;

/// An HS256 token over any JSON claims, signed with `key`.
fn sign(claims: &serde_json::Value, key: &str) -> String {
    use hmac::{Hmac, Mac};
    let h = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
    let p = URL_SAFE_NO_PAD.encode(claims.to_string());
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(format!("{h}.{p}").as_bytes());
    format!(
        "{h}.{p}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

fn admin_claims(exp: i64) -> Claims {
    Claims {
        sub: None,
        scope: Scope::Admin,
        exp: Some(exp),
        generation: None,
    }
}

#[tokio::test]
async fn an_admin_token_signed_with_the_tenant_token_secret_is_refused() {
    let app = spawn_app().await;
    // What the SaaS back end, which holds token_secret to mint dashboard tokens, could forge.
    let forged = mint(&admin_claims(now() + 600));
    for (method, path) in [
        (reqwest::Method::GET, "/v1/admin/tenants"),
        (reqwest::Method::POST, "/v1/admin/sync"),
    ] {
        let resp = app
            .client
            .request(method.clone(), app.url(path))
            .bearer_auth(&forged)
            .send()
            .await
            .unwrap();
        assert_problem(resp, 401, "token_signature").await;
        let resp = app
            .client
            .request(method, app.url(path))
            .bearer_auth(admin_token())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path} with a real admin token");
    }
}

#[tokio::test]
async fn a_tenant_token_on_an_admin_route_is_still_the_wrong_scope() {
    let app = spawn_app().await;
    let t = app.create_tenant("Scope Check").await;
    for token in [t.capture_token.clone(), t.dashboard_token()] {
        let resp = app
            .client
            .get(app.url("/v1/admin/tenants"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_problem(resp, 403, "token_scope").await;
    }
}

#[tokio::test]
async fn a_token_not_valid_yet_is_refused_with_its_own_code() {
    let app = spawn_app().await;
    let t = app.create_tenant("Not Yet").await;
    let dashboard = |nbf: i64| {
        sign(
            &json!({ "sub": t.id, "scope": "dashboard", "exp": now() + 600, "nbf": nbf }),
            TOKEN_SECRET,
        )
    };
    let send = |token: String| {
        app.client
            .get(app.url("/v1/dashboard/settings"))
            .bearer_auth(token)
            .send()
    };
    assert_problem(
        send(dashboard(now() + 300)).await.unwrap(),
        401,
        "token_not_yet_valid",
    )
    .await;
    assert_eq!(send(dashboard(now() - 5)).await.unwrap().status(), 200);

    let admin = sign(
        &json!({ "scope": "admin", "exp": now() + 600, "nbf": now() + 300 }),
        api_tests::ADMIN_TOKEN_SECRET,
    );
    let resp = app
        .client
        .get(app.url("/v1/admin/tenants"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_problem(resp, 401, "token_not_yet_valid").await;

    let capture = sign(
        &json!({ "sub": t.id, "scope": "capture", "gen": 1, "nbf": now() + 300 }),
        TOKEN_SECRET,
    );
    let resp = app
        .post_lead(&capture, &json!({ "email": "early@example.com" }))
        .await;
    assert_problem(resp, 401, "token_not_yet_valid").await;
    assert_eq!(app.lead_count(&t.id), 0);
}

#[tokio::test]
async fn dashboard_and_admin_tokens_cannot_outlive_their_maximum() {
    let app = spawn_app().await;
    let t = app.create_tenant("Long Lived").await;
    let dashboard = |exp: i64| {
        mint(&Claims {
            sub: Some(t.id.clone()),
            scope: Scope::Dashboard,
            exp: Some(exp),
            generation: None,
        })
    };
    let settings = |token: String| {
        app.client
            .get(app.url("/v1/dashboard/settings"))
            .bearer_auth(token)
            .send()
    };
    let year = 365 * 24 * 60 * 60;
    assert_problem(
        settings(dashboard(now() + year)).await.unwrap(),
        401,
        "token_lifetime",
    )
    .await;
    assert_problem(
        settings(dashboard(now() + MAX_DASHBOARD_LIFETIME_SECS + 120))
            .await
            .unwrap(),
        401,
        "token_lifetime",
    )
    .await;
    // A token that says it was issued long ago stays refused near its end, too.
    let old = sign(
        &json!({ "sub": t.id, "scope": "dashboard", "exp": now() + 600,
                 "iat": now() + 600 - MAX_DASHBOARD_LIFETIME_SECS - 120 }),
        TOKEN_SECRET,
    );
    assert_problem(settings(old).await.unwrap(), 401, "token_lifetime").await;
    assert_eq!(
        settings(dashboard(now() + MAX_DASHBOARD_LIFETIME_SECS - 120))
            .await
            .unwrap()
            .status(),
        200
    );

    let admin = |exp: i64| {
        app.client
            .get(app.url("/v1/admin/tenants"))
            .bearer_auth(mint_admin(&admin_claims(exp)))
            .send()
    };
    assert_problem(
        admin(now() + MAX_ADMIN_LIFETIME_SECS + 120).await.unwrap(),
        401,
        "token_lifetime",
    )
    .await;
    assert_eq!(
        admin(now() + MAX_ADMIN_LIFETIME_SECS - 120)
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn the_app_does_not_start_without_an_admin_token_secret() {
    let spec =
        AppSpec::clientflow("http://127.0.0.1:9").without_env("SPIN_VARIABLE_ADMIN_TOKEN_SECRET");
    let failure = tokio::task::spawn_blocking(move || spawn_expecting_failure(&spec))
        .await
        .unwrap();
    assert!(
        failure.stderr.contains("admin_token_secret"),
        "the start-up error names the variable: {}",
        failure.stderr
    );
}
