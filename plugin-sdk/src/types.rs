//! The data a plugin is handed and returns.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::__bindings::base::switchyard::plugin::types as wit;
use crate::Error;

/// One published event.
///
/// ```
/// use switchyard_plugin_sdk::Event;
///
/// let event = Event {
///     id: "evt_1".into(),
///     tenant: "acme".into(),
///     topic: "Accounts.Update".into(),
///     occurred_at_ms: 0,
///     subject: None,
///     content_type: "application/json".into(),
///     payload: br#"{"name":"Ada"}"#.to_vec(),
/// };
/// let payload: serde_json::Value = event.json().unwrap();
/// assert_eq!(payload["name"], "Ada");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The event id (`evt_…`).
    pub id: String,
    /// The tenant the event belongs to.
    pub tenant: String,
    /// Its topic, e.g. `Accounts.Update`.
    pub topic: String,
    /// When it happened, in milliseconds since the Unix epoch.
    pub occurred_at_ms: u64,
    /// What the event is about, when it is about someone or something.
    pub subject: Option<Subject>,
    /// The media type of `payload`; `application/json` for events published through the API.
    pub content_type: String,
    /// The payload as published.
    pub payload: Vec<u8>,
}

impl Event {
    /// Parses the payload as JSON into `T`.
    ///
    /// ```
    /// # use switchyard_plugin_sdk::Event;
    /// # let event = Event { id: "evt_1".into(), tenant: "t".into(), topic: "T".into(), occurred_at_ms: 0,
    /// #     subject: None, content_type: "application/json".into(), payload: b"[1,2]".to_vec() };
    /// let numbers: Vec<u32> = event.json().unwrap();
    /// assert_eq!(numbers, [1, 2]);
    /// ```
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        Ok(serde_json::from_slice(&self.payload)?)
    }

    /// Whether the payload's media type is JSON (`application/json` or `…+json`).
    ///
    /// ```
    /// # use switchyard_plugin_sdk::Event;
    /// # let mut event = Event { id: "evt_1".into(), tenant: "t".into(), topic: "T".into(), occurred_at_ms: 0,
    /// #     subject: None, content_type: "application/json; charset=utf-8".into(), payload: vec![] };
    /// assert!(event.is_json());
    /// event.content_type = "text/plain".into();
    /// assert!(!event.is_json());
    /// ```
    pub fn is_json(&self) -> bool {
        let essence = self
            .content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        essence == "application/json" || essence.ends_with("+json")
    }

    /// When it happened, as an RFC 3339 UTC timestamp.
    ///
    /// ```
    /// # use switchyard_plugin_sdk::Event;
    /// # let event = Event { id: "evt_1".into(), tenant: "t".into(), topic: "T".into(), occurred_at_ms: 1_000,
    /// #     subject: None, content_type: "application/json".into(), payload: vec![] };
    /// assert_eq!(event.occurred_at(), "1970-01-01T00:00:01.000Z");
    /// ```
    pub fn occurred_at(&self) -> String {
        crate::rfc3339(self.occurred_at_ms)
    }
}

/// Who or what an event is about, e.g. the user that was changed.
///
/// ```
/// use switchyard_plugin_sdk::Subject;
///
/// let subject = Subject {
///     kind: "user".into(),
///     id: "usr_1".into(),
///     attributes: vec![("org-unit".into(), "sales".into())],
/// };
/// assert_eq!(subject.attribute("org-unit"), Some("sales"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// The kind of subject, e.g. `user`.
    pub kind: String,
    /// Its id in the business application.
    pub id: String,
    /// Attributes an authorization filter may look at, e.g. `("org-unit", "sales")`.
    pub attributes: Vec<(String, String)>,
}

impl Subject {
    /// The value of attribute `name`, if the subject has it.
    ///
    /// ```
    /// # use switchyard_plugin_sdk::Subject;
    /// let subject = Subject { kind: "user".into(), id: "usr_1".into(), attributes: vec![] };
    /// assert_eq!(subject.attribute("org-unit"), None);
    /// ```
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// The account on whose behalf a webhook is received: a receiver's API account.
///
/// ```
/// use switchyard_plugin_sdk::Principal;
///
/// let principal = Principal {
///     id: "acc_1".into(),
///     permissions: vec!["accounts.read".into()],
///     scopes: vec![("org-unit".into(), vec!["sales".into()])],
/// };
/// assert!(principal.has_permission("accounts.read"));
/// assert_eq!(principal.scope("org-unit"), Some(&["sales".to_string()][..]));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The API account id (`acc_…`).
    pub id: String,
    /// Its permissions, e.g. `accounts.read`; `*` stands for every permission.
    pub permissions: Vec<String>,
    /// Its data scope: attribute name to the values it may see; `*` means every value.
    pub scopes: Vec<(String, Vec<String>)>,
}

impl Principal {
    /// Whether it holds `permission`, directly or through `*`.
    ///
    /// ```
    /// # use switchyard_plugin_sdk::Principal;
    /// let admin = Principal { id: "acc_1".into(), permissions: vec!["*".into()], scopes: vec![] };
    /// assert!(admin.has_permission("accounts.read"));
    /// ```
    pub fn has_permission(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| p == permission || p == "*")
    }

    /// The values it may see for attribute `name`, if its scope names that attribute.
    ///
    /// ```
    /// # use switchyard_plugin_sdk::Principal;
    /// let principal = Principal { id: "acc_1".into(), permissions: vec![], scopes: vec![] };
    /// assert_eq!(principal.scope("org-unit"), None);
    /// ```
    pub fn scope(&self, name: &str) -> Option<&[String]> {
        self.scopes
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, values)| values.as_slice())
    }
}

/// A webhook request about to be sent.
///
/// ```
/// use switchyard_plugin_sdk::Request;
///
/// let mut request = Request {
///     method: "POST".into(),
///     url: "https://example.com/hook".into(),
///     headers: vec![("Content-Type".into(), "application/json".into())],
///     body: b"{}".to_vec(),
/// };
/// request.set_header("authorization", "Bearer abc");
/// assert_eq!(request.header("Authorization"), Some("Bearer abc"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The HTTP method, `POST` unless a plugin changes it.
    pub method: String,
    /// The receiver's URL.
    pub url: String,
    /// The headers set so far (`content-type`, `webhook-id`, `x-switchyard-topic`, …).
    pub headers: Vec<(String, String)>,
    /// The body exactly as it will be sent.
    pub body: Vec<u8>,
}

impl Request {
    /// The first value of header `name` (compared case-insensitively).
    ///
    /// ```
    /// # use switchyard_plugin_sdk::Request;
    /// let request = Request { method: "POST".into(), url: "https://example.com".into(),
    ///     headers: vec![("Webhook-Id".into(), "dlv_1".into())], body: vec![] };
    /// assert_eq!(request.header("webhook-id"), Some("dlv_1"));
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Sets header `name` to `value`, replacing any values it had (compared
    /// case-insensitively).
    ///
    /// ```
    /// # use switchyard_plugin_sdk::Request;
    /// let mut request = Request { method: "POST".into(), url: "https://example.com".into(),
    ///     headers: vec![("X-Hub-Signature".into(), "old".into())], body: vec![] };
    /// request.set_header("x-hub-signature", "sha256=00");
    /// assert_eq!(request.headers, [("x-hub-signature".to_string(), "sha256=00".to_string())]);
    /// ```
    pub fn set_header(&mut self, name: &str, value: impl Into<String>) {
        self.headers
            .retain(|(key, _)| !key.eq_ignore_ascii_case(name));
        self.headers.push((name.to_string(), value.into()));
    }
}

/// What is known about the delivery a request belongs to.
///
/// ```
/// use switchyard_plugin_sdk::DeliveryContext;
///
/// let context = DeliveryContext {
///     delivery_id: "dlv_1".into(),
///     event_id: "evt_1".into(),
///     topic: "Accounts.Update".into(),
///     attempt: 1,
/// };
/// assert_eq!(context.attempt, 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryContext {
    /// The delivery id (`dlv_…`), also sent as `webhook-id`; the same on every attempt.
    pub delivery_id: String,
    /// The event id.
    pub event_id: String,
    /// The event's topic.
    pub topic: String,
    /// The attempt number, starting at 1.
    pub attempt: u32,
}

/// A transformed payload: the body a receiver gets.
///
/// ```
/// use switchyard_plugin_sdk::Body;
///
/// let body = Body::new("text/plain", b"hello".to_vec());
/// assert_eq!(body.bytes, b"hello");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    /// The media type to send it with.
    pub content_type: String,
    /// The bytes to send.
    pub bytes: Vec<u8>,
}

impl Body {
    /// A body of `bytes` sent as `content_type`.
    ///
    /// ```
    /// # use switchyard_plugin_sdk::Body;
    /// assert_eq!(Body::new("text/csv", b"a,b".to_vec()).content_type, "text/csv");
    /// ```
    pub fn new(content_type: impl Into<String>, bytes: Vec<u8>) -> Self {
        Self {
            content_type: content_type.into(),
            bytes,
        }
    }

    /// `value` serialized as JSON, sent as `application/json`.
    ///
    /// ```
    /// use switchyard_plugin_sdk::Body;
    ///
    /// let body = Body::json(&serde_json::json!({"ok": true})).unwrap();
    /// assert_eq!(body.content_type, "application/json");
    /// assert_eq!(body.bytes, br#"{"ok":true}"#);
    /// ```
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Self, Error> {
        Ok(Self::new("application/json", serde_json::to_vec(value)?))
    }
}

/// What a plugin says about itself; drives the admin UI's settings form.
///
/// ```
/// use switchyard_plugin_sdk::{PluginInfo, Setting};
///
/// let info = PluginInfo::new("websub", "0.1.0", "Signs the body with an HMAC.")
///     .setting(Setting::required("secret", "The shared secret.").secret());
/// assert_eq!(info.settings.len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// Its name, how receivers refer to it, e.g. `websub`: lowercase letters, digits
    /// and `-`, starting with a letter.
    pub name: String,
    /// Its version, semver.
    pub version: String,
    /// One or two sentences for operators and administrators.
    pub description: String,
    /// The settings it takes.
    pub settings: Vec<Setting>,
}

impl PluginInfo {
    /// A plugin with no settings yet.
    ///
    /// ```
    /// # use switchyard_plugin_sdk::PluginInfo;
    /// let info = PluginInfo::new("json", env!("CARGO_PKG_VERSION"), "Sends the payload as published.");
    /// assert!(info.settings.is_empty());
    /// ```
    pub fn new(
        name: impl Into<String>,
        version: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            description: description.into(),
            settings: Vec::new(),
        }
    }

    /// Adds a setting.
    ///
    /// ```
    /// # use switchyard_plugin_sdk::{PluginInfo, Setting};
    /// let info = PluginInfo::new("json", "0.1.0", "…").setting(Setting::optional("envelope", "Wrap it."));
    /// assert_eq!(info.settings[0].name, "envelope");
    /// ```
    pub fn setting(mut self, setting: Setting) -> Self {
        self.settings.push(setting);
        self
    }
}

/// One setting a plugin takes, shown as a field in the admin UI.
///
/// ```
/// use switchyard_plugin_sdk::Setting;
///
/// let secret = Setting::required("client_secret", "The OAuth2 client secret.").secret();
/// assert!(secret.required && secret.secret);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The setting's key, e.g. `secret`.
    pub name: String,
    /// What it means, for the person filling it in.
    pub description: String,
    /// Secret settings are write-only: the API and UI show them masked.
    pub secret: bool,
    /// Whether a receiver must set it.
    pub required: bool,
}

impl Setting {
    /// A setting every receiver must give.
    ///
    /// ```
    /// # use switchyard_plugin_sdk::Setting;
    /// assert!(Setting::required("token_url", "The token endpoint.").required);
    /// ```
    pub fn required(name: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            description: description.into(),
            secret: false,
            required: true,
        }
    }

    /// A setting a receiver may leave out.
    ///
    /// ```
    /// # use switchyard_plugin_sdk::Setting;
    /// assert!(!Setting::optional("scope", "The scope to ask for.").required);
    /// ```
    pub fn optional(name: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            required: false,
            ..Self::required(name, description)
        }
    }

    /// Marks it secret: write-only, masked in the API and UI.
    ///
    /// ```
    /// # use switchyard_plugin_sdk::Setting;
    /// assert!(Setting::required("secret", "The shared secret.").secret().secret);
    /// ```
    pub fn secret(mut self) -> Self {
        self.secret = true;
        self
    }
}

// Conversions from and to the generated bindings. They move, never copy, the buffers.

impl From<wit::Subject> for Subject {
    fn from(s: wit::Subject) -> Self {
        Self {
            kind: s.kind,
            id: s.id,
            attributes: s.attributes,
        }
    }
}

impl From<wit::Event> for Event {
    fn from(e: wit::Event) -> Self {
        Self {
            id: e.id,
            tenant: e.tenant,
            topic: e.topic,
            occurred_at_ms: e.occurred_at_ms,
            subject: e.subject.map(Into::into),
            content_type: e.content_type,
            payload: e.payload,
        }
    }
}

impl From<wit::Principal> for Principal {
    fn from(p: wit::Principal) -> Self {
        Self {
            id: p.id,
            permissions: p.permissions,
            scopes: p.scopes,
        }
    }
}

impl From<wit::OutgoingRequest> for Request {
    fn from(r: wit::OutgoingRequest) -> Self {
        Self {
            method: r.method,
            url: r.url,
            headers: r.headers,
            body: r.body,
        }
    }
}

impl From<Request> for wit::OutgoingRequest {
    fn from(r: Request) -> Self {
        Self {
            method: r.method,
            url: r.url,
            headers: r.headers,
            body: r.body,
        }
    }
}

impl From<wit::DeliveryContext> for DeliveryContext {
    fn from(c: wit::DeliveryContext) -> Self {
        Self {
            delivery_id: c.delivery_id,
            event_id: c.event_id,
            topic: c.topic,
            attempt: c.attempt,
        }
    }
}

impl From<Body> for wit::Body {
    fn from(b: Body) -> Self {
        Self {
            content_type: b.content_type,
            bytes: b.bytes,
        }
    }
}

impl From<Setting> for wit::Setting {
    fn from(s: Setting) -> Self {
        Self {
            name: s.name,
            description: s.description,
            secret: s.secret,
            required: s.required,
        }
    }
}

impl From<PluginInfo> for wit::PluginInfo {
    fn from(i: PluginInfo) -> Self {
        Self {
            name: i.name,
            version: i.version,
            description: i.description,
            settings: i.settings.into_iter().map(Into::into).collect(),
        }
    }
}
