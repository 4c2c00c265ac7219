//! Administration › Interfaces › Webhooks: the receivers (removed ones too), adding one
//! in two steps (choose the protocol, then fill in the fields its plugin describes), and
//! removing one.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::session::Admin;
use super::{FormData, Nav, csrf, error_page, forbidden, see_other};
use crate::app::App;
use crate::domain::{PluginRef, permissions};
use crate::plugins::{PluginInfo, PluginKind};
use crate::service::{self, api_accounts, events, receivers};

/// `?protocol=` picks the second step of the add form.
#[derive(Debug, Deserialize)]
pub struct Step {
    protocol: Option<String>,
}

fn protocols(app: &App, tenant: &str) -> Vec<PluginInfo> {
    app.plugins
        .list(Some(tenant))
        .into_iter()
        .filter(|p| p.kind == PluginKind::AuthProtocol)
        .collect()
}

async fn render(app: &App, admin: &Admin, step: Step) -> Result<Response, service::Error> {
    let tenant = admin.tenant();
    let all = receivers::list(app, tenant, true).await?;
    let accounts = api_accounts::list(app, &admin.caller)
        .await
        .unwrap_or_default();
    let account_name = |id: &str| {
        accounts
            .iter()
            .find(|a| a.id == id)
            .map(|a| a.name.clone())
            .unwrap_or_else(|| id.to_owned())
    };
    let protocols = protocols(app, tenant);
    let chosen = step
        .protocol
        .as_deref()
        .and_then(|p| protocols.iter().find(|i| i.name == p));
    let base = format!("/t/{tenant}/admin");
    let body = html! {
        h2 { "Receivers" }
        @if all.is_empty() {
            p { "No receivers yet." }
        } @else {
            table id="receivers" {
                thead { tr { th { "Receiver" } th { "URL" } th { "Topics" } th { "API account" } th { "Protocol" } th { "State" } th { "" } } }
                tbody {
                    @for r in &all {
                        tr class=[(!r.is_live()).then_some("removed")] data-id=(r.id) {
                            td { code { (r.id) } @if let Some(d) = &r.description { br; (d) } }
                            td { (r.url) }
                            td { (r.topics.join(", ")) }
                            td { (account_name(&r.api_account)) }
                            td { (r.auth.plugin) }
                            td {
                                @if let Some(at) = r.deleted_at {
                                    span.badge.removed { "Removed" } " " (at.to_string())
                                } @else {
                                    span.badge.active { "Active" }
                                }
                            }
                            td {
                                a href=(format!("{base}/log?receiver={}", r.id)) { "Log" }
                                @if r.is_live() {
                                    " "
                                    form.inline method="post" action=(format!("{base}/webhooks/{}/remove", r.id)) {
                                        (csrf(admin))
                                        button type="submit" name="remove" { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Add a receiver" }
        form method="get" action=(format!("{base}/webhooks")) id="choose-protocol" {
            fieldset {
                legend { "Step 1: authentication protocol" }
                label {
                    "Protocol" br;
                    select name="protocol" {
                        @for p in &protocols {
                            option value=(p.name) selected[chosen.is_some_and(|c| c.name == p.name)] {
                                (p.name) " — " (p.description)
                            }
                        }
                    }
                }
                button type="submit" { "Next" }
            }
        }
        @if let Some(protocol) = chosen {
            (add_form(app, admin, &base, protocol, &accounts))
        }
    };
    Ok(super::page(admin, Nav::Webhooks, "Webhooks", body))
}

fn add_form(
    app: &App,
    admin: &Admin,
    base: &str,
    protocol: &PluginInfo,
    accounts: &[api_accounts::ApiAccountView],
) -> Markup {
    let topics = events::catalog(app);
    html! {
        form method="post" action=(format!("{base}/webhooks")) id="add-receiver" {
            (csrf(admin))
            input type="hidden" name="protocol" value=(protocol.name);
            fieldset {
                legend { "Step 2: the receiver (" (protocol.name) ")" }
                label { "URL" br; input type="url" name="url" required placeholder="https://crm.example.com/hooks"; }
                p { "Topics" }
                @for t in &topics {
                    label.check title=(t.description) {
                        input type="checkbox" name="topic" value=(t.name); " " (t.name)
                    }
                }
                label { "Other topic patterns (comma-separated, e.g. Accounts.*)" br; input type="text" name="topic_patterns"; }
                label {
                    "API account that receives the webhooks" br;
                    select name="api_account" required {
                        @for a in accounts.iter().filter(|a| !a.disabled) {
                            option value=(a.id) { (a.name) " (" (a.id) ")" }
                        }
                    }
                }
                @for s in &protocol.settings {
                    label {
                        (s.name) @if s.required { " *" } br;
                        @if s.secret {
                            input type="password" name=(format!("setting.{}", s.name)) required[s.required] autocomplete="new-password";
                        } @else {
                            input type="text" name=(format!("setting.{}", s.name)) required[s.required];
                        }
                        br; span.hint { (s.description) }
                    }
                }
                label { "Description (optional)" br; input type="text" name="description"; }
                button type="submit" { "Add receiver" }
            }
        }
    }
}

/// `GET /t/{tenant}/admin/webhooks`.
pub async fn page(State(app): State<App>, admin: Admin, Query(step): Query<Step>) -> Response {
    if !admin.caller.may(permissions::WEBHOOKS_MANAGE) {
        return forbidden(&admin, Nav::Webhooks, permissions::WEBHOOKS_MANAGE);
    }
    match render(&app, &admin, step).await {
        Ok(r) => r,
        Err(e) => super::service_error(&admin, Nav::Webhooks, e),
    }
}

/// `POST /t/{tenant}/admin/webhooks`: adds the receiver.
pub async fn create(State(app): State<App>, admin: Admin, body: Bytes) -> Response {
    let form = FormData::parse(&body);
    if let Some(refused) = super::refusal(
        &admin,
        Nav::Webhooks,
        form.get("csrf"),
        permissions::WEBHOOKS_MANAGE,
    ) {
        return refused;
    }
    let mut topics = form.all("topic");
    topics.extend(
        form.text("topic_patterns")
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned),
    );
    if topics.is_empty() {
        return error_page(
            &admin,
            Nav::Webhooks,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Choose at least one topic.",
        );
    }
    let settings: BTreeMap<String, String> = form
        .prefixed("setting.")
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect();
    let description = Some(form.text("description")).filter(|d| !d.is_empty());
    let new = receivers::NewReceiver {
        url: form.text("url"),
        topics,
        api_account: form.text("api_account"),
        auth: PluginRef {
            plugin: form.text("protocol"),
            settings,
        },
        transform: None,
        filter: None,
        description,
    };
    let by = admin.caller.actor();
    match receivers::create(&app, admin.tenant(), &by, new).await {
        Ok(r) => {
            tracing::info!(receiver = %r.id, user = %by, "receiver added in the admin UI");
            see_other(&format!("/t/{}/admin/webhooks", admin.tenant()))
        }
        Err(e) => super::service_error(&admin, Nav::Webhooks, e),
    }
}

/// `POST /t/{tenant}/admin/webhooks/{id}/remove`.
pub async fn remove(
    State(app): State<App>,
    admin: Admin,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    if let Some(refused) = super::refusal(
        &admin,
        Nav::Webhooks,
        form.get("csrf"),
        permissions::WEBHOOKS_MANAGE,
    ) {
        return refused;
    }
    match receivers::delete(&app, admin.tenant(), &admin.caller.actor(), &id).await {
        Ok(_) => see_other(&format!("/t/{}/admin/webhooks", admin.tenant())),
        Err(e) => super::service_error(&admin, Nav::Webhooks, e),
    }
}
