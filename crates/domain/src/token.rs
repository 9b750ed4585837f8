//! Tokens: JWT (RFC 7519) signed HS256, capture and dashboard tokens with `token_secret`, admin
//! tokens with `admin_token_secret` (see docs/contract.md). The caller picks the secret.
//!
//! Verification order: size, shape, header (`alg` must be exactly `HS256`), signature (checked
//! in constant time by `hmac`), then claims: scope, `exp`, `nbf`, `iat`, lifetime, `sub`, `gen`.
//! Nothing from the payload is trusted before the signature is. The time claims allow
//! [`CLOCK_SKEW_SECS`] of disagreement between the minting clock and this one.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use thiserror::Error;

use crate::secret::TokenSecret;
use crate::tenant::TenantId;

type HmacSha256 = Hmac<Sha256>;

/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The longest a dashboard token may still be valid for: a working day for a logged-in IB, so
/// a leaked one is worth little; the SaaS back end mints a new one at each login.
pub const MAX_DASHBOARD_LIFETIME_SECS: i64 = 24 * 60 * 60;

/// The longest an admin token may still be valid for: 90 days, so a scheduled batch sync can
/// hold one for a quarter and an operator renews it, and a forgotten one dies by itself.
pub const MAX_ADMIN_LIFETIME_SECS: i64 = 90 * 24 * 60 * 60;

/// How far the clock that minted a token (the SaaS back end's, the operator's) may be from this
/// one: `exp` is honoured this long after it passes, `nbf` and `iat` this long before they come,
/// and `exp - now` may exceed the scope's maximum lifetime by this much. `exp - iat` compares two
/// times from the same clock and gets no leeway.
pub const CLOCK_SKEW_SECS: i64 = 60;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Publishable, embedded in landing pages: can only create leads.
    Capture,
    /// Short-lived, minted by the SaaS back end for a logged-in IB.
    Dashboard,
    /// The platform operator; no tenant.
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Capture => "capture",
            Self::Dashboard => "dashboard",
            Self::Admin => "admin",
        }
    }
}

/// Why a token was refused.
#[derive(Debug, Error, PartialEq, Eq, Clone)]
pub enum TokenError {
    #[error("the token is longer than {MAX_TOKEN_LEN} bytes")]
    TooLarge,
    #[error("the token is not a JWT (three base64url segments with JSON header and payload)")]
    Malformed,
    #[error("only HS256 tokens are accepted")]
    UnsupportedAlgorithm,
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (its nbf or iat is in the future)")]
    NotYetValid,
    #[error("the token is valid for longer than a {scope} token may be ({max_secs} s)")]
    LifetimeTooLong { scope: &'static str, max_secs: i64 },
    #[error("the token lacks a required claim or has an invalid one: {0}")]
    InvalidClaims(&'static str),
    #[error("this route needs a {needed} token, not a {got} token")]
    WrongScope {
        needed: &'static str,
        got: &'static str,
    },
}

impl TokenError {
    /// The stable problem code for this failure.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge => "token_too_large",
            Self::Malformed => "token_malformed",
            Self::UnsupportedAlgorithm => "token_algorithm",
            Self::BadSignature => "token_signature",
            Self::Expired => "token_expired",
            Self::NotYetValid => "token_not_yet_valid",
            Self::LifetimeTooLong { .. } => "token_lifetime",
            Self::InvalidClaims(_) => "token_claims",
            Self::WrongScope { .. } => "token_scope",
        }
    }
}

/// The claims of a tenant token, as written on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    pub scope: Scope,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// The `gen` claim: the capture-key generation.
    #[serde(rename = "gen", skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
}

/// The time claims that [`Claims`] does not carry (the app never mints them; the SaaS back end's
/// JWT library may), read from the same verified payload.
#[derive(Deserialize)]
struct TimeClaims {
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    iat: Option<i64>,
}

impl Scope {
    /// How long a token of this scope may still be valid for; `None` for capture tokens, which
    /// are revoked by rotation instead.
    pub fn max_lifetime_secs(self) -> Option<i64> {
        match self {
            Self::Capture => None,
            Self::Dashboard => Some(MAX_DASHBOARD_LIFETIME_SECS),
            Self::Admin => Some(MAX_ADMIN_LIFETIME_SECS),
        }
    }
}

/// A token whose signature, scope, `exp`, `nbf`, `iat` and lifetime have been checked. Its tenant (if any) must still
/// be looked up: existence, status and, for capture tokens, the key generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    pub scope: Scope,
    /// `None` only for admin tokens.
    pub tenant: Option<TenantId>,
    /// The capture-key generation; `Some` exactly for capture tokens.
    pub generation: Option<i64>,
    /// The `exp` claim; `Some` for every dashboard and admin token.
    pub expires_at: Option<i64>,
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<String>,
}

fn mac(secret: &TokenSecret) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    match HmacSha256::new_from_slice(secret.key()) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC-SHA256 takes keys of any length"),
    }
}

/// Mints a token. Used by tests, the operator CLI and capture-key issuance.
pub fn mint(secret: &TokenSecret, claims: &Claims) -> String {
    let header = Header {
        alg: "HS256".into(),
        typ: Some("JWT".into()),
    };
    let header = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap_or_default());
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    let signing_input = format!("{header}.{payload}");
    let mut mac = mac(secret);
    mac.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

/// Verifies a token for a route that needs `needed`, at unix time `now`.
pub fn verify(
    secret: &TokenSecret,
    token: &str,
    needed: Scope,
    now: i64,
) -> Result<VerifiedToken, TokenError> {
    let payload = signed_payload(secret, token)?;
    let claims: Claims =
        serde_json::from_slice(&payload).map_err(|_| TokenError::InvalidClaims("scope"))?;
    if claims.scope != needed {
        return Err(TokenError::WrongScope {
            needed: needed.as_str(),
            got: claims.scope.as_str(),
        });
    }
    check_times(&claims, &payload, now)?;
    let tenant = match (claims.scope, claims.sub.as_deref()) {
        (Scope::Admin, _) => None,
        (_, Some(sub)) => Some(TenantId::parse(sub).map_err(|_| TokenError::InvalidClaims("sub"))?),
        (_, None) => return Err(TokenError::InvalidClaims("sub")),
    };
    let generation = match claims.scope {
        Scope::Capture => Some(
            claims
                .generation
                .filter(|g| *g >= 1)
                .ok_or(TokenError::InvalidClaims("gen"))?,
        ),
        _ => None,
    };
    Ok(VerifiedToken {
        scope: claims.scope,
        tenant,
        generation,
        expires_at: claims.exp,
    })
}

/// The payload of a well-formed HS256 token whose signature `secret` made; nothing of the
/// payload is read before the signature holds.
fn signed_payload(secret: &TokenSecret, token: &str) -> Result<Vec<u8>, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let header_json = URL_SAFE_NO_PAD
        .decode(header_b64)
        .map_err(|_| TokenError::Malformed)?;
    let header: Header = serde_json::from_slice(&header_json).map_err(|_| TokenError::Malformed)?;
    if header.alg != "HS256" {
        return Err(TokenError::UnsupportedAlgorithm);
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| TokenError::Malformed)?;
    let mut mac = mac(secret);
    mac.update(header_b64.as_bytes());
    mac.update(b".");
    mac.update(payload_b64.as_bytes());
    mac.verify_slice(&signature)
        .map_err(|_| TokenError::BadSignature)?;
    URL_SAFE_NO_PAD
        .decode(payload_b64)
        .map_err(|_| TokenError::Malformed)
}

/// Expiry, then not-before and lifetime (the time claims read from `payload`) at unix time
/// `now`, each with the clock-skew leeway.
fn check_times(claims: &Claims, payload: &[u8], now: i64) -> Result<(), TokenError> {
    match (claims.exp, claims.scope) {
        (None, Scope::Dashboard | Scope::Admin) => return Err(TokenError::InvalidClaims("exp")),
        (Some(exp), _) if exp <= now.saturating_sub(CLOCK_SKEW_SECS) => {
            return Err(TokenError::Expired);
        }
        _ => {}
    }
    let times: TimeClaims =
        serde_json::from_slice(payload).map_err(|_| TokenError::InvalidClaims("nbf"))?;
    let ahead = |t: i64| t > now.saturating_add(CLOCK_SKEW_SECS);
    if times.nbf.is_some_and(ahead) || times.iat.is_some_and(ahead) {
        return Err(TokenError::NotYetValid);
    }
    // The lifetime is measured from now (`exp - now`, with the clock-skew leeway), which holds
    // whatever `iat` says, so a token minted too long is refused from its first use; a token
    // that states `iat` is also held to `exp - iat`, so an over-long one stays refused in its
    // last hours too.
    if let (Some(max), Some(exp)) = (claims.scope.max_lifetime_secs(), claims.exp) {
        let from_now = exp.saturating_sub(now) > max.saturating_add(CLOCK_SKEW_SECS);
        let from_iat = times.iat.is_some_and(|iat| exp.saturating_sub(iat) > max);
        if from_now || from_iat {
            return Err(TokenError::LifetimeTooLong {
                scope: claims.scope.as_str(),
                max_secs: max,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: i64 = 1_800_000_000;
    const TENANT: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";

    fn secret() -> TokenSecret {
        TokenSecret::parse("test-secret-test-secret-test-secret-0123").unwrap()
    }

    fn other_secret() -> TokenSecret {
        TokenSecret::parse("another-secret-another-secret-another-99").unwrap()
    }

    fn dashboard() -> Claims {
        Claims {
            sub: Some(TENANT.into()),
            scope: Scope::Dashboard,
            exp: Some(NOW + 600),
            generation: None,
        }
    }

    fn capture(generation: i64) -> Claims {
        Claims {
            sub: Some(TENANT.into()),
            scope: Scope::Capture,
            exp: None,
            generation: Some(generation),
        }
    }

    fn with_header(header: &str, claims: &Claims, key: &TokenSecret) -> String {
        let h = URL_SAFE_NO_PAD.encode(header);
        let p = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap());
        let mut m = mac(key);
        m.update(format!("{h}.{p}").as_bytes());
        format!(
            "{h}.{p}.{}",
            URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
        )
    }

    fn raw_payload(payload: &str) -> String {
        let h = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
        let p = URL_SAFE_NO_PAD.encode(payload);
        let mut m = mac(&secret());
        m.update(format!("{h}.{p}").as_bytes());
        format!(
            "{h}.{p}.{}",
            URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
        )
    }

    #[test]
    fn a_minted_dashboard_token_verifies() {
        let token = mint(&secret(), &dashboard());
        let verified = verify(&secret(), &token, Scope::Dashboard, NOW).unwrap();
        assert_eq!(
            verified.tenant.map(|t| t.to_string()).as_deref(),
            Some(TENANT)
        );
        assert_eq!(verified.generation, None);
    }

    #[test]
    fn a_capture_token_carries_its_generation() {
        let token = mint(&secret(), &capture(3));
        assert_eq!(
            verify(&secret(), &token, Scope::Capture, NOW)
                .unwrap()
                .generation,
            Some(3)
        );
    }

    #[test]
    fn alg_none_is_refused() {
        let token = with_header(r#"{"alg":"none","typ":"JWT"}"#, &dashboard(), &secret());
        assert_eq!(
            verify(&secret(), &token, Scope::Dashboard, NOW),
            Err(TokenError::UnsupportedAlgorithm)
        );
        let unsigned = format!("{}.", token.rsplit_once('.').unwrap().0);
        assert_eq!(
            verify(&secret(), &unsigned, Scope::Dashboard, NOW),
            Err(TokenError::UnsupportedAlgorithm)
        );
    }

    #[test]
    fn hs384_hs512_and_rs256_headers_are_refused() {
        for alg in ["HS384", "HS512", "RS256", "hs256"] {
            let token = with_header(&format!(r#"{{"alg":"{alg}"}}"#), &dashboard(), &secret());
            assert_eq!(
                verify(&secret(), &token, Scope::Dashboard, NOW),
                Err(TokenError::UnsupportedAlgorithm),
                "{alg}"
            );
        }
    }

    #[test]
    fn a_tampered_header_fails_the_signature() {
        let token = mint(&secret(), &dashboard());
        let (_, rest) = token.split_once('.').unwrap();
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWS"}"#);
        assert_eq!(
            verify(
                &secret(),
                &format!("{header}.{rest}"),
                Scope::Dashboard,
                NOW
            ),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn a_tampered_payload_fails_the_signature() {
        let token = mint(&secret(), &dashboard());
        let parts: Vec<&str> = token.split('.').collect();
        let mut claims = dashboard();
        claims.sub = Some("6ba7b810-9dad-11d1-80b4-00c04fd430c8".into());
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
        let forged = format!("{}.{payload}.{}", parts[0], parts[2]);
        assert_eq!(
            verify(&secret(), &forged, Scope::Dashboard, NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn a_tampered_signature_fails() {
        let token = mint(&secret(), &dashboard());
        let (input, sig) = token.rsplit_once('.').unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(sig).unwrap();
        bytes[0] ^= 1;
        let forged = format!("{input}.{}", URL_SAFE_NO_PAD.encode(bytes));
        assert_eq!(
            verify(&secret(), &forged, Scope::Dashboard, NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn a_token_signed_with_another_key_is_refused() {
        let token = mint(&other_secret(), &dashboard());
        assert_eq!(
            verify(&secret(), &token, Scope::Dashboard, NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn an_expired_token_is_refused_once_the_skew_leeway_has_passed() {
        let mut claims = dashboard();
        claims.exp = Some(NOW - CLOCK_SKEW_SECS + 1);
        let token = mint(&secret(), &claims);
        assert!(verify(&secret(), &token, Scope::Dashboard, NOW).is_ok());
        claims.exp = Some(NOW - CLOCK_SKEW_SECS);
        let token = mint(&secret(), &claims);
        assert_eq!(
            verify(&secret(), &token, Scope::Dashboard, NOW),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn dashboard_and_admin_tokens_need_exp() {
        let mut claims = dashboard();
        claims.exp = None;
        assert_eq!(
            verify(&secret(), &mint(&secret(), &claims), Scope::Dashboard, NOW),
            Err(TokenError::InvalidClaims("exp"))
        );
        let admin = Claims {
            sub: None,
            scope: Scope::Admin,
            exp: None,
            generation: None,
        };
        assert_eq!(
            verify(&secret(), &mint(&secret(), &admin), Scope::Admin, NOW),
            Err(TokenError::InvalidClaims("exp"))
        );
    }

    #[test]
    fn a_token_whose_nbf_is_in_the_future_is_not_valid_yet() {
        let token = raw_payload(&format!(
            r#"{{"sub":"{TENANT}","scope":"dashboard","exp":{},"nbf":{}}}"#,
            NOW + 600,
            NOW + CLOCK_SKEW_SECS + 1
        ));
        let refused = verify(&secret(), &token, Scope::Dashboard, NOW);
        assert_eq!(refused, Err(TokenError::NotYetValid));
        assert_eq!(
            refused.unwrap_err().code(),
            "token_not_yet_valid",
            "its own code"
        );
        // From `nbf` less the skew leeway on it verifies.
        assert!(verify(&secret(), &token, Scope::Dashboard, NOW + 1).is_ok());
    }

    #[test]
    fn an_iat_further_ahead_than_the_skew_leeway_is_not_valid_yet() {
        let token = |iat: i64| {
            raw_payload(&format!(
                r#"{{"sub":"{TENANT}","scope":"dashboard","exp":{},"iat":{iat}}}"#,
                NOW + 600
            ))
        };
        assert!(
            verify(
                &secret(),
                &token(NOW + CLOCK_SKEW_SECS),
                Scope::Dashboard,
                NOW
            )
            .is_ok()
        );
        assert_eq!(
            verify(
                &secret(),
                &token(NOW + CLOCK_SKEW_SECS + 1),
                Scope::Dashboard,
                NOW
            ),
            Err(TokenError::NotYetValid)
        );
    }

    #[test]
    fn nbf_binds_capture_tokens_too_and_must_be_a_whole_number() {
        let token = raw_payload(&format!(
            r#"{{"sub":"{TENANT}","scope":"capture","gen":1,"nbf":{}}}"#,
            NOW + CLOCK_SKEW_SECS + 1
        ));
        assert_eq!(
            verify(&secret(), &token, Scope::Capture, NOW),
            Err(TokenError::NotYetValid)
        );
        let token = raw_payload(&format!(
            r#"{{"sub":"{TENANT}","scope":"capture","gen":1,"nbf":"soon"}}"#
        ));
        assert_eq!(
            verify(&secret(), &token, Scope::Capture, NOW),
            Err(TokenError::InvalidClaims("nbf"))
        );
    }

    #[test]
    fn a_dashboard_token_valid_for_more_than_a_day_is_refused() {
        let mut claims = dashboard();
        // A day from a minting clock up to the leeway ahead of this one.
        claims.exp = Some(NOW + MAX_DASHBOARD_LIFETIME_SECS + CLOCK_SKEW_SECS);
        assert!(verify(&secret(), &mint(&secret(), &claims), Scope::Dashboard, NOW).is_ok());
        claims.exp = Some(NOW + MAX_DASHBOARD_LIFETIME_SECS + CLOCK_SKEW_SECS + 1);
        let refused = verify(&secret(), &mint(&secret(), &claims), Scope::Dashboard, NOW);
        assert_eq!(
            refused.map_err(|e| e.code()),
            Err("token_lifetime"),
            "exp - now over the maximum"
        );
    }

    #[test]
    fn an_over_long_token_stays_refused_in_its_last_hours_when_it_states_iat() {
        let exp = NOW + 3600;
        let token = raw_payload(&format!(
            r#"{{"sub":"{TENANT}","scope":"dashboard","exp":{exp},"iat":{}}}"#,
            exp - MAX_DASHBOARD_LIFETIME_SECS - 1
        ));
        assert!(matches!(
            verify(&secret(), &token, Scope::Dashboard, NOW),
            Err(TokenError::LifetimeTooLong { .. })
        ));
        let token = raw_payload(&format!(
            r#"{{"sub":"{TENANT}","scope":"dashboard","exp":{exp},"iat":{}}}"#,
            NOW - 60
        ));
        assert!(verify(&secret(), &token, Scope::Dashboard, NOW).is_ok());
    }

    #[test]
    fn an_admin_token_may_live_90_days_and_no_longer() {
        let admin = |exp: i64| Claims {
            sub: None,
            scope: Scope::Admin,
            exp: Some(exp),
            generation: None,
        };
        let ok = mint(&secret(), &admin(NOW + MAX_ADMIN_LIFETIME_SECS));
        assert!(verify(&secret(), &ok, Scope::Admin, NOW).is_ok());
        let long = mint(
            &secret(),
            &admin(NOW + MAX_ADMIN_LIFETIME_SECS + CLOCK_SKEW_SECS + 1),
        );
        assert!(matches!(
            verify(&secret(), &long, Scope::Admin, NOW),
            Err(TokenError::LifetimeTooLong { .. })
        ));
        // Extreme claims neither overflow nor slip through.
        let token = raw_payload(&format!(
            r#"{{"scope":"admin","exp":{},"iat":{}}}"#,
            i64::MAX,
            i64::MIN
        ));
        assert!(matches!(
            verify(&secret(), &token, Scope::Admin, NOW),
            Err(TokenError::LifetimeTooLong { .. })
        ));
    }

    #[test]
    fn capture_tokens_have_no_maximum_lifetime() {
        let mut claims = capture(1);
        claims.exp = Some(NOW + 10 * 365 * 24 * 60 * 60);
        assert!(verify(&secret(), &mint(&secret(), &claims), Scope::Capture, NOW).is_ok());
    }

    #[test]
    fn a_capture_token_may_omit_exp_but_not_a_past_one() {
        assert!(
            verify(
                &secret(),
                &mint(&secret(), &capture(1)),
                Scope::Capture,
                NOW
            )
            .is_ok()
        );
        let mut claims = capture(1);
        claims.exp = Some(NOW - CLOCK_SKEW_SECS);
        assert_eq!(
            verify(&secret(), &mint(&secret(), &claims), Scope::Capture, NOW),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn a_missing_or_malformed_sub_is_refused() {
        let mut claims = dashboard();
        claims.sub = None;
        assert_eq!(
            verify(&secret(), &mint(&secret(), &claims), Scope::Dashboard, NOW),
            Err(TokenError::InvalidClaims("sub"))
        );
        claims.sub = Some("not-a-tenant-id".into());
        assert_eq!(
            verify(&secret(), &mint(&secret(), &claims), Scope::Dashboard, NOW),
            Err(TokenError::InvalidClaims("sub"))
        );
    }

    #[test]
    fn a_missing_or_unknown_scope_is_refused() {
        let token = raw_payload(&format!(r#"{{"sub":"{TENANT}","exp":{}}}"#, NOW + 60));
        assert_eq!(
            verify(&secret(), &token, Scope::Dashboard, NOW),
            Err(TokenError::InvalidClaims("scope"))
        );
        let token = raw_payload(&format!(
            r#"{{"sub":"{TENANT}","scope":"root","exp":{}}}"#,
            NOW + 60
        ));
        assert_eq!(
            verify(&secret(), &token, Scope::Dashboard, NOW),
            Err(TokenError::InvalidClaims("scope"))
        );
    }

    #[test]
    fn the_wrong_scope_is_refused() {
        let token = mint(&secret(), &capture(1));
        assert!(matches!(
            verify(&secret(), &token, Scope::Dashboard, NOW),
            Err(TokenError::WrongScope { .. })
        ));
        let token = mint(&secret(), &dashboard());
        assert!(matches!(
            verify(&secret(), &token, Scope::Admin, NOW),
            Err(TokenError::WrongScope { .. })
        ));
    }

    #[test]
    fn a_capture_token_without_a_generation_is_refused() {
        let mut claims = capture(1);
        claims.generation = None;
        assert_eq!(
            verify(&secret(), &mint(&secret(), &claims), Scope::Capture, NOW),
            Err(TokenError::InvalidClaims("gen"))
        );
    }

    #[test]
    fn bad_base64_is_malformed() {
        let token = mint(&secret(), &dashboard());
        let (_, rest) = token.split_once('.').unwrap();
        assert_eq!(
            verify(&secret(), &format!("!!!.{rest}"), Scope::Dashboard, NOW),
            Err(TokenError::Malformed)
        );
        let (input, _) = token.rsplit_once('.').unwrap();
        assert_eq!(
            verify(&secret(), &format!("{input}.***"), Scope::Dashboard, NOW),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn the_wrong_number_of_segments_is_malformed() {
        let token = mint(&secret(), &dashboard());
        for bad in ["", "a", "a.b", &format!("{token}.x")] {
            assert_eq!(
                verify(&secret(), bad, Scope::Dashboard, NOW),
                Err(TokenError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn tokens_over_8_kib_are_refused_before_parsing() {
        let token = "a".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(
            verify(&secret(), &token, Scope::Dashboard, NOW),
            Err(TokenError::TooLarge)
        );
    }

    proptest! {
        #[test]
        fn anything_minted_verifies(exp in (NOW + 1)..(NOW + 1_000_000), generation in 1i64..1000) {
            let mut claims = capture(generation);
            claims.exp = Some(exp);
            let token = mint(&secret(), &claims);
            prop_assert!(verify(&secret(), &token, Scope::Capture, NOW).is_ok());
        }

        #[test]
        fn any_single_byte_change_fails(index in 0usize..200, replacement in 0u8..128) {
            let token = mint(&secret(), &dashboard());
            let mut bytes = token.clone().into_bytes();
            let i = index % bytes.len();
            prop_assume!(bytes[i] != replacement);
            bytes[i] = replacement;
            let Ok(changed) = String::from_utf8(bytes) else { return Ok(()) };
            // A change in the unused trailing bits of a base64 character can decode to the same
            // bytes; anything else must fail.
            let same_bytes = changed.split('.').map(|p| URL_SAFE_NO_PAD.decode(p).ok()).collect::<Vec<_>>()
                == token.split('.').map(|p| URL_SAFE_NO_PAD.decode(p).ok()).collect::<Vec<_>>();
            prop_assume!(!same_bytes);
            prop_assert!(verify(&secret(), &changed, Scope::Dashboard, NOW).is_err());
        }
    }
}
