//! Secrets: wrapped so that `Debug` never prints them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use thiserror::Error;

/// A secret that can be misconfigured.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("{name} must be at least {min} bytes long")]
    TooShort { name: &'static str, min: usize },
    #[error("{name} must be `whsec_` followed by base64")]
    NotWhsec { name: &'static str },
    #[error("{name} is empty")]
    Empty { name: &'static str },
    #[error("{name} {why}")]
    Malformed {
        name: &'static str,
        why: &'static str,
    },
    #[error("{name} is an example value published in the repository; set a secret of your own")]
    PublishedExample { name: &'static str },
}

/// The secret values the repository publishes (the placeholders of `deploy/spinkube`'s
/// `*.example` files, values earlier manifests shipped, and the Standard Webhooks
/// specification's example secret). Anyone can read them, so the app refuses to run with any of
/// them as a secret: `/v1/health` answers `503 insecure_secret` and every route that needs the
/// secret fails. `tests/api/deploy.rs` checks that every value of the `*.example` files is here.
pub const PUBLISHED_EXAMPLE_SECRETS: &[&str] = &[
    // deploy/spinkube/overlays/*/secrets.env.example
    "replace-with-48-random-bytes-for-token-secret-openssl-rand-base64-48",
    "replace-with-48-random-bytes-for-admin-token-secret-openssl-rand-base64-48",
    "whsec_cmVwbGFjZS13aXRoLXRoZS1zYWFzLWJhY2stZW5kcy1zaWdudXAtc2VjcmV0",
    "replace-with-the-secret-of-the-systeme-io-webhook",
    // deploy/spinkube/overlays/*/sync.env.example
    "replace-with-an-admin-token-minted-by-cfe-ops",
    // The Secret manifests deploy/spinkube shipped before it used generated Secrets.
    "replace-with-at-least-32-random-bytes-for-tenant-tokens",
    "replace-with-at-least-32-random-bytes-for-admin-tokens",
    "whsec_cmVwbGFjZS13aXRoLXRoZS1zaWdudXAtc2VjcmV0",
    "replace-with-the-systeme-webhook-secret",
    "replace-with-an-admin-token",
    // The example secret of the Standard Webhooks specification.
    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
];

/// Refuses `value` as the secret `name` when the repository publishes it: one of
/// [`PUBLISHED_EXAMPLE_SECRETS`], or any value still starting with the placeholder prefix
/// `replace-with-` that the example files use.
pub fn refuse_published(name: &'static str, value: &str) -> Result<(), SecretError> {
    let value = value.trim();
    if value.starts_with("replace-with-") || PUBLISHED_EXAMPLE_SECRETS.contains(&value) {
        return Err(SecretError::PublishedExample { name });
    }
    Ok(())
}

/// Secret bytes. Invariant: never printed, non-empty.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(Vec<u8>);

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBytes(<redacted>)")
    }
}

impl SecretBytes {
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

/// An HMAC key of tokens: `token_secret` (capture and dashboard tokens) or
/// `admin_token_secret` (admin tokens). Invariant: at least 32 bytes.
#[derive(Clone, Debug)]
pub struct TokenSecret(SecretBytes);

impl TokenSecret {
    pub const MIN_LEN: usize = 32;

    /// `token_secret`.
    pub fn parse(value: &str) -> Result<Self, SecretError> {
        Self::parse_named("token_secret", value)
    }

    /// A token key from the variable `name` (named in the error).
    pub fn parse_named(name: &'static str, value: &str) -> Result<Self, SecretError> {
        if value.len() < Self::MIN_LEN {
            return Err(SecretError::TooShort {
                name,
                min: Self::MIN_LEN,
            });
        }
        Ok(Self(SecretBytes(value.as_bytes().to_vec())))
    }

    pub fn key(&self) -> &[u8] {
        self.0.expose()
    }
}

/// `signup_secret`: a Standard Webhooks secret, `whsec_` + base64 of the key bytes.
#[derive(Clone, Debug)]
pub struct WebhookSecret(SecretBytes);

impl WebhookSecret {
    pub fn parse(value: &str) -> Result<Self, SecretError> {
        let b64 = value.strip_prefix("whsec_").ok_or(SecretError::NotWhsec {
            name: "signup_secret",
        })?;
        let key = STANDARD.decode(b64).map_err(|_| SecretError::NotWhsec {
            name: "signup_secret",
        })?;
        if key.is_empty() {
            return Err(SecretError::Empty {
                name: "signup_secret",
            });
        }
        Ok(Self(SecretBytes(key)))
    }

    pub fn key(&self) -> &[u8] {
        self.0.expose()
    }
}

/// `systeme_webhook_secret`: the secret of the Systeme.io webhook. Invariant: non-empty.
#[derive(Clone, Debug)]
pub struct SystemeSecret(SecretBytes);

impl SystemeSecret {
    pub fn parse(value: &str) -> Result<Self, SecretError> {
        if value.is_empty() {
            return Err(SecretError::Empty {
                name: "systeme_webhook_secret",
            });
        }
        Ok(Self(SecretBytes(value.as_bytes().to_vec())))
    }

    pub fn key(&self) -> &[u8] {
        self.0.expose()
    }
}

/// The Systeme.io public API key. Invariant: non-empty, printable ASCII, no spaces.
/// An empty `systeme_api_key` means "syncing is off", so it never becomes one of these.
pub struct SystemeApiKey(String);

impl std::fmt::Debug for SystemeApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SystemeApiKey(<redacted>)")
    }
}

impl SystemeApiKey {
    /// `Ok(None)` for an empty (or blank) value: syncing is off.
    pub fn parse(value: &str) -> Result<Option<Self>, SecretError> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(None);
        }
        if !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(SecretError::Malformed {
                name: "systeme_api_key",
                why: "must be printable ASCII without spaces",
            });
        }
        Ok(Some(Self(value.to_string())))
    }

    /// The key, for the `X-API-Key` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_contains_the_secret() {
        let secret = TokenSecret::parse("a-very-secret-value-of-32-bytes!!").unwrap();
        assert!(!format!("{secret:?}").contains("very-secret"));
    }

    #[test]
    fn token_secret_shorter_than_32_bytes_is_refused() {
        assert!(TokenSecret::parse("short").is_err());
    }

    #[test]
    fn a_short_admin_token_secret_is_refused_by_its_own_name() {
        assert_eq!(
            TokenSecret::parse_named("admin_token_secret", "short").err(),
            Some(SecretError::TooShort {
                name: "admin_token_secret",
                min: 32
            })
        );
    }

    #[test]
    fn published_example_values_are_refused_by_name() {
        for value in PUBLISHED_EXAMPLE_SECRETS {
            assert_eq!(
                refuse_published("token_secret", value),
                Err(SecretError::PublishedExample {
                    name: "token_secret"
                })
            );
        }
        assert!(refuse_published("admin_token_secret", "replace-with-something-else").is_err());
        assert!(refuse_published("token_secret", "k3Jd9sQ2xV7mN4pL8wR1tY6uE0aZ5cB3").is_ok());
    }

    #[test]
    fn signup_secret_must_be_whsec_base64() {
        assert!(WebhookSecret::parse("whsec_aGVsbG8=").is_ok());
        assert!(WebhookSecret::parse("aGVsbG8=").is_err());
        assert!(WebhookSecret::parse("whsec_not base64!").is_err());
        assert!(WebhookSecret::parse("whsec_").is_err());
    }
}
