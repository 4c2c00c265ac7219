//! The one bindgen site: host bindings for the three plugin worlds of `wit/`, sharing
//! one set of `types` and `host` bindings, and the conversions between them and the
//! plain Rust types the rest of the host uses.

use super::types as plain;

wasmtime::component::bindgen!({
    path: "../wit",
    world: "auth-protocol",
    imports: {
        "switchyard:plugin/host.oauth2-client-credentials": async,
    },
    exports: { default: async },
});

/// The payload-transform world, sharing the types and host bindings above.
pub mod transform {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "payload-transform",
        exports: { default: async },
        with: {
            "switchyard:plugin/types": super::switchyard::plugin::types,
            "switchyard:plugin/host": super::switchyard::plugin::host,
        },
    });
}

/// The authorization-filter world, sharing the types and host bindings above.
pub mod filter {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "authorization-filter",
        exports: { default: async },
        with: {
            "switchyard:plugin/types": super::switchyard::plugin::types,
            "switchyard:plugin/host": super::switchyard::plugin::host,
        },
    });
}

pub use switchyard::plugin::types as wit;

impl From<&plain::Event> for wit::Event {
    fn from(e: &plain::Event) -> Self {
        Self {
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
}

impl From<&plain::Principal> for wit::Principal {
    fn from(p: &plain::Principal) -> Self {
        Self {
            id: p.id.clone(),
            permissions: p.permissions.clone(),
            scopes: p.scopes.clone(),
        }
    }
}

impl From<plain::OutgoingRequest> for wit::OutgoingRequest {
    fn from(r: plain::OutgoingRequest) -> Self {
        Self {
            method: r.method,
            url: r.url,
            headers: r.headers,
            body: r.body,
        }
    }
}

impl From<wit::OutgoingRequest> for plain::OutgoingRequest {
    fn from(r: wit::OutgoingRequest) -> Self {
        Self {
            method: r.method,
            url: r.url,
            headers: r.headers,
            body: r.body,
        }
    }
}

impl From<&plain::DeliveryContext> for wit::DeliveryContext {
    fn from(c: &plain::DeliveryContext) -> Self {
        Self {
            delivery_id: c.delivery_id.clone(),
            event_id: c.event_id.clone(),
            topic: c.topic.clone(),
            attempt: c.attempt,
        }
    }
}

impl From<wit::Body> for plain::Body {
    fn from(b: wit::Body) -> Self {
        Self {
            content_type: b.content_type,
            bytes: b.bytes,
        }
    }
}

/// The plugin's self-description, tagged with the kind the host found it to be.
pub fn info(i: wit::PluginInfo, kind: plain::PluginKind) -> plain::PluginInfo {
    plain::PluginInfo {
        name: i.name,
        version: i.version,
        description: i.description,
        settings: i
            .settings
            .into_iter()
            .map(|s| plain::Setting {
                name: s.name,
                description: s.description,
                secret: s.secret,
                required: s.required,
            })
            .collect(),
        kind,
    }
}

/// Settings as the WIT list of pairs.
pub fn settings(s: &plain::Settings) -> wit::Settings {
    s.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}
