//! The one bindgen site: the host side of `wit/`. Generated types are converted to and
//! from the plain ones in `types.rs` here, and nowhere else.

use wasmtime::component::HasSelf;

use super::store::StoreData;
use super::types;

/// World `auth-protocol`; it also generates the shared `types` and `host` interfaces.
pub(crate) mod auth {
    wasmtime::component::bindgen!({
        world: "auth-protocol",
        path: "../wit",
        imports: { "switchyard:plugin/host.oauth2-client-credentials": async },
        exports: { default: async },
    });
}

/// World `payload-transform`.
pub(crate) mod transform {
    wasmtime::component::bindgen!({
        world: "payload-transform",
        path: "../wit",
        with: {
            "switchyard:plugin/types": super::auth::switchyard::plugin::types,
            "switchyard:plugin/host": super::auth::switchyard::plugin::host,
        },
        exports: { default: async },
    });
}

/// World `authorization-filter`.
pub(crate) mod filter {
    wasmtime::component::bindgen!({
        world: "authorization-filter",
        path: "../wit",
        with: {
            "switchyard:plugin/types": super::auth::switchyard::plugin::types,
            "switchyard:plugin/host": super::auth::switchyard::plugin::host,
        },
        exports: { default: async },
    });
}

use auth::switchyard::plugin::host as wit_host;
use auth::switchyard::plugin::types as wit;

/// Adds the `host` interface (our capabilities) to a linker. All three worlds import
/// exactly this, so one linker serves every plugin.
pub(crate) fn add_to_linker(
    linker: &mut wasmtime::component::Linker<StoreData>,
) -> wasmtime::Result<()> {
    wit_host::add_to_linker::<StoreData, HasSelf<StoreData>>(linker, |data| data)?;
    wit::add_to_linker::<StoreData, HasSelf<StoreData>>(linker, |data| data)
}

impl wit::Host for StoreData {}

impl wit_host::Host for StoreData {
    fn log(&mut self, level: wit::Level, message: String) {
        let level = match level {
            wit::Level::Trace => tracing::Level::TRACE,
            wit::Level::Debug => tracing::Level::DEBUG,
            wit::Level::Info => tracing::Level::INFO,
            wit::Level::Warn => tracing::Level::WARN,
            wit::Level::Error => tracing::Level::ERROR,
        };
        self.plugin_log(level, &message);
    }

    fn now_ms(&mut self) -> u64 {
        self.clock_now_ms()
    }

    fn hmac(&mut self, algorithm: wit::HashAlgorithm, key: Vec<u8>, message: Vec<u8>) -> Vec<u8> {
        use hmac::{Hmac, Mac, digest::KeyInit};
        fn mac<M: Mac + KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
            // HMAC takes keys of any length, so this cannot fail.
            let mut mac = <M as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
            mac.update(message);
            mac.finalize().into_bytes().to_vec()
        }
        match algorithm {
            wit::HashAlgorithm::Sha1 => mac::<Hmac<sha1::Sha1>>(&key, &message),
            wit::HashAlgorithm::Sha256 => mac::<Hmac<sha2::Sha256>>(&key, &message),
            wit::HashAlgorithm::Sha384 => mac::<Hmac<sha2::Sha384>>(&key, &message),
            wit::HashAlgorithm::Sha512 => mac::<Hmac<sha2::Sha512>>(&key, &message),
        }
    }

    async fn oauth2_client_credentials(
        &mut self,
        grant: wit::ClientCredentials,
    ) -> Result<wit::AccessToken, String> {
        let grant = super::oauth::Grant {
            token_url: grant.token_url,
            client_id: grant.client_id,
            client_secret: grant.client_secret,
            scope: grant.scope,
            auth: match grant.auth {
                wit::ClientAuth::Basic => super::oauth::ClientAuth::Basic,
                wit::ClientAuth::Post => super::oauth::ClientAuth::Post,
            },
        };
        self.fetch_token(grant).await.map(|token| wit::AccessToken {
            token: token.token,
            token_type: token.token_type,
            expires_in: token.expires_in,
        })
    }
}

pub(crate) fn event(e: &types::Event) -> wit::Event {
    wit::Event {
        id: e.id.clone(),
        tenant: e.tenant.clone(),
        topic: e.topic.clone(),
        occurred_at_ms: e.occurred_at_ms,
        subject: e.subject.as_ref().map(|s| wit::Subject {
            kind: s.kind.clone(),
            id: s.id.clone(),
            attributes: s.attributes.clone(),
        }),
        content_type: e.content_type.clone(),
        payload: e.payload.clone(),
    }
}

pub(crate) fn principal(p: &types::Principal) -> wit::Principal {
    wit::Principal {
        id: p.id.clone(),
        permissions: p.permissions.clone(),
        scopes: p.scopes.clone(),
    }
}

pub(crate) fn request(r: types::OutgoingRequest) -> wit::OutgoingRequest {
    wit::OutgoingRequest {
        method: r.method,
        url: r.url,
        headers: r.headers,
        body: r.body,
    }
}

pub(crate) fn from_request(r: wit::OutgoingRequest) -> types::OutgoingRequest {
    types::OutgoingRequest {
        method: r.method,
        url: r.url,
        headers: r.headers,
        body: r.body,
    }
}

pub(crate) fn context(c: &types::DeliveryContext) -> wit::DeliveryContext {
    wit::DeliveryContext {
        delivery_id: c.delivery_id.clone(),
        event_id: c.event_id.clone(),
        topic: c.topic.clone(),
        attempt: c.attempt,
    }
}

pub(crate) fn settings(s: &types::Settings) -> Vec<(String, String)> {
    s.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

pub(crate) fn from_body(b: wit::Body) -> types::Body {
    types::Body {
        content_type: b.content_type,
        bytes: b.bytes,
    }
}

pub(crate) fn from_info(info: wit::PluginInfo, kind: types::PluginKind) -> types::PluginInfo {
    types::PluginInfo {
        name: info.name,
        version: info.version,
        description: info.description,
        settings: info
            .settings
            .into_iter()
            .map(|s| types::Setting {
                name: s.name,
                description: s.description,
                secret: s.secret,
                required: s.required,
            })
            .collect(),
        kind,
    }
}
