//! The files the component serves, compiled in from `components/web/assets/`, each with its
//! content type, its caching class and an `ETag` computed at compile time.

/// Who loads an asset, which decides its security and caching headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// The dashboard page and its files: same origin only, strict CSP, revalidated each load.
    Dashboard,
    /// The form script, loaded by landing pages on any origin and cached briefly.
    Embed,
}

/// One compiled-in file. Invariant: `etag` is the quoted FNV-1a hash of `body`.
#[derive(Debug)]
pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
    pub etag: &'static str,
    pub audience: Audience,
}

/// 64-bit FNV-1a, evaluated by the compiler: enough to tell two builds' files apart.
// Indices stay below the lengths the loops check; this runs at compile time only.
#[allow(clippy::indexing_slicing)]
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}

/// `"` + 16 lowercase hex digits + `"`.
#[allow(clippy::indexing_slicing)]
const fn etag_bytes(bytes: &[u8]) -> [u8; 18] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let hash = fnv1a(bytes);
    let mut out = [b'"'; 18];
    let mut i = 0;
    while i < 16 {
        out[1 + i] = HEX[((hash >> (60 - 4 * i)) & 0xf) as usize];
        i += 1;
    }
    out
}

macro_rules! asset {
    ($path:literal, $file:literal, $content_type:expr, $audience:expr) => {{
        const BODY: &[u8] = include_bytes!(concat!("../assets/", $file));
        const ETAG: [u8; 18] = etag_bytes(BODY);
        Asset {
            path: $path,
            content_type: $content_type,
            body: BODY,
            etag: match std::str::from_utf8(&ETAG) {
                Ok(s) => s,
                Err(_) => "\"0\"",
            },
            audience: $audience,
        }
    }};
}

const JS: &str = "text/javascript; charset=utf-8";

static ASSETS: &[Asset] = &[
    asset!(
        "/app/",
        "index.html",
        "text/html; charset=utf-8",
        Audience::Dashboard
    ),
    asset!(
        "/app/app.css",
        "app.css",
        "text/css; charset=utf-8",
        Audience::Dashboard
    ),
    asset!("/app/app.js", "app.js", JS, Audience::Dashboard),
    asset!("/app/api.js", "api.js", JS, Audience::Dashboard),
    asset!("/app/chart.js", "chart.js", JS, Audience::Dashboard),
    asset!("/app/dom.js", "dom.js", JS, Audience::Dashboard),
    asset!("/app/words.js", "words.js", JS, Audience::Dashboard),
    asset!(
        "/app/favicon.svg",
        "favicon.svg",
        "image/svg+xml",
        Audience::Dashboard
    ),
    asset!("/embed/v1.js", "embed-v1.js", JS, Audience::Embed),
];

/// The asset served at `path`, if any. `/app/index.html` is the page too.
pub fn find(path: &str) -> Option<&'static Asset> {
    let path = if path == "/app/index.html" {
        "/app/"
    } else {
        path
    };
    ASSETS.iter().find(|a| a.path == path)
}
