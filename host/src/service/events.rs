//! Publishing events: validated, stored with their fan-out job, durable before answering.

use serde::Deserialize;

use super::{Error, Result, input};
use crate::app::App;
use crate::domain::{Event, Subject, ids, topics};
use crate::store::{Publication, Published};

/// Largest payload accepted, serialized.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// What a producer publishes.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEvent {
    /// A topic from the catalog.
    pub topic: String,
    /// Who or what it is about.
    #[serde(default, deserialize_with = "input::optional_object")]
    pub subject: Option<Subject>,
    /// Any JSON.
    #[serde(default)]
    pub payload: serde_json::Value,
}

/// The topic catalog: built-in topics plus those in the config.
pub fn catalog(app: &App) -> Vec<topics::Topic> {
    topics::BUILT_IN
        .iter()
        .map(|(name, description)| topics::Topic {
            name: (*name).to_owned(),
            description: (*description).to_owned(),
        })
        .chain(app.config.topics.iter().cloned())
        .collect()
}

/// True when the catalog has `topic`.
pub fn is_known(app: &App, topic: &str) -> bool {
    topics::BUILT_IN.iter().any(|(name, _)| *name == topic)
        || app.config.topics.iter().any(|t| t.name == topic)
}

/// 1 to 255 visible ASCII characters other than `/` (keys are stored under `tenant/key`).
pub(crate) fn is_valid_idempotency_key(key: &str) -> bool {
    (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic() && b != b'/')
}

/// Publishes an event; answers once it is on disk. With an idempotency key the caller
/// used before, returns the first event's id and stores nothing.
pub async fn publish(
    app: &App,
    tenant: &str,
    by: &str,
    new: NewEvent,
    idempotency_key: Option<String>,
) -> Result<Published> {
    if !is_known(app, &new.topic) {
        return Err(Error::Invalid(format!(
            "unknown topic {:?}; GET /topics lists the catalog",
            new.topic
        )));
    }
    if let Some(key) = &idempotency_key
        && !is_valid_idempotency_key(key)
    {
        return Err(Error::Invalid(
            "Idempotency-Key must be 1 to 255 visible ASCII characters other than '/'".into(),
        ));
    }
    let payload = Event::payload_of(&new.payload);
    let size = payload.get().len();
    if size > MAX_PAYLOAD_BYTES {
        return Err(Error::Invalid(format!(
            "payload is {size} bytes; at most {MAX_PAYLOAD_BYTES} are accepted"
        )));
    }
    let event = Event {
        id: ids::new("evt"),
        tenant: tenant.to_owned(),
        topic: new.topic,
        subject: new.subject,
        payload,
        occurred_at: app.now(),
        published_by: by.to_owned(),
    };
    // Durable before the caller hears 202: concurrent publishers share one transaction
    // and one flush.
    let published = app
        .commit
        .publish(Publication {
            event,
            idempotency: idempotency_key.map(|k| (by.to_owned(), k)),
        })
        .await?;
    if matches!(published, Published::New(_)) {
        app.metrics.event_published();
        app.fanout_ready.notify_one();
    }
    Ok(published)
}

/// Emits the topic event of a change the API made, e.g. `Receivers.Create`.
pub async fn emit(
    app: &App,
    tenant: &str,
    by: &str,
    topic: &str,
    subject: Subject,
    payload: serde_json::Value,
) -> Result<()> {
    let new = NewEvent {
        topic: topic.to_owned(),
        subject: Some(subject),
        payload,
    };
    publish(app, tenant, by, new, None).await.map(|_| ())
}

/// An event of the tenant.
pub async fn get(app: &App, tenant: &str, id: &str) -> Result<Event> {
    let (t, i) = (tenant.to_owned(), id.to_owned());
    app.blocking(move |s| s.event(&t, &i))
        .await?
        .ok_or_else(|| Error::NotFound(format!("event {id}")))
}
