//! `/t/{tenant}/v1/plugins` (a tenant's own plugins, invisible to other tenants) and
//! `/operator/plugins` (global plugins). An upload is the raw component, hot-loaded.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};

use super::error::ApiError;
use super::extract::{Authenticated, Authorized, PluginsManage};
use super::operator::Operator;
use crate::app::App;
use crate::plugins::InstalledPlugin;

/// Largest component accepted by an upload.
pub const MAX_COMPONENT_BYTES: usize = 32 * 1024 * 1024;

/// Media types an upload may be sent as; a missing `Content-Type` is accepted too.
const COMPONENT_TYPES: &[&str] = &["application/wasm", "application/octet-stream"];

/// `GET /plugins`: the plugins the tenant sees, its own and global ones.
pub async fn list(
    State(app): State<App>,
    Authenticated(caller): Authenticated,
) -> Json<Vec<InstalledPlugin>> {
    Json(app.plugins.installed(Some(&caller.tenant)))
}

/// `GET /plugins/{name}`.
pub async fn get(
    State(app): State<App>,
    Authenticated(caller): Authenticated,
    Path((_, name)): Path<(String, String)>,
) -> Result<Json<InstalledPlugin>, ApiError> {
    app.plugins
        .installed_one(Some(&caller.tenant), &name)
        .map(Json)
        .ok_or_else(|| crate::plugins::Error::NotFound(name).into())
}

/// `POST /plugins`: installs or replaces one of the tenant's own plugins.
pub async fn upload(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<PluginsManage>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, HeaderMap, Json<InstalledPlugin>), ApiError> {
    let base = format!("{}/plugins", app.config.base_url(&caller.tenant));
    install(&app, Some(&caller.tenant), &headers, body, &base).await
}

/// `DELETE /plugins/{name}`: removes one of the tenant's own plugins.
pub async fn delete(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<PluginsManage>,
    Path((_, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    app.plugins.remove(Some(&caller.tenant), &name)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /operator/plugins`: the global plugins.
pub async fn operator_list(State(app): State<App>, _: Operator) -> Json<Vec<InstalledPlugin>> {
    Json(app.plugins.installed(None))
}

/// `POST /operator/plugins`: installs or replaces a global plugin.
pub async fn operator_upload(
    State(app): State<App>,
    _: Operator,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, HeaderMap, Json<InstalledPlugin>), ApiError> {
    let base = format!(
        "{}/operator/plugins",
        app.config.public_url.trim_end_matches('/')
    );
    install(&app, None, &headers, body, &base).await
}

/// `DELETE /operator/plugins/{name}`.
pub async fn operator_delete(
    State(app): State<App>,
    _: Operator,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    app.plugins.remove(None, &name)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Validates, stores and swaps in an upload: `201` with `Location` and the plugin.
async fn install(
    app: &App,
    tenant: Option<&str>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    base: &str,
) -> Result<(StatusCode, HeaderMap, Json<InstalledPlugin>), ApiError> {
    check_content_type(headers)?;
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("a component may be at most {MAX_COMPONENT_BYTES} bytes"),
            )
        } else {
            ApiError::bad_request(rejection.body_text())
        }
    })?;
    if body.is_empty() {
        return Err(crate::plugins::Error::Invalid(
            "the body is empty; send the component's bytes (Content-Type: application/wasm)".into(),
        )
        .into());
    }
    let info = app.plugins.install(tenant, &body).await?;
    let installed = app
        .plugins
        .installed_one(tenant, &info.name)
        .ok_or_else(|| ApiError::internal(&"an installed plugin is not registered"))?;
    let mut response_headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&format!("{base}/{}", info.name)) {
        response_headers.insert(header::LOCATION, value);
    }
    Ok((StatusCode::CREATED, response_headers, Json(installed)))
}

fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let media = value
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if COMPONENT_TYPES.contains(&media.as_str()) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the component's bytes with Content-Type: application/wasm",
        ))
    }
}
