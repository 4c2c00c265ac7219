//! Standard Webhooks authentication (<https://www.standardwebhooks.com/>): sets
//! `webhook-id`, `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256>`
//! over `{id}.{timestamp}.{body}` under the receiver's `whsec_` secret.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use switchyard_plugin_sdk::{
    AuthProtocol, DeliveryContext, Error, HashAlgorithm, PluginInfo, Request, Setting, Settings,
    export, hmac, now_ms,
};

/// Decodes a `whsec_<base64>` secret into the HMAC key.
pub fn decode_secret(secret: &str) -> Result<Vec<u8>, Error> {
    let encoded = secret.strip_prefix("whsec_").ok_or_else(|| {
        Error::new(
            "the setting `secret` must look like `whsec_<base64>` (the `whsec_` prefix is missing)",
        )
    })?;
    let key = STANDARD.decode(encoded).map_err(|e| {
        Error::new(format_args!(
            "the setting `secret` is not valid base64 after `whsec_`: {e}"
        ))
    })?;
    if key.is_empty() {
        return Err(Error::new("the setting `secret` is empty after `whsec_`"));
    }
    Ok(key)
}

/// The `webhook-signature` value: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.
pub fn signature(key: &[u8], id: &str, timestamp: u64, body: &[u8]) -> String {
    let mut signed = format!("{id}.{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    format!(
        "v1,{}",
        STANDARD.encode(hmac(HashAlgorithm::Sha256, key, &signed))
    )
}

/// Signs `request` for delivery `id` at `timestamp` (seconds since the Unix epoch).
pub fn sign(mut request: Request, key: &[u8], id: &str, timestamp: u64) -> Request {
    let value = signature(key, id, timestamp, &request.body);
    request.set_header("webhook-id", id);
    request.set_header("webhook-timestamp", timestamp.to_string());
    request.set_header("webhook-signature", value);
    request
}

/// The plugin.
pub struct StandardWebhooks;

impl AuthProtocol for StandardWebhooks {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "standard-webhooks",
            env!("CARGO_PKG_VERSION"),
            "Standard Webhooks: signs `{webhook-id}.{webhook-timestamp}.{body}` with HMAC-SHA256 \
             and sends webhook-id, webhook-timestamp and webhook-signature headers.",
        )
        .setting(
            Setting::required("secret", "The signing secret, `whsec_` followed by base64.")
                .secret(),
        )
    }

    fn authenticate(
        request: Request,
        context: &DeliveryContext,
        settings: &Settings,
    ) -> Result<Request, Error> {
        let key = decode_secret(settings.require("secret")?)?;
        // Fresh on every attempt: receivers reject stale timestamps.
        let timestamp = now_ms() / 1000;
        Ok(sign(request, &key, &context.delivery_id, timestamp))
    }
}

export!(auth_protocol: StandardWebhooks);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_published_test_vector() {
        let key = decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let request = Request {
            method: "POST".into(),
            url: "https://example.com".into(),
            headers: vec![],
            body: br#"{"test": 2432232314}"#.to_vec(),
        };
        let signed = sign(request, &key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330);
        assert_eq!(
            signed.header("webhook-id"),
            Some("msg_p5jXN8AQM9LWM0D4loKWxJek")
        );
        assert_eq!(signed.header("webhook-timestamp"), Some("1614265330"));
        assert_eq!(
            signed.header("webhook-signature"),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
    }

    #[test]
    fn replaces_headers_set_on_an_earlier_attempt() {
        let request = Request {
            method: "POST".into(),
            url: "https://example.com".into(),
            headers: vec![
                ("Webhook-Id".into(), "dlv_1".into()),
                ("Webhook-Timestamp".into(), "1".into()),
            ],
            body: vec![],
        };
        let signed = sign(request, b"k", "dlv_1", 2);
        assert_eq!(signed.headers.len(), 3);
        assert_eq!(signed.header("webhook-timestamp"), Some("2"));
    }

    #[test]
    fn rejects_malformed_secrets() {
        assert!(
            decode_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
                .unwrap_err()
                .to_string()
                .contains("whsec_")
        );
        assert!(
            decode_secret("whsec_%%%")
                .unwrap_err()
                .to_string()
                .contains("base64")
        );
        assert!(decode_secret("whsec_").is_err());
    }
}
