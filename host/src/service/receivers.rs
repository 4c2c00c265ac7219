//! Webhook receivers: validated against the topic catalog, the tenant's API accounts and
//! the chosen plugins' settings; secrets are write-only; removal is soft.

use serde::Deserialize;

use super::{Error, Result, events, input};
use crate::app::App;
use crate::domain::{PluginRef, Receiver, Subject, ids, topics};
use crate::plugins::PluginKind;

/// How secret settings are shown.
pub const MASK: &str = "********";
/// The default payload transform.
pub const DEFAULT_TRANSFORM: &str = "json";
/// The default authorization filter.
pub const DEFAULT_FILTER: &str = "scope-filter";

/// The schema of a receiver's `topics`: what [`topics::is_valid_pattern`] takes, 1 to 100
/// of them.
fn topic_patterns() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(r"^(\*|[A-Za-z0-9_-]+)(\.(\*|[A-Za-z0-9_-]+))*$"))
                .max_length(Some(200)),
        )
        .min_items(Some(1))
        .max_items(Some(100))
        .description(Some(
            "Topic patterns: dot-separated names, `*` for any one segment.",
        ))
        .build()
}

/// A receiver to add.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReceiver {
    /// Where webhooks go.
    #[schema(format = "uri", pattern = "^https?://")]
    pub url: String,
    /// Topic patterns.
    #[schema(schema_with = topic_patterns)]
    pub topics: Vec<String>,
    /// The API account the webhooks are authorized against.
    pub api_account: String,
    /// The authentication protocol.
    #[serde(deserialize_with = "input::object")]
    pub auth: PluginRef,
    /// The payload transform; `json` when absent.
    #[serde(default, deserialize_with = "input::optional_object")]
    pub transform: Option<PluginRef>,
    /// The authorization filter; `scope-filter` when absent.
    #[serde(default, deserialize_with = "input::optional_object")]
    pub filter: Option<PluginRef>,
    /// A note for people.
    #[serde(default)]
    pub description: Option<String>,
}

/// Changes to a receiver; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiverPatch {
    /// Where webhooks go.
    #[schema(format = "uri", pattern = "^https?://")]
    pub url: Option<String>,
    /// Topic patterns.
    #[schema(schema_with = topic_patterns)]
    pub topics: Option<Vec<String>>,
    /// The API account.
    pub api_account: Option<String>,
    /// The authentication protocol; a secret given as the mask keeps its old value.
    #[serde(default, deserialize_with = "input::optional_object")]
    pub auth: Option<PluginRef>,
    /// The payload transform.
    #[serde(default, deserialize_with = "input::optional_object")]
    pub transform: Option<PluginRef>,
    /// The authorization filter.
    #[serde(default, deserialize_with = "input::optional_object")]
    pub filter: Option<PluginRef>,
    /// A note for people.
    pub description: Option<String>,
}

fn subject(receiver: &Receiver) -> Subject {
    Subject {
        kind: "receiver".into(),
        id: receiver.id.clone(),
        attributes: Default::default(),
    }
}

/// Adds a receiver and emits `Receivers.Create`.
pub async fn create(app: &App, tenant: &str, by: &str, new: NewReceiver) -> Result<Receiver> {
    let now = app.now();
    let receiver = Receiver {
        id: ids::new("rcv"),
        tenant: tenant.to_owned(),
        url: new.url,
        topics: new.topics,
        api_account: new.api_account,
        auth: new.auth,
        transform: new
            .transform
            .unwrap_or_else(|| PluginRef::named(DEFAULT_TRANSFORM)),
        filter: new
            .filter
            .unwrap_or_else(|| PluginRef::named(DEFAULT_FILTER)),
        description: new.description,
        created_at: now,
        updated_at: now,
        deleted_at: None,
        deleted_reason: None,
    };
    validate(app, &receiver).await?;
    save_and_emit(app, tenant, by, receiver, "Receivers.Create").await
}

/// Changes a live receiver and emits `Receivers.Update`.
pub async fn update(
    app: &App,
    tenant: &str,
    by: &str,
    id: &str,
    patch: ReceiverPatch,
) -> Result<Receiver> {
    let mut receiver = load(app, tenant, id).await?;
    if !receiver.is_live() {
        return Err(Error::Conflict(format!(
            "receiver {id} was removed and cannot be changed"
        )));
    }
    if let Some(url) = patch.url {
        receiver.url = url;
    }
    if let Some(topics) = patch.topics {
        receiver.topics = topics;
    }
    if let Some(account) = patch.api_account {
        receiver.api_account = account;
    }
    if let Some(auth) = patch.auth {
        receiver.auth = keep_masked(&receiver.auth, auth);
    }
    if let Some(transform) = patch.transform {
        receiver.transform = keep_masked(&receiver.transform, transform);
    }
    if let Some(filter) = patch.filter {
        receiver.filter = keep_masked(&receiver.filter, filter);
    }
    if let Some(description) = patch.description {
        receiver.description = Some(description).filter(|d| !d.is_empty());
    }
    receiver.updated_at = app.now();
    validate(app, &receiver).await?;
    save_and_emit(app, tenant, by, receiver, "Receivers.Update").await
}

/// Removes a receiver (softly: it stays listed with `deleted_at`, its log stays) and
/// emits `Receivers.Delete`. Removing a removed receiver changes nothing.
pub async fn delete(app: &App, tenant: &str, by: &str, id: &str) -> Result<Receiver> {
    let mut receiver = load(app, tenant, id).await?;
    if !receiver.is_live() {
        return Ok(masked(app, &receiver));
    }
    receiver.deleted_at = Some(app.now());
    receiver.deleted_reason = Some(format!("removed by {by}"));
    save_and_emit(app, tenant, by, receiver, "Receivers.Delete").await
}

/// Stores `receiver` and emits `topic` about it; returns it with secrets masked.
async fn save_and_emit(
    app: &App,
    tenant: &str,
    by: &str,
    receiver: Receiver,
    topic: &str,
) -> Result<Receiver> {
    let stored = receiver.clone();
    app.blocking(move |s| s.put_receiver(&stored)).await?;
    let view = masked(app, &receiver);
    events::emit(app, tenant, by, topic, subject(&receiver), json(&view)).await?;
    Ok(view)
}

/// A receiver, secrets masked.
pub async fn get(app: &App, tenant: &str, id: &str) -> Result<Receiver> {
    Ok(masked(app, &load(app, tenant, id).await?))
}

/// The tenant's receivers, secrets masked.
pub async fn list(app: &App, tenant: &str, include_deleted: bool) -> Result<Vec<Receiver>> {
    let t = tenant.to_owned();
    let all = app
        .blocking(move |s| s.receivers(&t, include_deleted))
        .await?;
    Ok(all.iter().map(|r| masked(app, r)).collect())
}

async fn load(app: &App, tenant: &str, id: &str) -> Result<Receiver> {
    let (t, i) = (tenant.to_owned(), id.to_owned());
    app.blocking(move |s| s.receiver(&t, &i))
        .await?
        .ok_or_else(|| Error::NotFound(format!("receiver {id}")))
}

fn json(receiver: &Receiver) -> serde_json::Value {
    serde_json::to_value(receiver).unwrap_or_default()
}

/// A new plugin choice where secrets sent back as the mask keep their stored value.
fn keep_masked(old: &PluginRef, mut new: PluginRef) -> PluginRef {
    if old.plugin == new.plugin {
        for (name, value) in new.settings.iter_mut() {
            if value == MASK
                && let Some(previous) = old.settings.get(name)
            {
                value.clone_from(previous);
            }
        }
    }
    new
}

/// The receiver with every secret setting replaced by the mask.
pub fn masked(app: &App, receiver: &Receiver) -> Receiver {
    let mut view = receiver.clone();
    for choice in [&mut view.auth, &mut view.transform, &mut view.filter] {
        let Some(info) = app.plugins.info(&receiver.tenant, &choice.plugin) else {
            continue;
        };
        for setting in info.settings.iter().filter(|s| s.secret) {
            if let Some(value) = choice.settings.get_mut(&setting.name) {
                *value = MASK.to_owned();
            }
        }
    }
    view
}

async fn validate(app: &App, r: &Receiver) -> Result<()> {
    validate_url(&r.url)?;
    if !app.config.delivery.allow_private_targets
        && let Ok(url) = url::Url::parse(&r.url)
    {
        crate::delivery::guard::check_literal(&url).map_err(Error::Invalid)?;
    }
    if r.topics.is_empty() || r.topics.len() > 100 {
        return Err(Error::Invalid(
            "topics must list 1 to 100 topic patterns".into(),
        ));
    }
    let catalog = events::catalog(app);
    for pattern in &r.topics {
        if !topics::is_valid_pattern(pattern) {
            return Err(Error::Invalid(format!(
                "{pattern:?} is not a topic pattern (dot-separated names, `*` for one segment)"
            )));
        }
        if !catalog.iter().any(|t| topics::matches(pattern, &t.name)) {
            return Err(Error::Invalid(format!(
                "{pattern:?} matches no topic in the catalog; GET /topics lists them"
            )));
        }
    }
    if r.description.as_ref().is_some_and(|d| d.len() > 1000) {
        return Err(Error::Invalid(
            "description is limited to 1000 characters".into(),
        ));
    }
    let (t, a) = (r.tenant.clone(), r.api_account.clone());
    let account = app.blocking(move |s| s.api_account(&t, &a)).await?;
    if account.is_none() {
        return Err(Error::Invalid(format!(
            "api_account {:?} is not an API account of this tenant",
            r.api_account
        )));
    }
    let checks = [
        ("auth", &r.auth, PluginKind::AuthProtocol),
        ("transform", &r.transform, PluginKind::PayloadTransform),
        ("filter", &r.filter, PluginKind::AuthorizationFilter),
    ];
    for (field, choice, kind) in checks {
        app.plugins
            .check_settings(&r.tenant, &choice.plugin, kind, &choice.settings)
            .map_err(|e| Error::Invalid(format!("{field}: {e}")))?;
    }
    Ok(())
}

fn validate_url(text: &str) -> Result<()> {
    let url = url::Url::parse(text).map_err(|e| Error::Invalid(format!("url {text:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::Invalid("url must be http or https".into()));
    }
    if url.host().is_none() || text.len() > 2048 {
        return Err(Error::Invalid(
            "url must have a host and at most 2048 characters".into(),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::Invalid(
            "url must not carry credentials; use the auth protocol's settings".into(),
        ));
    }
    Ok(())
}
