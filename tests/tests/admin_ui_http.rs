//! The admin UI's security properties at the HTTP level: cookies, CSRF, refusing API
//! accounts, escaping.

use reqwest::redirect::Policy;
use serde_json::json;
use switchyard_tests::{TestServer, totp_code};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client")
}

fn set_cookies(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect()
}

fn cookie_value(cookies: &[String], name: &str) -> String {
    cookies
        .iter()
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .and_then(|c| c.split(';').next())
        .expect("cookie set")
        .to_owned()
}

fn hidden_csrf(html: &str) -> String {
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a csrf field")
        .to_owned()
}

/// Opens the login form; returns (login csrf cookie, field).
async fn login_form(server: &TestServer, http: &reqwest::Client) -> (String, String) {
    let form = http
        .get(server.url(&format!("/t/{}/login", server.admin.tenant)))
        .send()
        .await
        .expect("login form");
    assert_eq!(form.status(), 200);
    let cookie = cookie_value(&set_cookies(&form), "switchyard_login_csrf");
    let field = hidden_csrf(&form.text().await.expect("html"));
    (cookie, field)
}

async fn post_login(
    server: &TestServer,
    http: &reqwest::Client,
    cookie: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    http.post(server.url(&format!("/t/{}/login", server.admin.tenant)))
        .header("cookie", format!("switchyard_login_csrf={cookie}"))
        .form(form)
        .send()
        .await
        .expect("login")
}

#[tokio::test]
async fn login_sets_a_strict_http_only_session_and_forms_need_the_csrf_token() {
    let server = TestServer::start().await;
    let http = client();
    let user = &server.admin.admin_user;
    let (cookie, csrf) = login_form(&server, &http).await;

    // Without the double-submitted token the login is refused.
    let forged = post_login(
        &server,
        &http,
        "other",
        &[
            ("csrf", &csrf),
            ("name", &user.name),
            ("password", &user.password),
        ],
    )
    .await;
    assert_eq!(forged.status(), 403);

    let wrong = post_login(
        &server,
        &http,
        &cookie,
        &[("csrf", &csrf), ("name", &user.name), ("password", "nope")],
    )
    .await;
    assert_eq!(wrong.status(), 401);

    let ok = post_login(
        &server,
        &http,
        &cookie,
        &[
            ("csrf", &csrf),
            ("name", &user.name),
            ("password", &user.password),
        ],
    )
    .await;
    assert_eq!(ok.status(), 303);
    let cookies = set_cookies(&ok);
    let session = cookies
        .iter()
        .find(|c| c.starts_with("switchyard_session="))
        .expect("a session cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Max-Age=", "Path=/t/"] {
        assert!(session.contains(flag), "{flag} in {session}");
    }
    assert!(
        !session.contains("Secure"),
        "plain http public_url: no Secure flag"
    );
    let id = cookie_value(&cookies, "switchyard_session");

    let page = http
        .get(server.url(&format!("/t/{}/admin/webhooks", server.admin.tenant)))
        .header("cookie", format!("switchyard_session={id}"))
        .send()
        .await
        .expect("webhooks page");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(!html.contains("<script"), "no script needed");
    assert!(!html.contains("https://cdn"), "no CDN");

    // A state-changing form without the session's CSRF token is refused.
    let api = server.api().await;
    let receiver = api
        .add_receiver(json!({
            "url": "http://127.0.0.1:9/hook",
            "topics": ["Accounts.Update"],
            "api_account": server.admin.api_account.id,
            "auth": {"protocol": "websub", "settings": {"secret": "x", "algorithm": "sha256"}},
            "description": "<script>alert(1)</script>",
        }))
        .await;
    let remove = server.url(&format!(
        "/t/{}/admin/webhooks/{receiver}/remove",
        server.admin.tenant
    ));
    let refused = http
        .post(&remove)
        .header("cookie", format!("switchyard_session={id}"))
        .form(&[("csrf", "forged")])
        .send()
        .await
        .expect("remove");
    assert_eq!(refused.status(), 403);
    assert!(api.get(&format!("/receivers/{receiver}")).await["deleted_at"].is_null());

    // Values are escaped.
    let html = http
        .get(server.url(&format!("/t/{}/admin/webhooks", server.admin.tenant)))
        .header("cookie", format!("switchyard_session={id}"))
        .send()
        .await
        .expect("webhooks page")
        .text()
        .await
        .expect("html");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!html.contains("<script>alert(1)"));

    let token = hidden_csrf(&html);
    let removed = http
        .post(&remove)
        .header("cookie", format!("switchyard_session={id}"))
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .expect("remove");
    assert_eq!(removed.status(), 303);
    assert!(api.get(&format!("/receivers/{receiver}")).await["deleted_at"].is_string());
}

#[tokio::test]
async fn api_accounts_are_told_to_log_in_through_the_api() {
    let server = TestServer::start().await;
    let http = client();
    let account = &server.admin.api_account;
    let (cookie, csrf) = login_form(&server, &http).await;
    let code = totp_code(&account.totp_secret, server.now_ms());
    let refused = post_login(
        &server,
        &http,
        &cookie,
        &[
            ("csrf", &csrf),
            ("name", &account.id),
            ("password", &account.token),
            ("totp", &code),
        ],
    )
    .await;
    assert_eq!(refused.status(), 403);
    assert!(
        set_cookies(&refused)
            .iter()
            .all(|c| !c.starts_with("switchyard_session="))
    );
    let html = refused.text().await.expect("html");
    assert!(html.contains("API accounts cannot log in here"), "{html}");
    assert!(html.contains("through the API"));
}

#[tokio::test]
async fn admin_pages_without_a_session_lead_to_the_login() {
    let server = TestServer::start().await;
    let http = client();
    for page in ["webhooks", "log", "api-accounts", "plugins"] {
        let r = http
            .get(server.url(&format!("/t/{}/admin/{page}", server.admin.tenant)))
            .header("cookie", "switchyard_session=made-up")
            .send()
            .await
            .expect("page");
        assert_eq!(r.status(), 303, "{page}");
        assert_eq!(
            r.headers().get("location").and_then(|v| v.to_str().ok()),
            Some(format!("/t/{}/login", server.admin.tenant).as_str())
        );
    }
}
