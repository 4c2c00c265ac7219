//! `/t/{tenant}/v1/plugins` (a tenant's own plugins, invisible to other tenants) and
//! `/operator/plugins` (global plugins). An upload is the raw component, hot-loaded.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};

use super::error::{ApiError, ErrorBody};
use super::extract::{Authenticated, Authorized, PluginsManage};
use super::operator::Operator;
use crate::app::App;
use crate::plugins::InstalledPlugin;

/// Largest component accepted by an upload.
pub const MAX_COMPONENT_BYTES: usize = 32 * 1024 * 1024;

/// Media types an upload may be sent as; a missing `Content-Type` is accepted too.
pub(super) const COMPONENT_TYPES: &[&str] = &["application/wasm", "application/octet-stream"];

/// `GET /plugins`: the plugins the tenant sees, its own and global ones.
#[utoipa::path(get, path = "/t/{tenant}/v1/plugins", tag = "Plugins", summary = "The plugins the tenant sees: its own and the global ones",
    params(("tenant" = String, Path, description = "The tenant name")), responses((status = 200, description = "Plugins", body = Vec<InstalledPlugin>), (status = 401, description = "Missing, expired or other-tenant access token", body = ErrorBody)), security(("bearer" = [])))]
pub async fn list(
    State(app): State<App>,
    Authenticated(caller): Authenticated,
) -> Json<Vec<InstalledPlugin>> {
    Json(app.plugins.installed(Some(&caller.tenant)))
}

/// `GET /plugins/{name}`.
#[utoipa::path(get, path = "/t/{tenant}/v1/plugins/{name}", tag = "Plugins", summary = "One plugin with its settings",
    params(("tenant" = String, Path, description = "The tenant name"), ("name" = String, Path, description = "The plugin name")), responses((status = 200, description = "The plugin", body = InstalledPlugin), (status = 404, description = "No such plugin for this tenant", body = ErrorBody), (status = 401, description = "Missing, expired or other-tenant access token", body = ErrorBody)), security(("bearer" = [])))]
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
#[utoipa::path(post, path = "/t/{tenant}/v1/plugins", tag = "Plugins", summary = "Upload a plugin component for this tenant only (hot-loaded; replaces one of the same name)",
    params(("tenant" = String, Path, description = "The tenant name")), request_body(description = "The WebAssembly component's bytes", content(("application/wasm"), ("application/octet-stream"))),
    responses((status = 201, description = "Installed; Location names it", body = InstalledPlugin), (status = 413, description = "Larger than 32 MiB", body = ErrorBody), (status = 415, description = "Not application/wasm or application/octet-stream", body = ErrorBody), (status = 422, description = "Not a valid plugin component (the detail says why)", body = ErrorBody), (status = 409, description = "The name of a built-in plugin", body = ErrorBody), (status = 401, description = "Missing, expired or other-tenant access token", body = ErrorBody), (status = 403, description = "Lacks plugins.manage", body = ErrorBody)), security(("bearer" = [])))]
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
#[utoipa::path(delete, path = "/t/{tenant}/v1/plugins/{name}", tag = "Plugins", summary = "Remove one of the tenant's own plugins",
    params(("tenant" = String, Path, description = "The tenant name"), ("name" = String, Path, description = "The plugin name")), responses((status = 204, description = "Removed"), (status = 404, description = "No such plugin of this tenant", body = ErrorBody), (status = 409, description = "A built-in plugin", body = ErrorBody), (status = 401, description = "Missing, expired or other-tenant access token", body = ErrorBody), (status = 403, description = "Lacks plugins.manage", body = ErrorBody)), security(("bearer" = [])))]
pub async fn delete(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<PluginsManage>,
    Path((_, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    app.plugins.remove(Some(&caller.tenant), &name)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /operator/plugins`: the global plugins.
#[utoipa::path(get, path = "/operator/plugins", tag = "Operator", summary = "The global plugins",
    responses((status = 200, description = "Plugins", body = Vec<InstalledPlugin>), (status = 401, description = "Missing or wrong operator token", body = ErrorBody), (status = 404, description = "The operator API is off", body = ErrorBody)), security(("operator" = [])))]
pub async fn operator_list(State(app): State<App>, _: Operator) -> Json<Vec<InstalledPlugin>> {
    Json(app.plugins.installed(None))
}

/// `POST /operator/plugins`: installs or replaces a global plugin.
#[utoipa::path(post, path = "/operator/plugins", tag = "Operator", summary = "Upload a global plugin component (hot-loaded)",
    request_body(description = "The WebAssembly component's bytes", content(("application/wasm"), ("application/octet-stream"))),
    responses((status = 201, description = "Installed", body = InstalledPlugin), (status = 413, description = "Larger than 32 MiB", body = ErrorBody), (status = 415, description = "Not application/wasm or application/octet-stream", body = ErrorBody), (status = 422, description = "Not a valid plugin component (the detail says why)", body = ErrorBody), (status = 409, description = "The name of a built-in plugin", body = ErrorBody), (status = 401, description = "Missing or wrong operator token", body = ErrorBody), (status = 404, description = "The operator API is off", body = ErrorBody)), security(("operator" = [])))]
pub async fn operator_upload(
    State(app): State<App>,
    _: Operator,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, HeaderMap, Json<InstalledPlugin>), ApiError> {
    let base = format!("{}/operator/plugins", app.config.public_url());
    install(&app, None, &headers, body, &base).await
}

/// `DELETE /operator/plugins/{name}`.
#[utoipa::path(delete, path = "/operator/plugins/{name}", tag = "Operator", summary = "Remove a global plugin",
    params(("name" = String, Path, description = "The plugin name")), responses((status = 204, description = "Removed"), (status = 404, description = "No such plugin, or the operator API is off", body = ErrorBody), (status = 409, description = "A built-in plugin", body = ErrorBody), (status = 401, description = "Missing or wrong operator token", body = ErrorBody)), security(("operator" = [])))]
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
