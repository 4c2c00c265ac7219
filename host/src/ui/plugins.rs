//! Administration › Interfaces › Plugins: what is installed for this tenant, with
//! descriptions and the settings each one takes; uploading a component for this tenant
//! (a plain multipart form) and removing one. Both go through the same plugin host calls
//! as `/t/{tenant}/v1/plugins`: validated, then swapped in atomically, or refused with
//! nothing changed.

use axum::body::Bytes;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::session::Admin;
use super::{FormData, Nav, csrf, see_other};
use crate::api::error::ApiError;
use crate::api::plugins::MAX_COMPONENT_BYTES;
use crate::app::App;
use crate::domain::permissions;
use crate::plugins::{self, InstalledPlugin, Scope};

/// The largest upload form accepted: the component plus room for the CSRF field and the
/// multipart framing.
pub const MAX_UPLOAD_BYTES: usize = MAX_COMPONENT_BYTES + 64 * 1024;

/// What the page reports after a change (`?installed=` or `?removed=`).
#[derive(Debug, Default, Deserialize)]
pub struct Done {
    installed: Option<String>,
    removed: Option<String>,
}

/// What a plugin row says about where it comes from, and whether it can go.
fn origin(p: &InstalledPlugin) -> &'static str {
    if p.builtin {
        "Built in: cannot be removed"
    } else if p.scope == Scope::Global {
        "Global, installed by the operator: cannot be removed here"
    } else {
        "Uploaded for this tenant"
    }
}

fn render(app: &App, admin: &Admin, done: &Done, error: Option<(StatusCode, &str)>) -> Response {
    let plugins = app.plugins.installed(Some(admin.tenant()));
    let may_manage = admin.caller.may(permissions::PLUGINS_MANAGE);
    let base = format!("/t/{}/admin/plugins", admin.tenant());
    let body = html! {
        @if let Some((_, detail)) = error {
            p.error role="alert" id="plugin-error" { (detail) " Nothing was changed." }
        }
        @if let Some(name) = &done.installed {
            p role="status" id="plugin-done" { "Plugin " code { (name) } " is installed and in use." }
        }
        @if let Some(name) = &done.removed {
            p role="status" id="plugin-done" { "Plugin " code { (name) } " was removed." }
        }
        table id="plugins" {
            thead { tr { th { "Plugin" } th { "Kind" } th { "Version" } th { "Description" } th { "Settings" } th { "Origin" } } }
            tbody {
                @for p in &plugins {
                    tr data-name=(p.info.name) {
                        td { strong { (p.info.name) } }
                        td { (p.info.kind.as_str()) }
                        td { (p.info.version) }
                        td { (p.info.description) }
                        td {
                            @if p.info.settings.is_empty() { "—" }
                            @for s in &p.info.settings {
                                div {
                                    code { (s.name) }
                                    @if s.required { " (required)" }
                                    @if s.secret { " (secret)" }
                                    ": " (s.description)
                                }
                            }
                        }
                        td {
                            span class=(if p.builtin { "badge builtin" } else { "badge" }) { (origin(p)) }
                            @if may_manage && p.scope == Scope::Tenant {
                                " "
                                form.inline method="post" action=(format!("{base}/{}/remove", p.info.name)) {
                                    (csrf(admin))
                                    button type="submit" name="remove" { "Remove" }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if may_manage {
            h2 { "Upload a plugin" }
            form method="post" action=(base) enctype="multipart/form-data" id="upload-plugin" {
                (csrf(admin))
                fieldset {
                    label {
                        "WebAssembly component (.wasm)" br;
                        input type="file" name="component" accept=".wasm,application/wasm" required;
                    }
                    p.hint {
                        "It is checked (one plugin world, the imports the host grants, a valid "
                        "describe()) and then used at once, for this tenant only. A plugin of the "
                        "same name replaces this tenant's own; built-in names are refused. At most "
                        (MAX_COMPONENT_BYTES / (1024 * 1024)) " MiB."
                    }
                    button type="submit" { "Upload and install" }
                }
            }
        }
    };
    let mut response = super::page(admin, Nav::Plugins, "Plugins", body);
    if let Some((status, _)) = error {
        *response.status_mut() = status;
    }
    response
}

/// `GET /t/{tenant}/admin/plugins`.
pub async fn page(State(app): State<App>, admin: Admin, Query(done): Query<Done>) -> Response {
    render(&app, &admin, &done, None)
}

/// The fields of the upload form.
#[derive(Debug, Default)]
struct Upload {
    csrf: String,
    component: Bytes,
}

/// Reads the upload form; the error is the status and what to tell the user.
async fn read_upload(
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Upload, (StatusCode, String)> {
    let mut multipart = multipart.map_err(|e| {
        (
            StatusCode::BAD_REQUEST,
            format!("The upload was not a file form: {}.", e.body_text()),
        )
    })?;
    let mut upload = Upload::default();
    let too_large = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "The file is too large: a component may be at most {MAX_COMPONENT_BYTES} bytes."
                ),
            )
        } else {
            (
                StatusCode::BAD_REQUEST,
                format!("The upload could not be read: {}.", e.body_text()),
            )
        }
    };
    while let Some(field) = multipart.next_field().await.map_err(too_large)? {
        let name = field.name().map(str::to_owned);
        match name.as_deref() {
            Some("csrf") => upload.csrf = field.text().await.map_err(too_large)?,
            Some("component") => upload.component = field.bytes().await.map_err(too_large)?,
            _ => {}
        }
    }
    Ok(upload)
}

/// `POST /t/{tenant}/admin/plugins`: installs the uploaded component for this tenant.
pub async fn upload(
    State(app): State<App>,
    admin: Admin,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let upload = match read_upload(multipart).await {
        Ok(upload) => upload,
        Err((status, detail)) => {
            return render(&app, &admin, &Done::default(), Some((status, &detail)));
        }
    };
    if let Some(refused) = super::refusal(
        &admin,
        Nav::Plugins,
        Some(&upload.csrf),
        permissions::PLUGINS_MANAGE,
    ) {
        return refused;
    }
    if upload.component.is_empty() {
        let detail = "Choose a component file (.wasm) to upload.";
        return render(
            &app,
            &admin,
            &Done::default(),
            Some((StatusCode::UNPROCESSABLE_ENTITY, detail)),
        );
    }
    match app
        .plugins
        .install(Some(admin.tenant()), &upload.component)
        .await
    {
        Ok(info) => {
            tracing::info!(plugin = %info.name, user = %admin.caller.actor(), "plugin uploaded in the admin UI");
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            query.append_pair("installed", &info.name);
            see_other(&format!(
                "/t/{}/admin/plugins?{}",
                admin.tenant(),
                query.finish()
            ))
        }
        Err(e) => plugin_error(&app, &admin, e),
    }
}

/// `POST /t/{tenant}/admin/plugins/{name}/remove`: removes one of this tenant's plugins.
pub async fn remove(
    State(app): State<App>,
    admin: Admin,
    Path((_, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    if let Some(refused) = super::refusal(
        &admin,
        Nav::Plugins,
        form.get("csrf"),
        permissions::PLUGINS_MANAGE,
    ) {
        return refused;
    }
    match app.plugins.remove(Some(admin.tenant()), &name) {
        Ok(()) => {
            tracing::info!(plugin = %name, user = %admin.caller.actor(), "plugin removed in the admin UI");
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            query.append_pair("removed", &name);
            see_other(&format!(
                "/t/{}/admin/plugins?{}",
                admin.tenant(),
                query.finish()
            ))
        }
        Err(e) => plugin_error(&app, &admin, e),
    }
}

/// The plugins page with the error, answered with the status the API gives it.
fn plugin_error(app: &App, admin: &Admin, e: plugins::Error) -> Response {
    let answer = ApiError::from(e);
    render(
        app,
        admin,
        &Done::default(),
        Some((answer.status, &answer.detail)),
    )
}
