//! Write [Switchyard] plugins in Rust.
//!
//! A Switchyard plugin is a WebAssembly component that does one job for the router:
//!
//! | kind | trait | what it does |
//! |---|---|---|
//! | auth protocol | [`AuthProtocol`] | signs or authorizes a webhook request before it is sent |
//! | payload transform | [`PayloadTransform`] | turns an event into the body a receiver gets |
//! | authorization filter | [`AuthorizationFilter`] | decides whether a receiver's account may see an event |
//!
//! A plugin crate is a `cdylib` that depends on this SDK with the feature of its kind
//! (`auth-protocol`, `payload-transform` or `authorization-filter`), implements that
//! trait and calls [`export!`] once. `cargo build --target wasm32-wasip2 --release` then
//! produces a component the host loads.
//!
//! ```toml
//! [lib]
//! crate-type = ["cdylib", "rlib"]
//!
//! [dependencies]
//! switchyard-plugin-sdk = { version = "0.1", features = ["payload-transform"] }
//! ```
//!
//! ```
//! use switchyard_plugin_sdk::{export, Body, Error, Event, PayloadTransform, PluginInfo, Setting, Settings};
//!
//! struct Shout;
//!
//! impl PayloadTransform for Shout {
//!     fn describe() -> PluginInfo {
//!         PluginInfo::new("shout", "0.1.0", "Sends the payload in upper case.")
//!             .setting(Setting::optional("suffix", "Appended to the payload."))
//!     }
//!
//!     fn transform(event: Event, settings: &Settings) -> Result<Body, Error> {
//!         let mut text = String::from_utf8(event.payload).map_err(Error::new)?.to_uppercase();
//!         text.push_str(settings.get("suffix").unwrap_or(""));
//!         Ok(Body::new("text/plain", text.into_bytes()))
//!     }
//! }
//!
//! export!(payload_transform: Shout);
//! # fn main() {}
//! ```
//!
//! Plugins run sandboxed: no filesystem, network, environment or clock beyond the
//! [host functions](log) this SDK exposes, a CPU deadline and a memory cap per call, and
//! no state kept between calls.
//!
//! [Switchyard]: https://github.com/switchyard

#![deny(missing_docs)]

mod error;
mod export;
mod host;
mod settings;
mod time;
mod types;

pub use error::Error;
pub use host::{
    AccessToken, ClientAuth, ClientCredentials, HashAlgorithm, Level, hmac, log, now_ms,
    oauth2_client_credentials,
};
pub use settings::Settings;
pub use time::rfc3339;
pub use types::{Body, DeliveryContext, Event, PluginInfo, Principal, Request, Setting, Subject};

/// Re-exported so plugins use the same `serde_json` as the SDK's JSON helpers.
pub use serde_json;

/// An auth-protocol plugin: signs or authorizes a webhook request before it is sent.
///
/// `authenticate` runs on every attempt of a delivery, so signatures and timestamps are
/// always fresh. Returning an error fails that attempt; the request is never sent
/// unauthenticated.
///
/// ```
/// use switchyard_plugin_sdk::{AuthProtocol, DeliveryContext, Error, PluginInfo, Request, Setting, Settings};
///
/// struct StaticKey;
///
/// impl AuthProtocol for StaticKey {
///     fn describe() -> PluginInfo {
///         PluginInfo::new("static-key", "0.1.0", "Sends a fixed API key.")
///             .setting(Setting::required("key", "The API key.").secret())
///     }
///
///     fn authenticate(mut request: Request, _: &DeliveryContext, settings: &Settings) -> Result<Request, Error> {
///         request.set_header("x-api-key", settings.require("key")?);
///         Ok(request)
///     }
/// }
/// # let request = Request { method: "POST".into(), url: "https://example.com".into(), headers: vec![], body: vec![] };
/// # let context = DeliveryContext { delivery_id: "dlv_1".into(), event_id: "evt_1".into(), topic: "T".into(), attempt: 1 };
/// # let settings = Settings::from(vec![("key".to_string(), "k".to_string())]);
/// # let signed = StaticKey::authenticate(request, &context, &settings).unwrap();
/// # assert_eq!(signed.header("X-Api-Key"), Some("k"));
/// ```
pub trait AuthProtocol {
    /// Describes the plugin and the settings a receiver gives it.
    fn describe() -> PluginInfo;

    /// Returns the request to send: usually `request` with headers added.
    fn authenticate(
        request: Request,
        context: &DeliveryContext,
        settings: &Settings,
    ) -> Result<Request, Error>;
}

/// A payload-transform plugin: turns an event into the body a receiver gets.
///
/// ```
/// use switchyard_plugin_sdk::{Body, Error, Event, PayloadTransform, PluginInfo, Settings};
///
/// struct Identity;
///
/// impl PayloadTransform for Identity {
///     fn describe() -> PluginInfo {
///         PluginInfo::new("identity", "0.1.0", "Sends the payload as published.")
///     }
///
///     fn transform(event: Event, _: &Settings) -> Result<Body, Error> {
///         Ok(Body::new(event.content_type, event.payload))
///     }
/// }
/// ```
pub trait PayloadTransform {
    /// Describes the plugin and the settings a receiver gives it.
    fn describe() -> PluginInfo;

    /// Turns `event` into the body to send.
    fn transform(event: Event, settings: &Settings) -> Result<Body, Error>;
}

/// An authorization-filter plugin: decides whether a principal (a receiver's API
/// account) may receive a webhook about an event. It runs at fan-out and again before
/// every send.
///
/// ```
/// use switchyard_plugin_sdk::{AuthorizationFilter, Event, PluginInfo, Principal, Settings};
///
/// struct AdminsOnly;
///
/// impl AuthorizationFilter for AdminsOnly {
///     fn describe() -> PluginInfo {
///         PluginInfo::new("admins-only", "0.1.0", "Only accounts with `admin` receive webhooks.")
///     }
///
///     fn allow(_: &Event, principal: &Principal, _: &Settings) -> bool {
///         principal.has_permission("admin")
///     }
/// }
/// ```
pub trait AuthorizationFilter {
    /// Describes the plugin and the settings a receiver gives it.
    fn describe() -> PluginInfo;

    /// True when `principal` may see `event`.
    fn allow(event: &Event, principal: &Principal, settings: &Settings) -> bool;
}

/// The generated bindings. Not part of the API: use the curated types above.
#[doc(hidden)]
#[allow(missing_docs, unsafe_code, clippy::all, rust_2018_idioms)]
pub mod __bindings {
    /// The types and host functions every world shares, generated once.
    pub mod base {
        wit_bindgen::generate!({
            world: "plugin-host",
            path: "../wit",
        });
    }

    #[cfg(feature = "auth-protocol")]
    pub mod auth_protocol {
        wit_bindgen::generate!({
            world: "auth-protocol",
            path: "../wit",
            with: {
                "switchyard:plugin/types@0.1.0": crate::__bindings::base::switchyard::plugin::types,
                "switchyard:plugin/host@0.1.0": crate::__bindings::base::switchyard::plugin::host,
            },
            pub_export_macro: true,
        });
    }

    #[cfg(feature = "payload-transform")]
    pub mod payload_transform {
        wit_bindgen::generate!({
            world: "payload-transform",
            path: "../wit",
            with: {
                "switchyard:plugin/types@0.1.0": crate::__bindings::base::switchyard::plugin::types,
                "switchyard:plugin/host@0.1.0": crate::__bindings::base::switchyard::plugin::host,
            },
            pub_export_macro: true,
        });
    }

    #[cfg(feature = "authorization-filter")]
    pub mod authorization_filter {
        wit_bindgen::generate!({
            world: "authorization-filter",
            path: "../wit",
            with: {
                "switchyard:plugin/types@0.1.0": crate::__bindings::base::switchyard::plugin::types,
                "switchyard:plugin/host@0.1.0": crate::__bindings::base::switchyard::plugin::host,
            },
            pub_export_macro: true,
        });
    }
}

#[doc(hidden)]
pub mod __private {
    #[cfg(feature = "auth-protocol")]
    pub use crate::export::AuthProtocolGuest;
    #[cfg(feature = "authorization-filter")]
    pub use crate::export::AuthorizationFilterGuest;
    #[cfg(feature = "payload-transform")]
    pub use crate::export::PayloadTransformGuest;
}
