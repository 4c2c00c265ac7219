//! Extractors: JSON bodies with clear errors, and callers with the permission a handler
//! needs, so a handler's signature states what it requires.

use std::marker::PhantomData;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::app::App;
use crate::auth::Caller;
use crate::domain::{AuditEntry, ids, permissions};
use crate::service::input::Object;

/// A JSON body whose errors answer as JSON with what is wrong. Every body of this API is
/// a JSON object, as its schema says.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<Object<T>>::from_request(req, state).await {
            Ok(axum::Json(Object(value))) => Ok(Self(value)),
            Err(rejection) => Err(json_error(rejection)),
        }
    }
}

fn json_error(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(e) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", cause(&e))
        }
        JsonRejection::JsonSyntaxError(e) => {
            ApiError::bad_request(format!("malformed JSON: {}", cause(&e)))
        }
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with Content-Type: application/json",
        ),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is too large",
        ),
        other => ApiError::bad_request(other.body_text()),
    }
}

/// What serde said is wrong, under the extractor's own wrapping.
fn cause(e: &dyn std::error::Error) -> String {
    e.source()
        .map_or_else(|| e.to_string(), ToString::to_string)
}

/// A query string whose errors answer as JSON with what is wrong (400).
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => Err(ApiError::bad_request(
                format!("malformed query: {}", cause(&e)),
            )),
            Err(other) => Err(ApiError::bad_request(other.body_text())),
        }
    }
}

/// A permission a handler requires.
pub trait Permission: Send + Sync {
    /// Its name, e.g. `webhooks.manage`.
    const NAME: &'static str;
}

macro_rules! permission {
    ($($ty:ident => $name:expr),* $(,)?) => {$(
        #[doc = concat!("The `", stringify!($name), "` permission.")]
        #[derive(Debug)]
        pub struct $ty;
        impl Permission for $ty {
            const NAME: &'static str = $name;
        }
    )*};
}

permission! {
    AccountsRead => permissions::ACCOUNTS_READ,
    AccountsWrite => permissions::ACCOUNTS_WRITE,
    ApiAccountsManage => permissions::API_ACCOUNTS_MANAGE,
    WebhooksManage => permissions::WEBHOOKS_MANAGE,
    EventsPublish => permissions::EVENTS_PUBLISH,
    PluginsManage => permissions::PLUGINS_MANAGE,
}

/// Any authenticated caller of the tenant in the path.
#[derive(Debug)]
pub struct Authenticated(pub Caller);

/// An authenticated caller that holds permission `P`; others get 403.
#[derive(Debug)]
pub struct Authorized<P>(pub Caller, pub PhantomData<P>);

impl FromRequestParts<App> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let params = RawPathParams::from_request_parts(parts, app)
            .await
            .map_err(|_| ApiError::not_found("no such tenant"))?;
        let tenant = params
            .iter()
            .find(|(name, _)| *name == "tenant")
            .map(|(_, value)| value.to_owned())
            .ok_or_else(|| ApiError::not_found("no such tenant"))?;
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(|t| t.trim().to_owned())
            .ok_or_else(ApiError::unauthenticated)?;
        let now = app.now();
        let caller = app.quick(|s| app.bearers.authenticate(s, now, &tenant, &token))?;
        // Every action taken by impersonation is recorded: "user X via account Y".
        if let Some(user) = &caller.acting_for {
            let entry = AuditEntry {
                id: ids::new("aud"),
                tenant: caller.tenant.clone(),
                at: now,
                api_account: caller.account.clone(),
                on_behalf_of: user.clone(),
                action: format!("{} {}", parts.method, parts.uri.path()),
            };
            app.blocking(move |s| s.append_audit(&entry)).await?;
        }
        Ok(Self(caller))
    }
}

impl<P: Permission> FromRequestParts<App> for Authorized<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let Authenticated(caller) = Authenticated::from_request_parts(parts, app).await?;
        if !caller.may(P::NAME) {
            return Err(ApiError::forbidden(format!(
                "this action requires the {:?} permission, which account {} lacks",
                P::NAME,
                caller.account
            )));
        }
        Ok(Self(caller, PhantomData))
    }
}
