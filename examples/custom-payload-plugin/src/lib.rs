//! `chat-message`: turns any event into a chat message, the body chat tools' incoming
//! webhooks take: `{"text": "…", "topic", "subject", "fields": {...}}`.

use serde_json::{Map, Value, json};
use switchyard_plugin_sdk::{
    Body, Error, Event, PayloadTransform, PluginInfo, Setting, Settings, export,
};

/// The plugin.
pub struct ChatMessage;

impl PayloadTransform for ChatMessage {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "chat-message",
            env!("CARGO_PKG_VERSION"),
            "Turns an event into a chat message: {text, topic, subject, fields}.",
        )
        .setting(Setting::optional(
            "prefix",
            "Put in front of the text, e.g. an emoji.",
        ))
    }

    fn transform(event: Event, settings: &Settings) -> Result<Body, Error> {
        // Top-level payload fields become the message's fields; anything else is kept whole.
        let fields = match event.json::<Value>()? {
            Value::Object(map) => map,
            other => Map::from_iter([("payload".to_string(), other)]),
        };
        let subject = event
            .subject
            .as_ref()
            .map(|s| format!("{} {}", s.kind, s.id));
        let text = format!(
            "{}{} on {}",
            settings.get_or("prefix", ""),
            event.topic,
            subject.as_deref().unwrap_or("no subject"),
        );
        Body::json(&json!({
            "text": text,
            "topic": event.topic,
            "subject": subject,
            "fields": fields,
        }))
    }
}

export!(payload_transform: ChatMessage);
