//! A fake Systeme.io public API on 127.0.0.1 (wiremock underneath).
//!
//! It keeps contacts and tags like the real account does, records every call (method, path,
//! query, headers, body), checks `X-API-Key`, and can be told to fail, rate-limit or hang.
//! Routes: `GET/POST /api/contacts`, `GET/POST /api/tags`, `POST /api/contacts/{id}/tags`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
}

/// How the fake answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Like the real API.
    Normal,
    /// Every call answers this status (e.g. 503).
    Fail(u16),
    /// Every call answers 429 with `Retry-After`.
    RateLimit { retry_after: u64 },
    /// Every call waits this long before answering (a hung upstream).
    Hang(Duration),
    /// About one call in `n` answers 500, picked pseudo-randomly (deterministic per run).
    FailRandomly(u64),
    /// Every call answers 200 with a body that is not JSON.
    Garbage,
}

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
        };
        state.calls.push(call.clone());
        state.served += 1;
        match state.mode {
            Mode::Normal => {}
            Mode::Fail(status) => return ResponseTemplate::new(status),
            Mode::RateLimit { retry_after } => {
                return ResponseTemplate::new(429)
                    .insert_header("retry-after", retry_after.to_string().as_str());
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
        state.handle(&call)
    }
}

impl State {
    fn id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    fn handle(&mut self, call: &Call) -> ResponseTemplate {
        let query = |k: &str| {
            call.query
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        let segments: Vec<&str> = call.path.trim_matches('/').split('/').collect();
        match (call.method.as_str(), segments.as_slice()) {
            ("GET", ["api", "contacts"]) => {
                let email = query("email").unwrap_or_default();
                let items: Vec<Value> = self
                    .contacts
                    .iter()
                    .filter(|(_, c)| c.email == email)
                    .map(|(id, c)| json!({"id": id, "email": c.email}))
                    .collect();
                ResponseTemplate::new(200).set_body_json(json!({"items": items, "hasMore": false}))
            }
            ("POST", ["api", "contacts"]) => {
                let Some(email) = call.body["email"].as_str() else {
                    return ResponseTemplate::new(422);
                };
                if self.contacts.values().any(|c| c.email == email) {
                    return ResponseTemplate::new(422)
                        .set_body_json(json!({"detail": "email: This value is already used."}));
                }
                let id = self.id();
                self.contacts.insert(
                    id,
                    Contact {
                        email: email.to_string(),
                        fields: call.body["fields"].as_array().cloned().unwrap_or_default(),
                        tags: BTreeSet::new(),
                    },
                );
                ResponseTemplate::new(201).set_body_json(json!({"id": id, "email": email}))
            }
            ("GET", ["api", "tags"]) => {
                let q = query("query").unwrap_or_default();
                let items: Vec<Value> = self
                    .tags
                    .iter()
                    .filter(|(_, name)| name.contains(&q))
                    .map(|(id, name)| json!({"id": id, "name": name}))
                    .collect();
                ResponseTemplate::new(200).set_body_json(json!({"items": items}))
            }
            ("POST", ["api", "tags"]) => {
                let Some(name) = call.body["name"].as_str().map(str::to_string) else {
                    return ResponseTemplate::new(422);
                };
                if self.tags.values().any(|n| *n == name) {
                    return ResponseTemplate::new(422);
                }
                let id = self.id();
                self.tags.insert(id, name.clone());
                ResponseTemplate::new(201).set_body_json(json!({"id": id, "name": name}))
            }
            ("POST", ["api", "contacts", contact, "tags"]) => {
                let Ok(contact) = contact.parse::<i64>() else {
                    return ResponseTemplate::new(404);
                };
                let Some(tag) = call.body["tagId"].as_i64() else {
                    return ResponseTemplate::new(422);
                };
                if !self.tags.contains_key(&tag) {
                    return ResponseTemplate::new(404);
                }
                match self.contacts.get_mut(&contact) {
                    Some(c) => {
                        c.tags.insert(tag);
                        ResponseTemplate::new(204)
                    }
                    None => ResponseTemplate::new(404),
                }
            }
            _ => ResponseTemplate::new(404),
        }
    }
}

impl FakeSysteme {
    pub async fn start() -> Self {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(State {
            mode: Mode::Normal,
            contacts: BTreeMap::new(),
            tags: BTreeMap::new(),
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

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    pub fn clear_calls(&self) {
        self.state.lock().unwrap().calls.clear();
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
}
