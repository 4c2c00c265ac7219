//! `/t/{tenant}/login`: the interactive login of normal users (password, plus TOTP when
//! the user enrolled). API accounts are refused here: they log in through the API. The
//! same lockout and one-use-per-code policy as the API login applies
//! ([`crate::auth::attempt`]).

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{DOCTYPE, Markup, html};

use super::session::{self, COOKIE, LOGIN_CSRF_COOKIE};
use super::{CSS, FormData};
use crate::app::App;
use crate::auth::{self, LOCKOUT, LoginError, new_secret_token, verify_totp};
use crate::domain::{Timestamp, User};
use crate::store::{self, Store};

/// What the login page tells the user.
pub const API_ACCOUNT_REFUSED: &str = "This is an API account. API accounts cannot log in \
here; they log in through the API (POST /auth/login with the account id, API token and \
TOTP code).";

const WRONG: &str = "The user name, password or authentication code is wrong.";

fn login_page(tenant: &str, csrf: &str, name: &str, message: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Log in · Switchyard" }
                style { (CSS) "main{max-width:28rem;margin:3rem auto}" }
            }
            body {
                main {
                    h1 { "Log in to " (tenant) }
                    @if let Some(message) = message {
                        p.error role="alert" id="login-error" { (message) }
                    }
                    form method="post" action=(format!("/t/{tenant}/login")) {
                        input type="hidden" name="csrf" value=(csrf);
                        label { "User name" br; input type="text" name="name" value=(name) autocomplete="username" required autofocus; }
                        label { "Password" br; input type="password" name="password" autocomplete="current-password" required; }
                        label { "Authentication code (if enrolled)" br; input type="text" name="totp" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}"; }
                        button type="submit" { "Log in" }
                    }
                    p.hint { "API accounts log in through the API, not here." }
                }
            }
        }
    }
}

fn locked_message(retry_after: u64) -> String {
    format!(
        "Too many failed logins: logging in as this user is locked for {} minutes. \
         Try again in {} minute(s).",
        LOCKOUT.as_secs() / 60,
        retry_after.div_ceil(60).max(1)
    )
}

fn with_login_csrf(
    app: &App,
    tenant: &str,
    status: StatusCode,
    name: &str,
    message: Option<&str>,
) -> Response {
    let token = new_secret_token();
    let cookie = session::set_cookie(app, tenant, LOGIN_CSRF_COOKIE, &token, 3600);
    (
        status,
        [
            (header::SET_COOKIE, cookie),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        login_page(tenant, &token, name, message),
    )
        .into_response()
}

async fn tenant_exists(app: &App, tenant: &str) -> bool {
    let t = tenant.to_owned();
    matches!(app.blocking(move |s| s.tenant(&t)).await, Ok(Some(_)))
}

/// `GET /t/{tenant}/login`.
pub async fn form(State(app): State<App>, Path(tenant): Path<String>) -> Response {
    if !tenant_exists(&app, &tenant).await {
        return (StatusCode::NOT_FOUND, "no such tenant").into_response();
    }
    with_login_csrf(&app, &tenant, StatusCode::OK, "", None)
}

enum Outcome {
    /// Logged in: the user and the new session's id.
    In(Box<User>, String),
    ApiAccount,
    Wrong,
    Locked {
        retry_after: u64,
    },
}

fn verify_password(user: &User, password: &str) -> bool {
    PasswordHash::new(&user.password_hash)
        .map(|hash| {
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
        .unwrap_or(false)
}

/// `POST /t/{tenant}/login`.
pub async fn submit(
    State(app): State<App>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !tenant_exists(&app, &tenant).await {
        return (StatusCode::NOT_FOUND, "no such tenant").into_response();
    }
    let form = FormData::parse(&body);
    let name = form.text("name");
    let expected = session::cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or("");
    if !session::same_token(form.get("csrf").unwrap_or(""), expected) {
        return with_login_csrf(
            &app,
            &tenant,
            StatusCode::FORBIDDEN,
            &name,
            Some("The form expired. Please try again."),
        );
    }
    let password = form.get("password").unwrap_or("").to_owned();
    let totp = form.text("totp");
    let now = app.now();
    let (t, n) = (tenant.clone(), name.clone());
    let outcome = app
        .blocking(move |s| check(s, now, &t, &n, &password, &totp))
        .await;
    match outcome {
        Ok(Outcome::In(user, id)) => {
            let cookie = session::set_cookie(&app, &tenant, COOKIE, &id, session::TTL.as_secs());
            let clear = session::set_cookie(&app, &tenant, LOGIN_CSRF_COOKIE, "", 0);
            tracing::info!(tenant = %tenant, user = %user.id, "admin UI login");
            let mut response = Redirect::to(&format!("/t/{tenant}/admin/webhooks")).into_response();
            if let (Ok(a), Ok(b)) = (cookie.parse(), clear.parse()) {
                response.headers_mut().append(header::SET_COOKIE, a);
                response.headers_mut().append(header::SET_COOKIE, b);
            }
            response
        }
        Ok(Outcome::ApiAccount) => with_login_csrf(
            &app,
            &tenant,
            StatusCode::FORBIDDEN,
            &name,
            Some(API_ACCOUNT_REFUSED),
        ),
        Ok(Outcome::Wrong) => {
            with_login_csrf(&app, &tenant, StatusCode::UNAUTHORIZED, &name, Some(WRONG))
        }
        Ok(Outcome::Locked { retry_after }) => {
            tracing::warn!(tenant = %tenant, "admin UI login locked after repeated failures");
            let mut response = with_login_csrf(
                &app,
                &tenant,
                StatusCode::TOO_MANY_REQUESTS,
                &name,
                Some(&locked_message(retry_after)),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, retry_after.into());
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "admin UI login failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// Checks a login and, when it succeeds, starts the session.
fn check(
    s: &dyn Store,
    now: Timestamp,
    tenant: &str,
    name: &str,
    password: &str,
    totp: &str,
) -> Result<Outcome, store::Error> {
    let Some(user) = s.users(tenant)?.into_iter().find(|u| u.name == name) else {
        let api_account = s
            .api_accounts(tenant)?
            .into_iter()
            .any(|a| a.id == name || a.name == name);
        return Ok(if api_account {
            Outcome::ApiAccount
        } else {
            Outcome::Wrong
        });
    };
    // Hashed outside the guard's compare-and-swap, which may run its closure again.
    let password_ok = verify_password(&user, password);
    let mut outcome = Err(LoginError::Invalid);
    s.update_login_guard(tenant, &user.id, &mut |guard| {
        let before = *guard;
        outcome = auth::attempt(guard, now, |last_step| {
            let step = match &user.totp_secret {
                Some(secret) => verify_totp(secret, totp, now.ms(), last_step),
                None => Some(last_step),
            };
            step.filter(|_| password_ok)
        });
        *guard != before
    })?;
    Ok(match outcome {
        Ok(()) => {
            let id = session::start(s, tenant, &user.id, &user.name, now)?;
            Outcome::In(Box::new(user), id)
        }
        Err(LoginError::Locked { retry_after }) => Outcome::Locked { retry_after },
        Err(LoginError::Invalid) => Outcome::Wrong,
        Err(LoginError::Store(e)) => return Err(e),
    })
}

/// `POST /t/{tenant}/logout`.
pub async fn logout(
    State(app): State<App>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    if let Some(id) = session::cookie(&headers, COOKIE).map(str::to_owned) {
        let (now, given) = (app.now(), form.text("csrf"));
        let ended = app
            .blocking(move |s| match session::get(s, &id, now)? {
                Some(live) if session::same_token(&given, &live.csrf) => session::end(s, &id),
                _ => Ok(false),
            })
            .await;
        if let Err(e) = ended {
            tracing::error!(error = %e, "admin UI logout failed");
        }
    }
    let clear = session::set_cookie(&app, &tenant, COOKIE, "", 0);
    (
        [(header::SET_COOKIE, clear)],
        Redirect::to(&format!("/t/{tenant}/login")),
    )
        .into_response()
}
