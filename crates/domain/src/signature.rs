//! Webhook signatures: Standard Webhooks (signup) and Systeme.io (hex HMAC of the raw body).
//! Every MAC comparison goes through `hmac`'s constant-time `verify_slice`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;

use crate::secret::{SystemeSecret, WebhookSecret};

type HmacSha256 = Hmac<Sha256>;

/// Standard Webhooks' timestamp tolerance, either side of now.
pub const TOLERANCE_SECS: i64 = 5 * 60;

/// Why a signed webhook was refused.
#[derive(Debug, Error, PartialEq, Eq, Clone, Copy)]
pub enum SignatureError {
    #[error("the signature headers are missing")]
    Missing,
    #[error("the webhook timestamp is not a unix time")]
    BadTimestamp,
    #[error("the webhook timestamp is more than 5 minutes away from now")]
    Stale,
    #[error("no signature matches the body")]
    Mismatch,
}

impl SignatureError {
    pub fn code(self) -> &'static str {
        match self {
            Self::Missing => "signature_missing",
            Self::BadTimestamp | Self::Mismatch => "signature_invalid",
            Self::Stale => "signature_stale",
        }
    }
}

fn hmac(key: &[u8]) -> HmacSha256 {
    match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC-SHA256 takes keys of any length"),
    }
}

fn standard_mac(secret: &WebhookSecret, id: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
    let mut mac = hmac(secret.key());
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `webhook-signature` value for a body: `v1,<base64>`.
pub fn sign_standard(secret: &WebhookSecret, id: &str, timestamp: i64, body: &[u8]) -> String {
    let mac = standard_mac(secret, id, &timestamp.to_string(), body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// Verifies Standard Webhooks headers. `signatures` may hold several space-separated
/// `v1,<base64>` entries (key rotation); one match is enough.
pub fn verify_standard(
    secret: &WebhookSecret,
    id: Option<&str>,
    timestamp: Option<&str>,
    signatures: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let (Some(id), Some(timestamp), Some(signatures)) = (id, timestamp, signatures) else {
        return Err(SignatureError::Missing);
    };
    if id.is_empty() || signatures.trim().is_empty() {
        return Err(SignatureError::Missing);
    }
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    // `abs_diff` cannot overflow, whatever unix time the sender claims (`(now - ts).abs()` did
    // for a timestamp near i64::MIN or i64::MAX).
    if now.abs_diff(ts) > TOLERANCE_SECS.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    let expected = standard_mac(secret, id, timestamp, body);
    let matched = signatures
        .split_whitespace()
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|b64| STANDARD.decode(b64).ok())
        .any(|sig| expected.clone().verify_slice(&sig).is_ok());
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The `x-webhook-signature` Systeme.io sends: lowercase hex HMAC-SHA256 of the raw body.
pub fn sign_systeme(secret: &SystemeSecret, body: &[u8]) -> String {
    let mut mac = hmac(secret.key());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Verifies a Systeme.io signature against the exact raw body.
pub fn verify_systeme(
    secret: &SystemeSecret,
    signature: Option<&str>,
    body: &[u8],
) -> Result<(), SignatureError> {
    let signature = signature
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or(SignatureError::Missing)?;
    let bytes = hex::decode(signature).map_err(|_| SignatureError::Mismatch)?;
    let mut mac = hmac(secret.key());
    mac.update(body);
    mac.verify_slice(&bytes)
        .map_err(|_| SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: i64 = 1_800_000_000;

    fn secret() -> WebhookSecret {
        WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap()
    }

    #[test]
    fn matches_the_standard_webhooks_reference_vector() {
        // From the Standard Webhooks specification's reference libraries.
        let body = br#"{"test": 2432232314}"#;
        let sig = sign_standard(&secret(), "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn a_signed_webhook_verifies() {
        let sig = sign_standard(&secret(), "msg_1", NOW, b"{}");
        assert_eq!(
            verify_standard(
                &secret(),
                Some("msg_1"),
                Some(&NOW.to_string()),
                Some(&sig),
                b"{}",
                NOW
            ),
            Ok(())
        );
    }

    #[test]
    fn any_of_several_signatures_may_match() {
        let sig = sign_standard(&secret(), "msg_1", NOW, b"{}");
        let header = format!("v1,AAAA v2,zzz {sig}");
        assert_eq!(
            verify_standard(
                &secret(),
                Some("msg_1"),
                Some(&NOW.to_string()),
                Some(&header),
                b"{}",
                NOW
            ),
            Ok(())
        );
    }

    #[test]
    fn missing_headers_are_missing() {
        assert_eq!(
            verify_standard(&secret(), None, Some("1"), Some("v1,x"), b"", NOW),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_standard(&secret(), Some("m"), None, Some("v1,x"), b"", NOW),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_standard(&secret(), Some("m"), Some("1"), None, b"", NOW),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn a_timestamp_outside_five_minutes_is_stale() {
        for ts in [NOW - TOLERANCE_SECS - 1, NOW + TOLERANCE_SECS + 1] {
            let sig = sign_standard(&secret(), "m", ts, b"{}");
            assert_eq!(
                verify_standard(
                    &secret(),
                    Some("m"),
                    Some(&ts.to_string()),
                    Some(&sig),
                    b"{}",
                    NOW
                ),
                Err(SignatureError::Stale)
            );
        }
        let edge = NOW - TOLERANCE_SECS;
        let sig = sign_standard(&secret(), "m", edge, b"{}");
        assert_eq!(
            verify_standard(
                &secret(),
                Some("m"),
                Some(&edge.to_string()),
                Some(&sig),
                b"{}",
                NOW
            ),
            Ok(())
        );
    }

    #[test]
    fn extreme_timestamps_are_stale_without_overflowing() {
        for (ts, now) in [
            (i64::MIN, NOW),
            (i64::MAX, NOW),
            (i64::MIN, i64::MAX),
            (i64::MAX, i64::MIN),
            (i64::MIN, 0),
        ] {
            let sig = sign_standard(&secret(), "m", ts, b"{}");
            assert_eq!(
                verify_standard(
                    &secret(),
                    Some("m"),
                    Some(&ts.to_string()),
                    Some(&sig),
                    b"{}",
                    now
                ),
                Err(SignatureError::Stale),
                "ts {ts}, now {now}"
            );
        }
        let sig = sign_standard(&secret(), "m", i64::MAX, b"{}");
        assert_eq!(
            verify_standard(
                &secret(),
                Some("m"),
                Some(&i64::MAX.to_string()),
                Some(&sig),
                b"{}",
                i64::MAX
            ),
            Ok(()),
            "equal extremes are within tolerance"
        );
    }

    #[test]
    fn a_signature_over_another_id_or_body_fails() {
        let sig = sign_standard(&secret(), "m1", NOW, b"{}");
        let ts = NOW.to_string();
        assert_eq!(
            verify_standard(&secret(), Some("m2"), Some(&ts), Some(&sig), b"{}", NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_standard(&secret(), Some("m1"), Some(&ts), Some(&sig), b"{ }", NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_standard(&secret(), Some("m1"), Some("soon"), Some(&sig), b"{}", NOW),
            Err(SignatureError::BadTimestamp)
        );
    }

    #[test]
    fn systeme_signatures_cover_the_raw_escaped_body() {
        let secret = SystemeSecret::parse("s3cret").unwrap();
        let raw = br#"{"url":"https:\/\/lp.example.com\/x"}"#;
        let sig = sign_systeme(&secret, raw);
        assert_eq!(verify_systeme(&secret, Some(&sig), raw), Ok(()));
        // Re-serialised without the PHP-style escapes, the same data no longer verifies.
        assert_eq!(
            verify_systeme(
                &secret,
                Some(&sig),
                br#"{"url":"https://lp.example.com/x"}"#
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_systeme(&secret, None, raw),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_systeme(&secret, Some("zz"), raw),
            Err(SignatureError::Mismatch)
        );
    }

    proptest! {
        #[test]
        fn any_single_byte_change_of_the_body_fails(body in proptest::collection::vec(any::<u8>(), 1..200), index in any::<usize>(), flip in 1u8..=255) {
            let sig = sign_standard(&secret(), "m", NOW, &body);
            let mut changed = body;
            let i = index % changed.len();
            changed[i] ^= flip;
            prop_assert_eq!(verify_standard(&secret(), Some("m"), Some(&NOW.to_string()), Some(&sig), &changed, NOW), Err(SignatureError::Mismatch));
        }
    }
}
