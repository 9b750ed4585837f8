//! A fake Systeme.io public API on 127.0.0.1 (wiremock underneath).
//!
//! It keeps contacts and tags like the real account does, records every call (method, path,
//! query, headers, body), checks `X-API-Key`, and can be told to fail, rate-limit or hang.
//! Routes: `GET/POST /api/contacts`, `GET /api/contacts/{id}`, `GET/POST /api/tags`,
//! `POST /api/contacts/{id}/tags`, `DELETE /api/contacts/{id}/tags/{tagId}`.
//!
//! By default it behaves like the real API as its public documentation and well-tested
//! integrations describe it, not like a friendly stub:
//! - `GET /api/tags?query=` is a substring search, paged: `limit` 10–100 (default 10, anything
//!   else is a `422`), `startingAfter` the last id seen, `order` `asc` or `desc` (default), and
//!   the answer is `{items, hasMore}`;
//! - a `422` is a Symfony validation error (`detail` plus `violations` with `propertyPath` and
//!   `message`) whose text is translated (French here), so a client matching text fails;
//!   duplicate and invalid emails, unknown tag ids and, when [`FakeSysteme::set_custom_fields`]
//!   says which exist, unknown custom field slugs get one;
//! - duplicate tag names are accepted (whether the real API refuses them is not known, so the
//!   fake takes the case that hurts: only the client can keep a tag single);
//! - assigning a tag the contact already has is a `422` without a property path (not known
//!   either: a client that needs to know reads the contact back);
//! - every answer carries `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Refill`
//!   (a Unix timestamp here; the real unit is not documented).
//!
//! [`php_json`] writes JSON the way Systeme.io's PHP does, for webhook bodies.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::SYSTEME_API_KEY;

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: BTreeMap<String, String>,
    pub body: Value,
    /// The body's length in bytes, as received.
    pub body_len: usize,
}

impl Call {
    /// The first value of query parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How the fake answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// Like the real API.
    Normal,
    /// Every call answers this status (e.g. 503).
    Fail(u16),
    /// Every call answers 429 with `Retry-After` (and the rate-limit headers).
    RateLimit { retry_after: u64 },
    /// Every call answers 429 with no `Retry-After`, only `X-RateLimit-Refill: <refill>`.
    RateLimitRefill { refill: String },
    /// Every call waits this long before answering (a hung upstream).
    Hang(Duration),
    /// About one call in `n` answers 500, picked pseudo-randomly (deterministic per run).
    FailRandomly(u64),
    /// Every call answers 200 with a body that is not JSON.
    Garbage,
}

/// The requests per window the fake's rate-limit headers announce (never enforced).
const RATE_LIMIT: u64 = 1000;

/// Custom contact fields every account has.
const BUILT_IN_FIELDS: &[&str] = &["first_name", "surname", "phone_number"];

#[derive(Debug, Default)]
struct Contact {
    email: String,
    fields: Vec<Value>,
    tags: BTreeSet<i64>,
}

#[derive(Debug)]
struct State {
    mode: Mode,
    contacts: BTreeMap<i64, Contact>,
    tags: BTreeMap<i64, String>,
    /// `None`: any custom field slug is accepted.
    custom_fields: Option<BTreeSet<String>>,
    /// Extra delay per `(method, path)`.
    delays: Vec<(String, String, Duration)>,
    next_id: i64,
    calls: Vec<Call>,
    served: u64,
}

/// The fake; clones share state.
#[derive(Clone)]
pub struct FakeSysteme {
    state: Arc<Mutex<State>>,
    uri: String,
    _server: Arc<MockServer>,
}

struct Responder(Arc<Mutex<State>>);

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A Symfony validation error, as Systeme.io's API Platform answers it.
fn violations(list: &[(&str, String)]) -> ResponseTemplate {
    let detail: Vec<String> = list
        .iter()
        .map(|(path, message)| {
            if path.is_empty() {
                message.clone()
            } else {
                format!("{path}: {message}")
            }
        })
        .collect();
    ResponseTemplate::new(422).set_body_json(json!({
        "type": "https://tools.ietf.org/html/rfc2616#section-10",
        "title": "An error occurred",
        "detail": detail.join("\n"),
        "violations": list
            .iter()
            .map(|(path, message)| json!({"propertyPath": path, "message": message, "code": null}))
            .collect::<Vec<_>>(),
    }))
}

impl Respond for Responder {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut state = self.0.lock().unwrap();
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let call = Call {
            method: req.method.to_string(),
            path: req.url.path().to_string(),
            query: req
                .url
                .query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
            headers: req
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        v.to_str().unwrap_or_default().to_string(),
                    )
                })
                .collect(),
            body,
            body_len: req.body.len(),
        };
        state.calls.push(call.clone());
        state.served += 1;
        let now = unix_now();
        // A window of a minute, refilled at the next whole minute.
        let refill = (now / 60 + 1) * 60;
        let remaining = RATE_LIMIT.saturating_sub(state.served % RATE_LIMIT);
        let limited = |r: ResponseTemplate| {
            r.insert_header("x-ratelimit-limit", RATE_LIMIT.to_string().as_str())
                .insert_header("x-ratelimit-remaining", remaining.to_string().as_str())
                .insert_header("x-ratelimit-refill", refill.to_string().as_str())
        };
        match state.mode.clone() {
            Mode::Normal => {}
            Mode::Fail(status) => return ResponseTemplate::new(status),
            Mode::RateLimit { retry_after } => {
                return ResponseTemplate::new(429)
                    .insert_header("retry-after", retry_after.to_string().as_str())
                    .insert_header("x-ratelimit-limit", RATE_LIMIT.to_string().as_str())
                    .insert_header("x-ratelimit-remaining", "0")
                    .insert_header("x-ratelimit-refill", refill.to_string().as_str());
            }
            Mode::RateLimitRefill { refill } => {
                return ResponseTemplate::new(429)
                    .insert_header("x-ratelimit-limit", RATE_LIMIT.to_string().as_str())
                    .insert_header("x-ratelimit-remaining", "0")
                    .insert_header("x-ratelimit-refill", refill.as_str());
            }
            Mode::Hang(d) => return ResponseTemplate::new(503).set_delay(d),
            Mode::Garbage => {
                return ResponseTemplate::new(200).set_body_string("<html>maintenance</html>");
            }
            Mode::FailRandomly(n) => {
                // splitmix64 of the call number: spread out, reproducible.
                let mut z = state.served.wrapping_add(0x9E37_79B9_7F4A_7C15);
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                if (z ^ (z >> 31)).is_multiple_of(n) {
                    return ResponseTemplate::new(500);
                }
            }
        }
        if call.headers.get("x-api-key").map(String::as_str) != Some(SYSTEME_API_KEY) {
            return ResponseTemplate::new(401).set_body_json(json!({"message": "bad key"}));
        }
        let delay = state
            .delays
            .iter()
            .find(|(m, p, _)| *m == call.method && *p == call.path)
            .map(|(_, _, d)| *d);
        let response = limited(state.handle(&call));
        match delay {
            Some(d) => response.set_delay(d),
            None => response,
        }
    }
}

/// `limit` as the API checks it: 10–100, 10 when absent; `None` when out of range.
fn page_limit(call: &Call) -> Option<usize> {
    match call.param("limit") {
        None => Some(10),
        Some(v) => v.parse::<usize>().ok().filter(|n| (10..=100).contains(n)),
    }
}

fn bad_limit() -> ResponseTemplate {
    violations(&[(
        "limit",
        "Cette valeur doit être comprise entre 10 et 100.".to_string(),
    )])
}

impl State {
    fn id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    fn tag_json(&self, id: i64) -> Value {
        json!({"id": id, "name": self.tags.get(&id).cloned().unwrap_or_default()})
    }

    fn handle(&mut self, call: &Call) -> ResponseTemplate {
        let segments: Vec<&str> = call.path.trim_matches('/').split('/').collect();
        match (call.method.as_str(), segments.as_slice()) {
            ("GET", ["api", "contacts"]) => {
                if page_limit(call).is_none() {
                    return bad_limit();
                }
                let email = call.param("email").unwrap_or_default();
                let items: Vec<Value> = self
                    .contacts
                    .iter()
                    .filter(|(_, c)| c.email == email)
                    .map(|(id, c)| json!({"id": id, "email": c.email}))
                    .collect();
                ResponseTemplate::new(200).set_body_json(json!({"items": items, "hasMore": false}))
            }
            ("GET", ["api", "contacts", id]) => {
                let Some((id, c)) = id
                    .parse::<i64>()
                    .ok()
                    .and_then(|id| self.contacts.get(&id).map(|c| (id, c)))
                else {
                    return ResponseTemplate::new(404);
                };
                let tags: Vec<Value> = c.tags.iter().map(|t| self.tag_json(*t)).collect();
                ResponseTemplate::new(200).set_body_json(json!({
                    "id": id, "email": c.email, "fields": c.fields, "tags": tags,
                    "locale": "fr", "unsubscribed": false, "bounced": false,
                }))
            }
            ("POST", ["api", "contacts"]) => self.create_contact(call),
            ("GET", ["api", "tags"]) => {
                let Some(limit) = page_limit(call) else {
                    return bad_limit();
                };
                let asc = match call.param("order") {
                    None | Some("desc") => false,
                    Some("asc") => true,
                    Some(_) => {
                        return violations(&[(
                            "order",
                            "Cette valeur doit être l'un des choix proposés.".to_string(),
                        )]);
                    }
                };
                let after = call
                    .param("startingAfter")
                    .and_then(|v| v.parse::<i64>().ok());
                let q = call.param("query").unwrap_or_default();
                let mut matching: Vec<i64> = self
                    .tags
                    .iter()
                    .filter(|(_, name)| name.contains(q))
                    .map(|(id, _)| *id)
                    .filter(|id| match (after, asc) {
                        (None, _) => true,
                        (Some(a), true) => *id > a,
                        (Some(a), false) => *id < a,
                    })
                    .collect();
                if !asc {
                    matching.reverse();
                }
                let has_more = matching.len() > limit;
                let items: Vec<Value> = matching
                    .iter()
                    .take(limit)
                    .map(|id| self.tag_json(*id))
                    .collect();
                ResponseTemplate::new(200)
                    .set_body_json(json!({"items": items, "hasMore": has_more}))
            }
            ("POST", ["api", "tags"]) => {
                let Some(name) = call.body["name"]
                    .as_str()
                    .map(str::to_string)
                    .filter(|n| !n.trim().is_empty())
                else {
                    return violations(&[(
                        "name",
                        "Cette valeur ne doit pas être vide.".to_string(),
                    )]);
                };
                let id = self.id();
                self.tags.insert(id, name.clone());
                ResponseTemplate::new(201).set_body_json(json!({"id": id, "name": name}))
            }
            ("POST", ["api", "contacts", contact, "tags"]) => {
                let Some(contact) = contact
                    .parse::<i64>()
                    .ok()
                    .filter(|c| self.contacts.contains_key(c))
                else {
                    return ResponseTemplate::new(404);
                };
                let Some(tag) = call.body["tagId"].as_i64() else {
                    return violations(&[(
                        "tagId",
                        "Cette valeur ne doit pas être nulle.".to_string(),
                    )]);
                };
                if !self.tags.contains_key(&tag) {
                    return violations(&[(
                        "tagId",
                        format!("Le tag avec l'identifiant {tag} est introuvable."),
                    )]);
                }
                let Some(c) = self.contacts.get_mut(&contact) else {
                    return ResponseTemplate::new(404);
                };
                if c.tags.insert(tag) {
                    ResponseTemplate::new(204)
                } else {
                    violations(&[("", "Ce contact a déjà ce tag.".to_string())])
                }
            }
            ("DELETE", ["api", "contacts", contact, "tags", tag]) => {
                let removed = contact
                    .parse::<i64>()
                    .ok()
                    .and_then(|c| self.contacts.get_mut(&c))
                    .zip(tag.parse::<i64>().ok())
                    .is_some_and(|(c, t)| c.tags.remove(&t));
                ResponseTemplate::new(if removed { 204 } else { 404 })
            }
            _ => ResponseTemplate::new(404),
        }
    }

    fn create_contact(&mut self, call: &Call) -> ResponseTemplate {
        let email = call.body["email"].as_str().unwrap_or_default().to_string();
        let mut refused: Vec<(&str, String)> = Vec::new();
        let valid = email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
        if !valid {
            refused.push((
                "email",
                "Cette valeur n'est pas une adresse email valide.".to_string(),
            ));
        } else if self.contacts.values().any(|c| c.email == email) {
            refused.push(("email", "Cette valeur est déjà utilisée.".to_string()));
        }
        let fields = call.body["fields"].as_array().cloned().unwrap_or_default();
        let mut paths = Vec::new();
        if let Some(known) = &self.custom_fields {
            for (i, field) in fields.iter().enumerate() {
                let slug = field["slug"].as_str().unwrap_or_default();
                if !BUILT_IN_FIELDS.contains(&slug) && !known.contains(slug) {
                    paths.push((format!("fields[{i}].slug"), slug.to_string()));
                }
            }
        }
        let paths: Vec<(String, String)> = paths;
        for (path, slug) in &paths {
            refused.push((path.as_str(), format!("Le champ « {slug} » n'existe pas.")));
        }
        if !refused.is_empty() {
            return violations(&refused);
        }
        let id = self.id();
        self.contacts.insert(
            id,
            Contact {
                email: email.clone(),
                fields,
                tags: BTreeSet::new(),
            },
        );
        ResponseTemplate::new(201).set_body_json(json!({"id": id, "email": email}))
    }
}

impl FakeSysteme {
    pub async fn start() -> Self {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(State {
            mode: Mode::Normal,
            contacts: BTreeMap::new(),
            tags: BTreeMap::new(),
            custom_fields: None,
            delays: Vec::new(),
            next_id: 1000,
            calls: Vec::new(),
            served: 0,
        }));
        Mock::given(any())
            .respond_with(Responder(state.clone()))
            .mount(&server)
            .await;
        Self {
            uri: server.uri(),
            state,
            _server: Arc::new(server),
        }
    }

    /// The base URL to give the app as `systeme_api_base`.
    pub fn uri(&self) -> String {
        self.uri.clone()
    }

    pub fn set_mode(&self, mode: Mode) {
        self.state.lock().unwrap().mode = mode;
    }

    /// Which custom contact fields exist (`None`: any slug is accepted, the default). With
    /// `Some`, creating a contact with another slug is a `422` on `fields[i].slug`.
    pub fn set_custom_fields(&self, slugs: Option<&[&str]>) {
        self.state.lock().unwrap().custom_fields =
            slugs.map(|s| s.iter().map(|s| (*s).to_string()).collect());
    }

    /// Every `method path` call waits `delay` before answering (its effect is immediate).
    pub fn delay(&self, method: &str, path: &str, delay: Duration) {
        self.state
            .lock()
            .unwrap()
            .delays
            .push((method.to_string(), path.to_string(), delay));
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    /// The calls so far to `method path`.
    pub fn calls_to(&self, method: &str, path: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == method && c.path == path)
            .collect()
    }

    pub fn clear_calls(&self) {
        self.state.lock().unwrap().calls.clear();
    }

    /// Creates a tag the way an operator would in the Systeme.io UI; returns its id.
    pub fn add_tag(&self, name: &str) -> i64 {
        let mut state = self.state.lock().unwrap();
        let id = state.id();
        state.tags.insert(id, name.to_string());
        id
    }

    /// Deletes every tag called `name` (and takes it off every contact), as an operator would.
    pub fn delete_tag(&self, name: &str) {
        let mut state = self.state.lock().unwrap();
        let ids: Vec<i64> = state
            .tags
            .iter()
            .filter(|(_, n)| *n == name)
            .map(|(id, _)| *id)
            .collect();
        for id in &ids {
            state.tags.remove(id);
        }
        for contact in state.contacts.values_mut() {
            contact.tags.retain(|t| !ids.contains(t));
        }
    }

    /// The ids of every tag called exactly `name`.
    pub fn tag_ids(&self, name: &str) -> Vec<i64> {
        self.state
            .lock()
            .unwrap()
            .tags
            .iter()
            .filter(|(_, n)| *n == name)
            .map(|(id, _)| *id)
            .collect()
    }

    /// The tag names of the contact with this email; `None` if there is no such contact.
    pub fn contact_tags(&self, email: &str) -> Option<BTreeSet<String>> {
        let state = self.state.lock().unwrap();
        let contact = state.contacts.values().find(|c| c.email == email)?;
        Some(
            contact
                .tags
                .iter()
                .filter_map(|id| state.tags.get(id).cloned())
                .collect(),
        )
    }

    /// The custom fields the contact was created with.
    pub fn contact_fields(&self, email: &str) -> Option<Vec<Value>> {
        let state = self.state.lock().unwrap();
        Some(
            state
                .contacts
                .values()
                .find(|c| c.email == email)?
                .fields
                .clone(),
        )
    }

    /// How many contacts exist.
    pub fn contact_count(&self) -> usize {
        self.state.lock().unwrap().contacts.len()
    }

    /// Every tag name that exists.
    pub fn tag_names(&self) -> BTreeSet<String> {
        self.state.lock().unwrap().tags.values().cloned().collect()
    }

    /// How many tags exist, duplicates included.
    pub fn tag_count(&self) -> usize {
        self.state.lock().unwrap().tags.len()
    }
}

/// `value` as PHP's `json_encode` writes it by default: `/` escaped as `\/` and every
/// non-ASCII character as `\uXXXX` (floats keep their `.0`, as serde_json writes them too).
pub fn php_json(value: &Value) -> String {
    let plain = serde_json::to_string(value).unwrap();
    let mut out = String::with_capacity(plain.len() + 16);
    let mut in_string = false;
    let mut escaped = false;
    for ch in plain.chars() {
        if in_string {
            if escaped {
                escaped = false;
                out.push(ch);
                continue;
            }
            match ch {
                '\\' => {
                    escaped = true;
                    out.push(ch);
                }
                '"' => {
                    in_string = false;
                    out.push(ch);
                }
                '/' => out.push_str("\\/"),
                c if !c.is_ascii() => {
                    let mut units = [0u16; 2];
                    for unit in c.encode_utf16(&mut units) {
                        out.push_str(&format!("\\u{unit:04x}"));
                    }
                }
                c => out.push(c),
            }
        } else {
            if ch == '"' {
                in_string = true;
            }
            out.push(ch);
        }
    }
    out
}
