//! The default payload transform: sends the payload exactly as published, with its
//! content type. With the setting `envelope = true` it wraps it as
//! `{"id", "topic", "tenant", "occurred_at", "subject", "payload"}`.

use serde::ser::{Serialize, Serializer};
use serde_json::value::RawValue;
use switchyard_plugin_sdk::{
    Body, Error, Event, PayloadTransform, PluginInfo, Setting, Settings, Subject, export,
};

/// The envelope, serialized straight from the event: the payload is checked to be JSON
/// and copied in as it is, without building a tree of it.
#[derive(serde::Serialize)]
struct Envelope<'a> {
    id: &'a str,
    topic: &'a str,
    tenant: &'a str,
    occurred_at: String,
    subject: Option<SubjectJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_type: Option<&'a str>,
    payload: Payload<'a>,
}

#[derive(serde::Serialize)]
#[serde(untagged)]
enum Payload<'a> {
    Json(&'a RawValue),
    Text(&'a str),
}

/// The subject as JSON: `{"kind", "id", "attributes": {name: value}}`; of repeated
/// attribute names the last one wins.
#[derive(serde::Serialize)]
struct SubjectJson<'a> {
    kind: &'a str,
    id: &'a str,
    attributes: Attributes<'a>,
}

struct Attributes<'a>(&'a [(String, String)]);

impl Serialize for Attributes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let pairs = self.0;
        let last = |i: usize| !pairs[i + 1..].iter().any(|(k, _)| *k == pairs[i].0);
        serializer.collect_map(
            (0..pairs.len())
                .filter(|&i| last(i))
                .map(|i| (&pairs[i].0, &pairs[i].1)),
        )
    }
}

fn subject_json(subject: &Subject) -> SubjectJson<'_> {
    SubjectJson {
        kind: &subject.kind,
        id: &subject.id,
        attributes: Attributes(&subject.attributes),
    }
}

/// The enveloped body. A JSON payload is embedded as JSON; anything else as a string
/// when it is UTF-8 text, with its content type alongside.
pub fn envelope(event: &Event) -> Result<Body, Error> {
    let (payload, content_type) = if event.is_json() {
        let raw: &RawValue = serde_json::from_slice(&event.payload)?;
        (Payload::Json(raw), None)
    } else {
        let text = std::str::from_utf8(&event.payload).map_err(|_| {
            Error::new("the payload is binary and cannot go in a JSON envelope; use `cloudevents` or no envelope")
        })?;
        (Payload::Text(text), Some(event.content_type.as_str()))
    };
    Body::json(&Envelope {
        id: &event.id,
        topic: &event.topic,
        tenant: &event.tenant,
        occurred_at: event.occurred_at(),
        subject: event.subject.as_ref().map(subject_json),
        content_type,
        payload,
    })
}

/// The plugin.
pub struct Json;

impl PayloadTransform for Json {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "json",
            env!("CARGO_PKG_VERSION"),
            "Sends the payload as published. With `envelope` set to true it wraps it in \
             {id, topic, tenant, occurred_at, subject, payload}.",
        )
        .setting(Setting::optional(
            "envelope",
            "`true` to wrap the payload with the event's id, topic, tenant, time and subject.",
        ))
    }

    fn transform(event: Event, settings: &Settings) -> Result<Body, Error> {
        if settings.flag("envelope")? {
            envelope(&event)
        } else {
            Ok(Body::new(event.content_type, event.payload))
        }
    }
}

export!(payload_transform: Json);

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn event(content_type: &str, payload: &[u8]) -> Event {
        Event {
            id: "evt_1".into(),
            tenant: "acme".into(),
            topic: "Accounts.Update".into(),
            occurred_at_ms: 1_614_265_330_123,
            subject: Some(Subject {
                kind: "user".into(),
                id: "usr_1".into(),
                attributes: vec![("org-unit".into(), "sales".into())],
            }),
            content_type: content_type.into(),
            payload: payload.to_vec(),
        }
    }

    #[test]
    fn identity_by_default() {
        let body = Json::transform(
            event("application/json", br#"{"a": 1}"#),
            &Settings::default(),
        )
        .unwrap();
        assert_eq!(body.content_type, "application/json");
        assert_eq!(body.bytes, br#"{"a": 1}"#);
    }

    #[test]
    fn envelope_wraps_the_payload() {
        let settings: Settings = [("envelope", "true")].into_iter().collect();
        let body = Json::transform(event("application/json", br#"{"a": 1}"#), &settings).unwrap();
        assert_eq!(body.content_type, "application/json");
        let value: Value = serde_json::from_slice(&body.bytes).unwrap();
        assert_eq!(
            value,
            json!({
                "id": "evt_1",
                "topic": "Accounts.Update",
                "tenant": "acme",
                "occurred_at": "2021-02-25T15:02:10.123Z",
                "subject": {"kind": "user", "id": "usr_1", "attributes": {"org-unit": "sales"}},
                "payload": {"a": 1},
            })
        );
    }

    #[test]
    fn envelope_keeps_the_payload_and_the_last_of_repeated_attributes() {
        let settings: Settings = [("envelope", "true")].into_iter().collect();
        let mut event = event("application/json", br#" {"b": [1, 2], "a": "x"} "#);
        if let Some(subject) = event.subject.as_mut() {
            subject
                .attributes
                .push(("org-unit".into(), "support".into()));
        }
        let body = Json::transform(event, &settings).unwrap();
        let text = String::from_utf8(body.bytes).unwrap();
        assert!(
            text.contains(r#""payload":{"b": [1, 2], "a": "x"}"#),
            "{text}"
        );
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            value["subject"]["attributes"],
            json!({"org-unit": "support"})
        );
    }

    #[test]
    fn envelope_embeds_text_and_refuses_binary() {
        let settings: Settings = [("envelope", "true")].into_iter().collect();
        let body = Json::transform(event("text/plain", b"hi"), &settings).unwrap();
        let value: Value = serde_json::from_slice(&body.bytes).unwrap();
        assert_eq!(value["payload"], "hi");
        assert_eq!(value["content_type"], "text/plain");
        assert!(
            Json::transform(event("application/octet-stream", &[0xff, 0xfe]), &settings).is_err()
        );
    }

    #[test]
    fn envelope_reports_invalid_json_and_bad_flags() {
        let settings: Settings = [("envelope", "true")].into_iter().collect();
        let error = Json::transform(event("application/json", b"{"), &settings).unwrap_err();
        assert!(error.to_string().starts_with("invalid JSON"));
        let settings: Settings = [("envelope", "maybe")].into_iter().collect();
        assert!(Json::transform(event("application/json", b"{}"), &settings).is_err());
    }
}
