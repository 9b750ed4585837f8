//! The `web` component over plain HTTP: every file of the dashboard page and the form script,
//! their content types, the page's strict CSP, caching, and what any other path or method gets.
//! What the page does with them is tested in a real browser (`tests/browser`).

use api_tests::{assert_problem, spawn_app};

/// Every path the `web` component serves (the isolation helper fetches each one too).
pub fn web_routes() -> [&'static str; 9] {
    [
        "/app/",
        "/app/app.js",
        "/app/api.js",
        "/app/chart.js",
        "/app/dom.js",
        "/app/words.js",
        "/app/app.css",
        "/app/favicon.svg",
        "/embed/v1.js",
    ]
}

fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn the_page_and_its_files_are_served_with_a_strict_csp_and_nothing_external() {
    let app = spawn_app().await;
    for path in web_routes() {
        let resp = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let content_type = header(&resp, "content-type");
        let expected = match path.rsplit('.').next() {
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("svg") => "image/svg+xml",
            _ => "text/html; charset=utf-8",
        };
        assert_eq!(content_type, expected, "{path}");
        assert_eq!(header(&resp, "x-content-type-options"), "nosniff", "{path}");
        let etag = header(&resp, "etag");
        assert!(etag.starts_with('"') && etag.len() == 18, "{path}: {etag}");
        let embed = path.starts_with("/embed/");
        let csp = header(&resp, "content-security-policy");
        if embed {
            assert_eq!(header(&resp, "access-control-allow-origin"), "*");
        } else {
            assert!(csp.starts_with("default-src 'self';"), "{path}: {csp}");
            assert!(!csp.contains("unsafe"), "{path}: {csp}");
        }
        let body = resp.text().await.unwrap();
        // No CDN, no external font: nothing is loaded from anywhere else.
        for external in ["src=\"http", "href=\"http", "url(", "@import", "fonts."] {
            assert!(!body.contains(external), "{path} loads {external}");
        }
        if path == "/app/" {
            assert!(!body.contains("<style"), "inline style in the page");
            assert!(
                !body.contains(" style="),
                "inline style attribute in the page"
            );
            assert!(
                body.lines()
                    .filter(|l| l.contains("<script"))
                    .all(|l| l.contains(" src=")),
                "inline script in the page"
            );
        }
        // A revalidation with the same ETag is a 304 without a body.
        let again = app
            .client
            .get(app.url(path))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path}");
    }
}

#[tokio::test]
async fn other_paths_and_methods_are_problems_and_app_without_a_slash_redirects() {
    let app = spawn_app().await;
    let bare = app.client.get(app.url("/app")).send().await.unwrap();
    assert_eq!(bare.status(), 308);
    assert_eq!(header(&bare, "location"), "/app/");
    assert_problem(
        app.client
            .get(app.url("/app/missing.js"))
            .send()
            .await
            .unwrap(),
        404,
        "route_not_found",
    )
    .await;
    assert_problem(
        app.client.post(app.url("/app/")).send().await.unwrap(),
        405,
        "method_not_allowed",
    )
    .await;
    let head = app
        .client
        .head(app.url("/embed/v1.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
}
