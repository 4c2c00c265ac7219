//! Plugin `upper`, a payload transform for the end-to-end tests: upper-cases every string
//! in a JSON payload and says which version of itself did it, so a test can see a hot
//! swap take effect. Two packages build this source with different versions.
//!
//! Body: `{"upper": "<version>", "label": "<setting label>", "data": <payload>}`.

use serde_json::{Value, json};
use switchyard_plugin_sdk::{
    Body, Error, Event, PayloadTransform, PluginInfo, Setting, Settings, export,
};

/// The plugin.
pub struct Upper;

impl PayloadTransform for Upper {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "upper",
            env!("CARGO_PKG_VERSION"),
            "Upper-cases every string in a JSON payload; for tests only.",
        )
        .setting(Setting::optional(
            "label",
            "Copied into the body as `label`.",
        ))
    }

    fn transform(event: Event, settings: &Settings) -> Result<Body, Error> {
        let data = upper(event.json::<Value>()?);
        Body::json(&json!({
            "upper": env!("CARGO_PKG_VERSION"),
            "label": settings.get_or("label", ""),
            "data": data,
        }))
    }
}

fn upper(value: Value) -> Value {
    match value {
        Value::String(s) => Value::String(s.to_uppercase()),
        Value::Array(items) => Value::Array(items.into_iter().map(upper).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, upper(v))).collect()),
        other => other,
    }
}

export!(payload_transform: Upper);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_cases_strings_and_names_its_version() {
        let event = Event {
            id: "evt_1".into(),
            tenant: "acme".into(),
            topic: "Accounts.Update".into(),
            occurred_at_ms: 0,
            subject: None,
            content_type: "application/json".into(),
            payload: br#"{"name": "ada", "tags": ["x"], "n": 1}"#.to_vec(),
        };
        let settings: Settings = [("label", "l")].into_iter().collect();
        let body = Upper::transform(event, &settings).unwrap();
        let value: Value = serde_json::from_slice(&body.bytes).unwrap();
        assert_eq!(
            value,
            json!({"upper": env!("CARGO_PKG_VERSION"), "label": "l",
                   "data": {"name": "ADA", "tags": ["X"], "n": 1}})
        );
    }
}
