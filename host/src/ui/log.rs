//! Administration › Interfaces › Webhooks › log: every sent webhook with its topic,
//! status and status code, filterable; a delivery with its request body and attempts;
//! resend.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::session::Admin;
use super::{FormData, Nav, csrf, forbidden, see_other, service_error};
use crate::app::App;
use crate::domain::{DeliveryStatus, permissions};
use crate::service::{deliveries, events};
use crate::store::DeliveryQuery;

const STATUSES: &[&str] = &[
    "pending",
    "delivered",
    "retrying",
    "failed",
    "unauthorized",
    "gone",
];

/// The log's filters.
#[derive(Debug, Default, Deserialize)]
pub struct Filter {
    #[serde(default)]
    status: String,
    #[serde(default)]
    topic: String,
    #[serde(default)]
    receiver: String,
    #[serde(default)]
    before: String,
}

fn status_name(s: DeliveryStatus) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

const PAGE: usize = 100;

/// `GET /t/{tenant}/admin/log`.
pub async fn page(State(app): State<App>, admin: Admin, Query(f): Query<Filter>) -> Response {
    if !admin.caller.may(permissions::WEBHOOKS_MANAGE) {
        return forbidden(&admin, Nav::Log, permissions::WEBHOOKS_MANAGE);
    }
    let none_if_empty = |s: &str| Some(s.to_owned()).filter(|s| !s.is_empty());
    let query = DeliveryQuery {
        receiver: none_if_empty(&f.receiver),
        topic: none_if_empty(&f.topic),
        status: DeliveryStatus::parse(&f.status),
        before: none_if_empty(&f.before),
        limit: PAGE,
    };
    let rows = match deliveries::list(&app, admin.tenant(), query).await {
        Ok(rows) => rows,
        Err(e) => return service_error(&admin, Nav::Log, e),
    };
    let base = format!("/t/{}/admin/log", admin.tenant());
    let topics = events::catalog(&app);
    let next = rows.last().filter(|_| rows.len() >= PAGE).map(|last| {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("status", &f.status)
            .append_pair("topic", &f.topic)
            .append_pair("receiver", &f.receiver)
            .append_pair("before", &last.id);
        format!("{base}?{}", q.finish())
    });
    let body = html! {
        form method="get" action=(base) id="log-filter" {
            fieldset {
                legend { "Filter" }
                label.check { "Status "
                    select name="status" {
                        option value="" { "any" }
                        @for s in STATUSES { option value=(s) selected[f.status == *s] { (s) } }
                    }
                }
                label.check { "Topic "
                    select name="topic" {
                        option value="" { "any" }
                        @for t in &topics { option value=(t.name) selected[f.topic == t.name] { (t.name) } }
                    }
                }
                @if !f.receiver.is_empty() {
                    label.check { "Receiver " input type="text" name="receiver" value=(f.receiver); }
                }
                button type="submit" { "Apply" }
            }
        }
        @if rows.is_empty() {
            p { "No webhooks sent yet." }
        } @else {
            table id="deliveries" {
                thead { tr { th { "Webhook id" } th { "Topic" } th { "Status" } th { "Status code" } th { "Receiver" } th { "Created" } } }
                tbody {
                    @for d in &rows {
                        tr data-id=(d.id) {
                            td { a href=(format!("{base}/{}", d.id)) { (d.id) } }
                            td { (d.topic) }
                            td { span class=(format!("badge {}", status_name(d.status))) { (status_name(d.status)) } }
                            td { @if let Some(c) = d.status_code { (c) } @else { "—" } }
                            td { code { (d.receiver) } }
                            td { (d.created_at.to_string()) }
                        }
                    }
                }
            }
            @if let Some(next) = next { p { a href=(next) { "Older webhooks →" } } }
        }
    };
    super::page(&admin, Nav::Log, "Webhook log", body)
}

/// `GET /t/{tenant}/admin/log/{id}`.
pub async fn delivery(
    State(app): State<App>,
    admin: Admin,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    if !admin.caller.may(permissions::WEBHOOKS_MANAGE) {
        return forbidden(&admin, Nav::Log, permissions::WEBHOOKS_MANAGE);
    }
    let d = match deliveries::get(&app, admin.tenant(), &id).await {
        Ok(d) => d,
        Err(e) => return service_error(&admin, Nav::Log, e),
    };
    let base = format!("/t/{}/admin/log", admin.tenant());
    let pretty = serde_json::from_str::<serde_json::Value>(&d.request_body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| d.request_body.clone());
    let body = html! {
        p { a href=(base) { "← Webhook log" } }
        table id="delivery" {
            tbody {
                tr { th { "Webhook id" } td { code { (d.id) } } }
                tr { th { "Topic" } td { (d.topic) } }
                tr { th { "Status" } td { span class=(format!("badge {}", status_name(d.status))) { (status_name(d.status)) } } }
                tr { th { "Status code" } td { @if let Some(c) = d.status_code { (c) } @else { "—" } } }
                tr { th { "Receiver" } td { a href=(format!("{base}?receiver={}", d.receiver)) { (d.receiver) } } }
                tr { th { "Event" } td { code { (d.event) } } }
                tr { th { "Created" } td { (d.created_at.to_string()) } }
                tr { th { "Next attempt" } td { @if let Some(t) = d.next_attempt_at { (t.to_string()) } @else { "—" } } }
                @if let Some(e) = &d.error { tr { th { "Error" } td { (e) } } }
            }
        }
        h2 { "Request body" }
        p.hint { "Content-Type: " (d.content_type) }
        pre id="request-body" { (pretty) }
        h2 { "Attempts" }
        @if d.attempts.is_empty() {
            p { "Not attempted yet." }
        } @else {
            table id="attempts" {
                thead { tr { th { "#" } th { "At" } th { "Status code" } th { "Duration" } th { "Error" } } }
                tbody {
                    @for (i, a) in d.attempts.iter().enumerate() {
                        tr {
                            td { (i + 1) }
                            td { (a.at.to_string()) }
                            td { @if let Some(c) = a.status_code { (c) } @else { "—" } }
                            td { (a.duration_ms) " ms" }
                            td { (a.error.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
        form method="post" action=(format!("{base}/{}/resend", d.id)) {
            (csrf(&admin))
            button type="submit" { "Resend now" }
        }
    };
    super::page(&admin, Nav::Log, &format!("Webhook {}", d.id), body)
}

/// `POST /t/{tenant}/admin/log/{id}/resend`.
pub async fn resend(
    State(app): State<App>,
    admin: Admin,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    if let Some(refused) = super::refusal(
        &admin,
        Nav::Log,
        form.get("csrf"),
        permissions::WEBHOOKS_MANAGE,
    ) {
        return refused;
    }
    match deliveries::resend(&app, admin.tenant(), &id).await {
        Ok(d) => see_other(&format!("/t/{}/admin/log/{}", admin.tenant(), d.id)),
        Err(e) => service_error(&admin, Nav::Log, e),
    }
}
