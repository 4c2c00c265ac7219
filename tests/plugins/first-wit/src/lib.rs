//! A payload transform built against the plugin contract as it was first laid out:
//! `wit/plugin.wit` here is a frozen copy of `switchyard:plugin@0.1.0` from before any
//! addition, and the bindings come from it directly, not through the SDK (which follows
//! the current contract). The contract promises that changes are additive only, so a
//! plugin built against an older 0.1.x keeps loading; the host's test of that promise
//! installs and calls this one.
//!
//! It uses every host function of that first contract but the token fetch: it logs a
//! line, and its body is `{"first-wit": <the host's clock>, "payload": <payload>}`.

#![deny(missing_docs, rust_2018_idioms)]

/// The bindings, generated from the frozen contract.
#[allow(missing_docs, clippy::all)]
mod bindings {
    wit_bindgen::generate!({ path: "wit", world: "payload-transform" });
}

use bindings::switchyard::plugin::host::{log, now_ms};
use bindings::switchyard::plugin::types::Level;
use bindings::{Body, Event, Guest, PluginInfo, Settings};

/// The plugin.
struct FirstWit;

impl Guest for FirstWit {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "first-wit".into(),
            version: "0.1.0".into(),
            description: "Built against the first plugin contract; for tests only.".into(),
            settings: Vec::new(),
        }
    }

    fn transform(event: Event, _settings: Settings) -> Result<Body, String> {
        log(Level::Info, &format!("transforming {}", event.id));
        let payload = String::from_utf8(event.payload).map_err(|e| e.to_string())?;
        Ok(Body {
            content_type: "application/json".into(),
            bytes: format!(r#"{{"first-wit":{},"payload":{payload}}}"#, now_ms()).into_bytes(),
        })
    }
}

bindings::export!(FirstWit with_types_in bindings);
