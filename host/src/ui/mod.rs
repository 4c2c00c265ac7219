//! The admin web UI under `/t/{tenant}/admin/`: server-rendered HTML (maud escapes every
//! value), no JavaScript needed, no external asset. Pages call the same services as the
//! API, as the logged-in user with that user's authorizations.

mod api_accounts;
mod log;
mod login;
mod plugins;
pub mod session;
mod webhooks;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, html};

use crate::app::App;
use crate::service;
use session::Admin;

/// The UI's routes.
pub fn router() -> Router<App> {
    Router::new()
        .route("/t/{tenant}/login", get(login::form).post(login::submit))
        .route("/t/{tenant}/logout", post(login::logout))
        .route("/t/{tenant}/admin", get(home))
        .route("/t/{tenant}/admin/", get(home))
        .route(
            "/t/{tenant}/admin/webhooks",
            get(webhooks::page).post(webhooks::create),
        )
        .route(
            "/t/{tenant}/admin/webhooks/{id}/remove",
            post(webhooks::remove),
        )
        .route("/t/{tenant}/admin/log", get(log::page))
        .route("/t/{tenant}/admin/log/{id}", get(log::delivery))
        .route("/t/{tenant}/admin/log/{id}/resend", post(log::resend))
        .route(
            "/t/{tenant}/admin/api-accounts",
            get(api_accounts::page).post(api_accounts::create),
        )
        .route(
            "/t/{tenant}/admin/api-accounts/{id}",
            post(api_accounts::change),
        )
        .route(
            "/t/{tenant}/admin/plugins",
            get(plugins::page)
                .post(plugins::upload)
                .layer(DefaultBodyLimit::max(plugins::MAX_UPLOAD_BYTES)),
        )
        .route(
            "/t/{tenant}/admin/plugins/{name}/remove",
            post(plugins::remove),
        )
}

async fn home(admin: Admin) -> Redirect {
    Redirect::to(&format!("/t/{}/admin/webhooks", admin.tenant()))
}

/// A form body: every `name=value` pair, in order (repeated names kept, for checkboxes).
#[derive(Debug, Default)]
pub struct FormData(Vec<(String, String)>);

impl FormData {
    /// Parses `application/x-www-form-urlencoded`.
    pub fn parse(body: &[u8]) -> Self {
        Self(url::form_urlencoded::parse(body).into_owned().collect())
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `name`, trimmed, or "".
    pub fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or("").trim().to_owned()
    }

    /// Every value of `name`.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Every pair whose name starts with `prefix`, with the prefix removed.
    pub fn prefixed(&self, prefix: &str) -> Vec<(String, String)> {
        self.0
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(prefix)?.to_owned(), v.clone())))
            .collect()
    }
}

/// Which page of the navigation is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    /// Webhook receivers.
    Webhooks,
    /// The webhook log.
    Log,
    /// API accounts.
    ApiAccounts,
    /// Plugins.
    Plugins,
}

/// A full page for a logged-in administrator.
pub fn page(admin: &Admin, nav: Nav, title: &str, body: Markup) -> Response {
    let t = admin.tenant();
    let link = |n: Nav, href: &str, label: &str| {
        html! {
            a href=(format!("/t/{t}/admin/{href}")) class=[(n == nav).then_some("current")] { (label) }
        }
    };
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Switchyard" }
                style { (CSS) }
            }
            body {
                header {
                    strong { "Switchyard · " (t) }
                    nav aria-label="Administration > Interfaces" {
                        (link(Nav::Webhooks, "webhooks", "Webhooks"))
                        (link(Nav::Log, "log", "Webhook log"))
                        (link(Nav::ApiAccounts, "api-accounts", "API accounts"))
                        (link(Nav::Plugins, "plugins", "Plugins"))
                    }
                    form method="post" action=(format!("/t/{t}/logout")) class="inline" {
                        (csrf(admin))
                        span { (admin.session.name) " " }
                        button type="submit" { "Log out" }
                    }
                }
                main {
                    p.crumbs { "Administration › Interfaces › " (title) }
                    h1 { (title) }
                    (body)
                }
            }
        }
    };
    // Pages carry CSRF tokens and, once, new secrets: never cache them.
    ([(header::CACHE_CONTROL, "no-store")], markup).into_response()
}

/// The hidden CSRF field of this session.
pub fn csrf(admin: &Admin) -> Markup {
    html! { input type="hidden" name="csrf" value=(admin.session.csrf); }
}

/// An error page with a way back.
pub fn error_page(admin: &Admin, nav: Nav, status: StatusCode, detail: &str) -> Response {
    let mut response = page(
        admin,
        nav,
        "Something went wrong",
        html! {
            p.error role="alert" { (detail) }
            p { a href=(format!("/t/{}/admin/", admin.tenant())) { "Back to the administration" } }
        },
    );
    *response.status_mut() = status;
    response
}

/// A service error as an error page.
pub fn service_error(admin: &Admin, nav: Nav, e: service::Error) -> Response {
    let status = match &e {
        service::Error::NotFound(_) => StatusCode::NOT_FOUND,
        service::Error::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        service::Error::Forbidden(_) => StatusCode::FORBIDDEN,
        service::Error::Conflict(_) => StatusCode::CONFLICT,
        service::Error::Store(e) => {
            tracing::error!(error = %e, "admin UI store error");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    let detail = match &e {
        service::Error::Store(_) => "an internal error occurred; it was logged".to_owned(),
        other => other.to_string(),
    };
    error_page(admin, nav, status, &detail)
}

/// The error page for a form whose CSRF token is wrong or whose change needs a
/// permission the caller lacks; `None` when it may go ahead.
pub fn refusal(admin: &Admin, nav: Nav, csrf: Option<&str>, permission: &str) -> Option<Response> {
    if !admin.csrf_ok(csrf) {
        return Some(csrf_refused(admin, nav));
    }
    if !admin.caller.may(permission) {
        return Some(forbidden(admin, nav, permission));
    }
    None
}

/// The page answered when a form lacks this session's CSRF token.
pub fn csrf_refused(admin: &Admin, nav: Nav) -> Response {
    error_page(
        admin,
        nav,
        StatusCode::FORBIDDEN,
        "The form has expired or did not come from this site. Reload the page and try again.",
    )
}

/// The page answered when the user lacks a permission.
pub fn forbidden(admin: &Admin, nav: Nav, permission: &str) -> Response {
    error_page(
        admin,
        nav,
        StatusCode::FORBIDDEN,
        &format!("Your account lacks the {permission} permission for this page."),
    )
}

/// A redirect after a successful POST.
pub fn see_other(path: &str) -> Response {
    Redirect::to(path).into_response()
}

/// Shared, inline stylesheet.
pub const CSS: &str = "\
*{box-sizing:border-box}body{font-family:system-ui,sans-serif;margin:0;color:#1d1d1f;background:#f7f7f8}\
header{display:flex;gap:1.5rem;align-items:center;background:#1f2a44;color:#fff;padding:.6rem 1.2rem}\
header a{color:#cfd8ff;text-decoration:none;margin-right:1rem}header a.current{color:#fff;font-weight:600;border-bottom:2px solid #fff}\
header form{margin-left:auto}main{padding:1rem 1.5rem;max-width:80rem}\
.crumbs{color:#666;font-size:.85rem;margin:0}table{border-collapse:collapse;width:100%;background:#fff;margin:.5rem 0 1.5rem}\
th,td{border:1px solid #ddd;padding:.35rem .5rem;text-align:left;vertical-align:top;font-size:.9rem}th{background:#eef0f4}\
tr.removed td{color:#888;background:#f3f3f3}.badge{display:inline-block;padding:0 .4rem;border-radius:.3rem;background:#ddd;font-size:.8rem}\
.badge.removed,.badge.failed,.badge.gone,.badge.unauthorized{background:#f6d5d5}.badge.delivered,.badge.active{background:#d5f0da}\
.badge.retrying,.badge.pending{background:#f6ecc9}.badge.builtin{background:#dde6f6}fieldset{background:#fff;border:1px solid #ccc;margin:.5rem 0 1rem;padding:.8rem}\
label{display:block;margin:.3rem 0}label.check{display:inline-block;margin-right:1rem}input[type=text],input[type=url],input[type=password],select,textarea{min-width:24rem;padding:.25rem}\
pre{background:#fff;border:1px solid #ddd;padding:.6rem;overflow:auto;white-space:pre-wrap}.error{color:#8a1010;font-weight:600}\
.secret{background:#fffbe6;border:1px solid #e5c100;padding:.8rem;margin:1rem 0}form.inline{display:inline}button{cursor:pointer}\
.hint{color:#555;font-size:.85rem}";
