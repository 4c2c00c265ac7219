//! WebSub authentication: signs each webhook body with an HMAC under the receiver's
//! secret and sends it as `X-Hub-Signature: <algorithm>=<lowercase hex>`.

use switchyard_plugin_sdk::{
    AuthProtocol, DeliveryContext, Error, PluginInfo, Request, Setting, Settings, export, hmac,
};

/// The hash functions WebSub allows: SHA-1 (for old receivers), SHA-256 (the default),
/// SHA-384 and SHA-512.
pub use switchyard_plugin_sdk::HashAlgorithm as Algorithm;

/// Parses the `algorithm` setting; an unknown name is an error that lists the known ones.
pub fn parse_algorithm(name: &str) -> Result<Algorithm, Error> {
    name.parse().map_err(|_| {
        Error::new(format_args!(
            "unknown WebSub algorithm `{name}`; use sha1, sha256, sha384 or sha512"
        ))
    })
}

/// The `X-Hub-Signature` value for `body` under `secret`.
pub fn signature(algorithm: Algorithm, secret: &[u8], body: &[u8]) -> String {
    let digest = hex::encode(hmac(algorithm, secret, body));
    format!("{}={digest}", algorithm.name())
}

/// The plugin.
pub struct WebSub;

impl AuthProtocol for WebSub {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "websub",
            env!("CARGO_PKG_VERSION"),
            "WebSub: adds `X-Hub-Signature: <algorithm>=<hex HMAC of the body>` under the receiver's secret.",
        )
        .setting(Setting::required("secret", "The shared secret the receiver verifies the signature with.").secret())
        .setting(Setting::optional(
            "algorithm",
            "The HMAC hash: sha1, sha256 (default), sha384 or sha512.",
        ))
    }

    fn authenticate(
        mut request: Request,
        _: &DeliveryContext,
        settings: &Settings,
    ) -> Result<Request, Error> {
        let algorithm = parse_algorithm(settings.get_or("algorithm", "sha256"))?;
        let secret = settings.require("secret")?;
        let value = signature(algorithm, secret.as_bytes(), &request.body);
        request.set_header("X-Hub-Signature", value);
        Ok(request)
    }
}

export!(auth_protocol: WebSub);

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: &[u8]) -> Request {
        Request {
            method: "POST".into(),
            url: "https://example.com/hook".into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_vec(),
        }
    }

    fn context() -> DeliveryContext {
        DeliveryContext {
            delivery_id: "dlv_1".into(),
            event_id: "evt_1".into(),
            topic: "Accounts.Update".into(),
            attempt: 1,
        }
    }

    #[test]
    fn signs_with_known_vectors() {
        // RFC 4231 test case 2 (key "Jefe").
        let body = b"what do ya want for nothing?";
        assert_eq!(
            signature(Algorithm::Sha256, b"Jefe", body),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            signature(Algorithm::Sha384, b"Jefe", body),
            "sha384=af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649"
        );
        assert_eq!(
            signature(Algorithm::Sha512, b"Jefe", body),
            "sha512=164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
        );
        // RFC 2202 test case 2.
        assert_eq!(
            signature(Algorithm::Sha1, b"Jefe", body),
            "sha1=effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }

    #[test]
    fn defaults_to_sha256_and_replaces_a_stale_signature() {
        let settings: Settings = [("secret", "Jefe")].into_iter().collect();
        let mut req = request(b"what do ya want for nothing?");
        req.headers
            .push(("x-hub-signature".into(), "sha1=stale".into()));
        let signed = WebSub::authenticate(req, &context(), &settings).unwrap();
        let values: Vec<_> = signed
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("x-hub-signature"))
            .collect();
        assert_eq!(values.len(), 1);
        assert!(values[0].1.starts_with("sha256=5bdcc146"));
    }

    #[test]
    fn unknown_algorithm_and_missing_secret_are_clear_errors() {
        let settings: Settings = [("secret", "s"), ("algorithm", "md5")]
            .into_iter()
            .collect();
        let error = WebSub::authenticate(request(b"{}"), &context(), &settings).unwrap_err();
        assert!(
            error.to_string().contains("unknown WebSub algorithm `md5`"),
            "{error}"
        );

        let error =
            WebSub::authenticate(request(b"{}"), &context(), &Settings::default()).unwrap_err();
        assert_eq!(error.to_string(), "the setting `secret` is required");
    }

    #[test]
    fn algorithm_names_are_case_insensitive() {
        assert_eq!(parse_algorithm("SHA512").unwrap(), Algorithm::Sha512);
    }

    #[test]
    fn describe_marks_the_secret() {
        let info = WebSub::describe();
        assert_eq!(info.name, "websub");
        assert!(
            info.settings
                .iter()
                .any(|s| s.name == "secret" && s.secret && s.required)
        );
    }
}
