//! Secrets: API tokens (256-bit, stored as SHA-256) and TOTP (SHA-1, 6 digits, 30 s).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, Secret, TOTP};

/// TOTP time step, seconds.
const STEP: u64 = 30;

/// A new API account's secrets, shown once.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The API token (the account's password).
    pub token: String,
    /// The TOTP secret, base32.
    pub totp_secret: String,
    /// The `otpauth://` URI for authenticator apps.
    pub totp_uri: String,
}

impl Credentials {
    /// Fresh secrets for the account `label` of `tenant`.
    pub fn generate(tenant: &str, label: &str) -> Self {
        let totp_secret = new_totp_secret();
        Self {
            token: new_secret_token(),
            totp_uri: totp_uri(&totp_secret, tenant, label),
            totp_secret,
        }
    }
}

/// 256 random bits, base64url: API tokens and access tokens.
pub fn new_secret_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The stored form of a token: SHA-256, lowercase hex.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new TOTP secret: 160 random bits, base32 (what authenticator apps expect).
pub fn new_totp_secret() -> String {
    let mut bytes = [0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    Secret::Raw(bytes.to_vec()).to_encoded().to_string()
}

/// The `otpauth://totp/…` URI of a secret, labelled `Switchyard (tenant):label`.
pub fn totp_uri(secret_b32: &str, tenant: &str, label: &str) -> String {
    totp(secret_b32, tenant, label)
        .map(|t| t.get_url())
        .unwrap_or_default()
}

fn totp(secret_b32: &str, tenant: &str, label: &str) -> Option<TOTP> {
    let secret = Secret::Encoded(secret_b32.to_owned()).to_bytes().ok()?;
    TOTP::new_unchecked(
        Algorithm::SHA1,
        6,
        1,
        STEP,
        secret,
        Some(format!("Switchyard ({tenant})")),
        label.to_owned(),
    )
    .into()
}

/// Checks a TOTP code at `now_ms` with ±1 step of skew. A code is good only for a step
/// after `last_step`, so each code works once. Returns the step it matched.
pub fn verify_totp(secret_b32: &str, code: &str, now_ms: u64, last_step: u64) -> Option<u64> {
    let totp = totp(secret_b32, "", "")?;
    let now_step = now_ms / 1000 / STEP;
    let mut matched = None;
    // Check every candidate so the time taken does not depend on which one matched.
    for step in now_step.saturating_sub(1)..=now_step + 1 {
        let expected = totp.generate(step * STEP);
        let equal: bool = expected.as_bytes().ct_eq(code.as_bytes()).into();
        if equal && step > last_step && matched.is_none() {
            matched = Some(step);
        }
    }
    matched
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B: the SHA-1 seed "12345678901234567890", 8-digit codes; our
    /// 6-digit codes are their last six digits.
    const RFC_SECRET: &[u8] = b"12345678901234567890";

    fn rfc_secret_b32() -> String {
        Secret::Raw(RFC_SECRET.to_vec()).to_encoded().to_string()
    }

    #[test]
    fn rfc6238_vectors_verify() {
        let secret = rfc_secret_b32();
        for (time, code8) in [
            (59u64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
        ] {
            let code = &code8[2..];
            assert_eq!(
                verify_totp(&secret, code, time * 1000, 0),
                Some(time / 30),
                "code {code} at {time}"
            );
        }
    }

    #[test]
    fn a_code_works_once_and_within_one_step_of_skew() {
        let secret = rfc_secret_b32();
        let now = 1_111_111_109_000;
        let step = verify_totp(&secret, "081804", now, 0).expect("valid");
        assert_eq!(verify_totp(&secret, "081804", now, step), None, "replay");
        // One step later the same code is still inside the skew window…
        assert!(verify_totp(&secret, "081804", now + 30_000, 0).is_some());
        // …two steps later it is not.
        assert_eq!(verify_totp(&secret, "081804", now + 60_000, 0), None);
        assert_eq!(verify_totp(&secret, "000000", now, 0), None);
        assert_eq!(verify_totp(&secret, "", now, 0), None);
    }

    #[test]
    fn tokens_are_long_random_and_hashed() {
        let a = new_secret_token();
        assert_ne!(a, new_secret_token());
        assert_eq!(a.len(), 43);
        assert_eq!(hash_token(&a).len(), 64);
        assert_ne!(hash_token(&a), a);
    }

    #[test]
    fn the_uri_is_what_authenticator_apps_read() {
        let c = Credentials::generate("acme", "acc_1");
        assert!(c.totp_uri.starts_with("otpauth://totp/"), "{}", c.totp_uri);
        assert!(c.totp_uri.contains(&format!("secret={}", c.totp_secret)));
        assert!(c.totp_uri.contains("issuer=Switchyard"));
    }
}
