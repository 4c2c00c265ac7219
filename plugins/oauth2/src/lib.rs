//! OAuth2 authentication: before each send, gets an access token from the receiver's
//! token endpoint with the client-credentials grant (the host fetches and caches it) and
//! sends it as `Authorization: Bearer <token>`. Without a token the delivery attempt
//! fails; the payload is never sent unauthenticated.

use switchyard_plugin_sdk::{
    AuthProtocol, ClientCredentials, DeliveryContext, Error, PluginInfo, Request, Setting,
    Settings, export, oauth2_client_credentials,
};

/// Reads the grant from a receiver's settings.
pub fn grant(settings: &Settings) -> Result<ClientCredentials, Error> {
    let token_url = settings.require("token_url")?;
    if !(token_url.starts_with("https://") || token_url.starts_with("http://")) {
        return Err(Error::new(format_args!(
            "the setting `token_url` must be an http(s) URL, not `{token_url}`"
        )));
    }
    Ok(ClientCredentials {
        token_url: token_url.to_string(),
        client_id: settings.require("client_id")?.to_string(),
        client_secret: settings.require("client_secret")?.to_string(),
        scope: settings.get("scope").map(str::to_string),
        auth: settings.get_or("client_auth", "basic").parse()?,
    })
}

/// The plugin.
pub struct OAuth2;

impl AuthProtocol for OAuth2 {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "oauth2",
            env!("CARGO_PKG_VERSION"),
            "OAuth2: gets an access token from the receiver's token endpoint (client-credentials grant) \
             and sends it as `Authorization: Bearer <token>`.",
        )
        .setting(Setting::required("token_url", "The receiver's OAuth2 token endpoint."))
        .setting(Setting::required("client_id", "The client id Switchyard authenticates as."))
        .setting(Setting::required("client_secret", "The client secret.").secret())
        .setting(Setting::optional("scope", "The scope to ask for, space-separated."))
        .setting(Setting::optional(
            "client_auth",
            "How to send the client credentials: `basic` (HTTP Basic, default) or `post` (form body).",
        ))
    }

    fn authenticate(
        mut request: Request,
        _: &DeliveryContext,
        settings: &Settings,
    ) -> Result<Request, Error> {
        let grant = grant(settings)?;
        let token = oauth2_client_credentials(&grant).map_err(|e| {
            Error::new(format_args!(
                "no access token from {}: {e}",
                grant.token_url
            ))
        })?;
        request.set_header("Authorization", token.authorization());
        Ok(request)
    }
}

export!(auth_protocol: OAuth2);

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_plugin_sdk::ClientAuth;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        pairs.iter().copied().collect()
    }

    #[test]
    fn reads_the_grant_with_defaults() {
        let grant = grant(&settings(&[
            ("token_url", "https://auth.example.com/token"),
            ("client_id", "id"),
            ("client_secret", "secret"),
        ]))
        .unwrap();
        assert_eq!(grant.auth, ClientAuth::Basic);
        assert_eq!(grant.scope, None);
    }

    #[test]
    fn reads_scope_and_post_auth() {
        let grant = grant(&settings(&[
            ("token_url", "https://auth.example.com/token"),
            ("client_id", "id"),
            ("client_secret", "secret"),
            ("scope", "hooks:write"),
            ("client_auth", "post"),
        ]))
        .unwrap();
        assert_eq!(grant.auth, ClientAuth::Post);
        assert_eq!(grant.scope.as_deref(), Some("hooks:write"));
    }

    #[test]
    fn bad_settings_are_clear_errors() {
        let error = grant(&settings(&[
            ("token_url", "https://a/token"),
            ("client_id", "id"),
        ]))
        .unwrap_err();
        assert_eq!(error.to_string(), "the setting `client_secret` is required");
        let error = grant(&settings(&[
            ("token_url", "ftp://a"),
            ("client_id", "i"),
            ("client_secret", "s"),
        ]))
        .unwrap_err();
        assert!(error.to_string().contains("http(s) URL"));
        let error = grant(&settings(&[
            ("token_url", "https://a"),
            ("client_id", "i"),
            ("client_secret", "s"),
            ("client_auth", "jwt"),
        ]))
        .unwrap_err();
        assert!(error.to_string().contains("`basic` or `post`"));
    }

    #[test]
    fn a_token_failure_fails_the_request() {
        // Natively the SDK has no token service, which stands in for an unreachable endpoint.
        let request = Request {
            method: "POST".into(),
            url: "https://r".into(),
            headers: vec![],
            body: vec![],
        };
        let context = DeliveryContext {
            delivery_id: "d".into(),
            event_id: "e".into(),
            topic: "t".into(),
            attempt: 1,
        };
        let result = OAuth2::authenticate(
            request,
            &context,
            &settings(&[
                ("token_url", "https://a/token"),
                ("client_id", "i"),
                ("client_secret", "s"),
            ]),
        );
        assert!(
            result
                .unwrap_err()
                .to_string()
                .starts_with("no access token from https://a/token")
        );
    }
}
