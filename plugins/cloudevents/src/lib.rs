//! CloudEvents 1.0 in structured mode (`application/cloudevents+json`): the event's id,
//! source, topic as `type`, time, subject and payload in one JSON document. JSON payloads
//! go in `data`, anything else base64-encoded in `data_base64`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use switchyard_plugin_sdk::{
    Body, Error, Event, PayloadTransform, PluginInfo, Setting, Settings, export,
};

/// The media type of a structured-mode CloudEvent.
pub const CONTENT_TYPE: &str = "application/cloudevents+json";

/// The default `source`; `{tenant}` is replaced by the event's tenant.
pub const DEFAULT_SOURCE: &str = "/switchyard/{tenant}";

/// The structured-mode CloudEvent for `event`.
pub fn cloudevent(event: &Event, source: &str) -> Result<Value, Error> {
    let mut ce = json!({
        "specversion": "1.0",
        "id": event.id,
        "source": source.replace("{tenant}", &event.tenant),
        "type": event.topic,
        "time": event.occurred_at(),
        "datacontenttype": event.content_type,
    });
    if let Some(subject) = &event.subject {
        ce["subject"] = Value::String(subject.id.clone());
    }
    if event.is_json() {
        ce["data"] = event.json::<Value>()?;
    } else {
        ce["data_base64"] = Value::String(STANDARD.encode(&event.payload));
    }
    Ok(ce)
}

/// The plugin.
pub struct CloudEvents;

impl PayloadTransform for CloudEvents {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "cloudevents",
            env!("CARGO_PKG_VERSION"),
            "CloudEvents 1.0, structured mode (application/cloudevents+json): type is the topic, \
             subject the subject's id, data the payload.",
        )
        .setting(Setting::optional(
            "source",
            "The CloudEvents `source` URI-reference; `{tenant}` is replaced. Default `/switchyard/{tenant}`.",
        ))
    }

    fn transform(event: Event, settings: &Settings) -> Result<Body, Error> {
        let ce = cloudevent(&event, settings.get_or("source", DEFAULT_SOURCE))?;
        let mut body = Body::json(&ce)?;
        body.content_type = CONTENT_TYPE.into();
        Ok(body)
    }
}

export!(payload_transform: CloudEvents);

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_plugin_sdk::Subject;

    fn event(content_type: &str, payload: &[u8]) -> Event {
        Event {
            id: "evt_1".into(),
            tenant: "acme".into(),
            topic: "Accounts.Update".into(),
            occurred_at_ms: 1_614_265_330_000,
            subject: Some(Subject {
                kind: "user".into(),
                id: "usr_1".into(),
                attributes: vec![],
            }),
            content_type: content_type.into(),
            payload: payload.to_vec(),
        }
    }

    #[test]
    fn json_payload_goes_in_data() {
        let body = CloudEvents::transform(
            event("application/json", br#"{"name":"Ada"}"#),
            &Settings::default(),
        )
        .unwrap();
        assert_eq!(body.content_type, CONTENT_TYPE);
        let value: Value = serde_json::from_slice(&body.bytes).unwrap();
        assert_eq!(
            value,
            json!({
                "specversion": "1.0",
                "id": "evt_1",
                "source": "/switchyard/acme",
                "type": "Accounts.Update",
                "time": "2021-02-25T15:02:10.000Z",
                "subject": "usr_1",
                "datacontenttype": "application/json",
                "data": {"name": "Ada"},
            })
        );
    }

    #[test]
    fn other_payloads_go_in_data_base64() {
        let value = cloudevent(
            &event("application/octet-stream", &[0, 1, 2]),
            DEFAULT_SOURCE,
        )
        .unwrap();
        assert_eq!(value["data_base64"], "AAEC");
        assert!(value.get("data").is_none());
    }

    #[test]
    fn source_setting_and_missing_subject() {
        let mut e = event("application/json", b"1");
        e.subject = None;
        let settings: Settings = [("source", "https://hr.example.com/{tenant}/events")]
            .into_iter()
            .collect();
        let body = CloudEvents::transform(e, &settings).unwrap();
        let value: Value = serde_json::from_slice(&body.bytes).unwrap();
        assert_eq!(value["source"], "https://hr.example.com/acme/events");
        assert!(value.get("subject").is_none());
    }

    #[test]
    fn invalid_json_is_an_error() {
        assert!(cloudevent(&event("application/json", b"{"), DEFAULT_SOURCE).is_err());
    }
}
