//! Administration › Interfaces › API accounts: list, create (token and TOTP secret shown
//! once, the TOTP secret also as a QR code), change authorizations, rotate, disable,
//! delete.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, PreEscaped, html};
use qrcode::QrCode;
use qrcode::render::svg;

use super::session::Admin;
use super::{FormData, Nav, csrf, csrf_refused, error_page, see_other, service_error};
use crate::app::App;
use crate::domain::{Authorizations, permissions};
use crate::service::api_accounts::{self, ApiAccountPatch, NewApiAccount};

/// The `otpauth://` URI as an inline SVG QR code. The SVG comes from the encoder, not
/// from input, so it is inserted unescaped; the URI itself is only ever data to it.
fn qr_svg(uri: &str) -> Markup {
    match QrCode::new(uri.as_bytes()) {
        Ok(code) => PreEscaped(
            code.render::<svg::Color<'_>>()
                .min_dimensions(200, 200)
                .build(),
        ),
        Err(_) => html! { p.error { "The QR code could not be drawn; use the URI." } },
    }
}

fn authorizations_fields(a: &Authorizations) -> Markup {
    let scopes = serde_json::to_string(&a.scopes).unwrap_or_else(|_| "{}".into());
    html! {
        p { "Permissions" }
        @for p in permissions::KNOWN {
            label.check {
                input type="checkbox" name="permission" value=(p) checked[a.permissions.iter().any(|x| x == p)];
                " " (p)
            }
        }
        label {
            "Data scope (JSON: attribute → allowed values, " code { "{\"*\": [\"*\"]}" } " = everything)" br;
            input type="text" name="scopes" value=(scopes);
        }
    }
}

fn parse_authorizations(form: &FormData) -> Result<Authorizations, String> {
    let text = form.text("scopes");
    let scopes: BTreeMap<String, Vec<String>> = if text.is_empty() {
        BTreeMap::new()
    } else {
        serde_json::from_str(&text).map_err(|e| format!("The data scope is not valid JSON: {e}"))?
    };
    Ok(Authorizations {
        permissions: form.all("permission"),
        scopes,
    })
}

/// `GET /t/{tenant}/admin/api-accounts`.
pub async fn page(State(app): State<App>, admin: Admin) -> Response {
    match api_accounts::list(&app, &admin.caller).await {
        Ok(accounts) => {
            let base = format!("/t/{}/admin/api-accounts", admin.tenant());
            let body = html! {
                @if accounts.is_empty() { p { "No API accounts." } }
                @for a in &accounts {
                    fieldset id=(format!("account-{}", a.id)) {
                        legend { (a.name) " " code { (a.id) } " "
                            @if a.disabled { span.badge.removed { "Disabled" } } @else { span.badge.active { "Active" } }
                        }
                        form method="post" action=(format!("{base}/{}", a.id)) {
                            (csrf(&admin))
                            input type="hidden" name="action" value="authorizations";
                            (authorizations_fields(&a.authorizations))
                            button type="submit" { "Save authorizations" }
                        }
                        @for (action, label) in [
                            ("rotate-token", "Rotate API token"),
                            ("rotate-totp", "Rotate TOTP secret"),
                            (if a.disabled { "enable" } else { "disable" }, if a.disabled { "Enable" } else { "Disable" }),
                        ] {
                            form.inline method="post" action=(format!("{base}/{}", a.id)) {
                                (csrf(&admin))
                                input type="hidden" name="action" value=(action);
                                button type="submit" { (label) } " "
                            }
                        }
                        form.inline method="post" action=(format!("{base}/{}", a.id)) {
                            (csrf(&admin))
                            input type="hidden" name="action" value="delete";
                            label.check { input type="checkbox" name="confirm" value="yes" required; " confirm" }
                            button type="submit" { "Delete" } " "
                        }
                    }
                }
                h2 { "Create an API account" }
                form method="post" action=(base) id="create-api-account" {
                    (csrf(&admin))
                    fieldset {
                        label { "Name" br; input type="text" name="name" required; }
                        (authorizations_fields(&Authorizations::default()))
                        button type="submit" { "Create" }
                    }
                }
            };
            super::page(&admin, Nav::ApiAccounts, "API accounts", body)
        }
        Err(e) => service_error(&admin, Nav::ApiAccounts, e),
    }
}

fn secrets_page(
    admin: &Admin,
    title: &str,
    id: &str,
    token: Option<&str>,
    totp: Option<(&str, &str)>,
) -> Response {
    let body = html! {
        div.secret role="status" {
            p { strong { "Copy these now: they are shown this once and never again." } }
            p { "Account id: " code id="account-id" { (id) } }
            @if let Some(token) = token {
                p { "API token: " code id="api-token" { (token) } }
            }
            @if let Some((secret, uri)) = totp {
                p { "TOTP secret: " code id="totp-secret" { (secret) } }
                p { "Authenticator URI: " code id="totp-uri" { (uri) } }
                div id="totp-qr" { (qr_svg(uri)) }
            }
        }
        p { a href=(format!("/t/{}/admin/api-accounts", admin.tenant())) { "← API accounts" } }
    };
    super::page(admin, Nav::ApiAccounts, title, body)
}

/// `POST /t/{tenant}/admin/api-accounts`: creates one and shows its secrets once.
pub async fn create(State(app): State<App>, admin: Admin, body: Bytes) -> Response {
    let form = FormData::parse(&body);
    if !admin.csrf_ok(form.get("csrf")) {
        return csrf_refused(&admin, Nav::ApiAccounts);
    }
    let authorizations = match parse_authorizations(&form) {
        Ok(a) => a,
        Err(e) => {
            return error_page(
                &admin,
                Nav::ApiAccounts,
                StatusCode::UNPROCESSABLE_ENTITY,
                &e,
            );
        }
    };
    let new = NewApiAccount {
        name: form.text("name"),
        authorizations,
    };
    match api_accounts::create(&app, &admin.caller, new).await {
        Ok(c) => secrets_page(
            &admin,
            "API account created",
            &c.account.id,
            Some(&c.token),
            Some((&c.totp_secret, &c.totp_uri)),
        ),
        Err(e) => service_error(&admin, Nav::ApiAccounts, e),
    }
}

/// `POST /t/{tenant}/admin/api-accounts/{id}`: one of the changes named by `action`.
pub async fn change(
    State(app): State<App>,
    admin: Admin,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    if !admin.csrf_ok(form.get("csrf")) {
        return csrf_refused(&admin, Nav::ApiAccounts);
    }
    let back = format!("/t/{}/admin/api-accounts", admin.tenant());
    let patch = |p: ApiAccountPatch| async {
        api_accounts::update(&app, &admin.caller, &id, p)
            .await
            .map(|_| see_other(&back))
    };
    let outcome = match form.get("action").unwrap_or("") {
        "authorizations" => match parse_authorizations(&form) {
            Ok(a) => {
                patch(ApiAccountPatch {
                    authorizations: Some(a),
                    ..Default::default()
                })
                .await
            }
            Err(e) => {
                return error_page(
                    &admin,
                    Nav::ApiAccounts,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &e,
                );
            }
        },
        "disable" => {
            patch(ApiAccountPatch {
                disabled: Some(true),
                ..Default::default()
            })
            .await
        }
        "enable" => {
            patch(ApiAccountPatch {
                disabled: Some(false),
                ..Default::default()
            })
            .await
        }
        "delete" if form.get("confirm") == Some("yes") => {
            api_accounts::delete(&app, &admin.caller, &id)
                .await
                .map(|()| see_other(&back))
        }
        "delete" => {
            return error_page(
                &admin,
                Nav::ApiAccounts,
                StatusCode::UNPROCESSABLE_ENTITY,
                "Tick \"confirm\" to delete an API account.",
            );
        }
        "rotate-token" => api_accounts::rotate_token(&app, &admin.caller, &id)
            .await
            .map(|r| secrets_page(&admin, "New API token", &r.id, r.token.as_deref(), None)),
        "rotate-totp" => api_accounts::rotate_totp(&app, &admin.caller, &id)
            .await
            .map(|r| {
                let totp = r.totp_secret.as_deref().zip(r.totp_uri.as_deref());
                secrets_page(&admin, "New TOTP secret", &r.id, None, totp)
            }),
        _ => {
            return error_page(
                &admin,
                Nav::ApiAccounts,
                StatusCode::BAD_REQUEST,
                "Unknown action.",
            );
        }
    };
    outcome.unwrap_or_else(|e| service_error(&admin, Nav::ApiAccounts, e))
}
