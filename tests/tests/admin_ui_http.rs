//! The admin UI at the HTTP level: cookies, CSRF, refusing API accounts, escaping,
//! sessions that outlive a restart, the login's lockout and one-use TOTP codes, and the
//! plugin upload and removal forms.

use std::time::Duration;

use reqwest::Method;
use reqwest::redirect::Policy;
use serde_json::json;
use switchyard_tests::{Options, TestServer, plugins, totp_code};

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

/// Logs the super-admin user in through the form; returns the session cookie's value.
async fn ui_login(server: &TestServer, http: &reqwest::Client) -> String {
    let user = &server.admin.admin_user;
    let (cookie, csrf) = login_form(server, http).await;
    let ok = post_login(
        server,
        http,
        &cookie,
        &[
            ("csrf", &csrf),
            ("name", &user.name),
            ("password", &user.password),
        ],
    )
    .await;
    assert_eq!(ok.status(), 303, "login succeeds");
    cookie_value(&set_cookies(&ok), "switchyard_session")
}

/// `GET`s an admin page with a session cookie.
async fn get_with(http: &reqwest::Client, url: &str, session: &str) -> reqwest::Response {
    http.get(url)
        .header("cookie", format!("switchyard_session={session}"))
        .send()
        .await
        .expect("admin page")
}

/// The HTML of an admin page that must answer 200.
async fn page_html(http: &reqwest::Client, url: &str, session: &str) -> String {
    let page = get_with(http, url, session).await;
    assert_eq!(page.status(), 200, "{url}");
    page.text().await.expect("html")
}

/// `POST`s a plain form with a session cookie.
async fn post_with(
    http: &reqwest::Client,
    url: &str,
    session: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    http.post(url)
        .header("cookie", format!("switchyard_session={session}"))
        .form(form)
        .send()
        .await
        .expect("form post")
}

/// `POST`s the plugin upload form as a browser sends it: `multipart/form-data` with the
/// CSRF field (when given) and the file.
async fn post_upload(
    http: &reqwest::Client,
    url: &str,
    session: &str,
    csrf: Option<&str>,
    component: &[u8],
) -> reqwest::Response {
    let boundary = "----switchyard-test-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    if let Some(csrf) = csrf {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"component\"; \
             filename=\"plugin.wasm\"\r\nContent-Type: application/wasm\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(component);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    http.post(url)
        .header("cookie", format!("switchyard_session={session}"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .expect("upload form")
}

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("a Location")
        .to_owned()
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

#[tokio::test]
async fn plugins_are_uploaded_and_removed_through_the_ui_forms() {
    let server = TestServer::start().await;
    let http = client();
    let api = server.api().await;
    let session = ui_login(&server, &http).await;
    let tenant = &server.admin.tenant;
    let plugins_page = server.url(&format!("/t/{tenant}/admin/plugins"));
    let remove_upper = format!("/t/{tenant}/admin/plugins/upper/remove");

    let html = page_html(&http, &plugins_page, &session).await;
    assert!(html.contains("enctype=\"multipart/form-data\""), "{html}");
    assert!(html.contains("type=\"file\" name=\"component\""), "{html}");
    assert!(html.contains("Built in: cannot be removed"), "{html}");
    assert!(
        !html.contains(&format!("/t/{tenant}/admin/plugins/websub/remove")),
        "no remove button for a built-in"
    );
    let csrf = hidden_csrf(&html);
    let upper = std::fs::read(plugins::UPPER_V1).expect("the upper component");

    // Without this session's CSRF token nothing is installed.
    for token in [None, Some("forged")] {
        let refused = post_upload(&http, &plugins_page, &session, token, &upper).await;
        assert_eq!(refused.status(), 403, "{token:?}");
    }
    assert_eq!(api.status(Method::GET, "/plugins/upper", None).await, 404);

    let installed = post_upload(&http, &plugins_page, &session, Some(&csrf), &upper).await;
    assert_eq!(installed.status(), 303);
    let html = page_html(&http, &server.url(&location(&installed)), &session).await;
    assert!(html.contains("data-name=\"upper\""), "listed: {html}");
    assert!(html.contains("Uploaded for this tenant"), "{html}");
    assert!(html.contains(&remove_upper), "a remove button: {html}");
    let shown = api.get("/plugins/upper").await;
    assert_eq!(shown["scope"], "tenant");
    let before = api.get("/plugins").await;

    // Garbage and an empty file: a clear message on the page, nothing changed.
    for (what, bytes) in [
        ("garbage", b"definitely not WebAssembly".to_vec()),
        ("a core module", b"\0asm\x01\0\0\0".to_vec()),
        ("nothing", Vec::new()),
    ] {
        let refused = post_upload(&http, &plugins_page, &session, Some(&csrf), &bytes).await;
        assert_eq!(refused.status(), 422, "{what}");
        let html = refused.text().await.expect("html");
        assert!(html.contains("id=\"plugin-error\""), "{what}: {html}");
        assert!(html.contains("Nothing was changed."), "{what}: {html}");
        assert!(html.contains("data-name=\"upper\""), "{what}: still listed");
    }
    assert_eq!(api.get("/plugins").await, before, "nothing changed");

    // A built-in cannot be removed, even by a well-formed request.
    let builtin = post_with(
        &http,
        &server.url(&format!("/t/{tenant}/admin/plugins/websub/remove")),
        &session,
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(builtin.status(), 409);
    assert!(builtin.text().await.expect("html").contains("built-in"));

    let forged = post_with(
        &http,
        &server.url(&remove_upper),
        &session,
        &[("csrf", "forged")],
    )
    .await;
    assert_eq!(forged.status(), 403);
    assert_eq!(api.status(Method::GET, "/plugins/upper", None).await, 200);

    let removed = post_with(
        &http,
        &server.url(&remove_upper),
        &session,
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(removed.status(), 303);
    assert_eq!(api.status(Method::GET, "/plugins/upper", None).await, 404);
    let html = page_html(&http, &plugins_page, &session).await;
    assert!(!html.contains("data-name=\"upper\""), "gone from the list");
}

#[tokio::test]
async fn sessions_survive_a_restart_until_logout_or_expiry() {
    let start = 1_800_000_000_000;
    let server = TestServer::start_with(Options {
        manual_clock_at: Some(start),
        ..Options::default()
    })
    .await;
    let http = client();
    let first = ui_login(&server, &http).await;
    let second = ui_login(&server, &http).await;
    let clock = server.clock.clone();
    let server = server.restart(clock).await;
    let tenant = server.admin.tenant.clone();
    let webhooks = server.url(&format!("/t/{tenant}/admin/webhooks"));

    let html = page_html(&http, &webhooks, &first).await;
    let logout = post_with(
        &http,
        &server.url(&format!("/t/{tenant}/logout")),
        &first,
        &[("csrf", &hidden_csrf(&html))],
    )
    .await;
    assert_eq!(logout.status(), 303);
    let after = get_with(&http, &webhooks, &first).await;
    assert_eq!(after.status(), 303, "logged out");
    assert_eq!(location(&after), format!("/t/{tenant}/login"));

    page_html(&http, &webhooks, &second).await;
    let clock = server.clock.clone().expect("manual clock");
    clock.advance(Duration::from_secs(8 * 3600));
    let expired = get_with(&http, &webhooks, &second).await;
    assert_eq!(expired.status(), 303, "expired after 8 hours");
    assert_eq!(location(&expired), format!("/t/{tenant}/login"));
}

/// The TOTP secret the admin user is enrolled with in the login tests.
const USER_TOTP: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

async fn server_with_totp_user() -> TestServer {
    let options = Options {
        manual_clock_at: Some(1_800_000_000_000),
        ..Options::default()
    };
    TestServer::start_prepared(options, |store, admin| {
        let mut user = store
            .user(&admin.tenant, &admin.admin_user.id)
            .expect("read user")
            .expect("admin user");
        user.totp_secret = Some(USER_TOTP.into());
        store.put_user(&user).expect("enrol in TOTP");
    })
    .await
}

/// Submits the login form with the admin user's name, `password` and `code`.
async fn try_login(
    server: &TestServer,
    http: &reqwest::Client,
    password: &str,
    code: &str,
) -> reqwest::Response {
    let (cookie, csrf) = login_form(server, http).await;
    let name = &server.admin.admin_user.name;
    post_login(
        server,
        http,
        &cookie,
        &[
            ("csrf", &csrf),
            ("name", name),
            ("password", password),
            ("totp", code),
        ],
    )
    .await
}

const WRONG: &str = "The user name, password or authentication code is wrong.";

#[tokio::test]
async fn a_totp_code_logs_in_once() {
    let server = server_with_totp_user().await;
    let http = client();
    let password = server.admin.admin_user.password.clone();
    let code = totp_code(USER_TOTP, server.now_ms());

    let without = try_login(&server, &http, &password, "").await;
    assert_eq!(without.status(), 401, "an enrolled user needs the code");
    let first = try_login(&server, &http, &password, &code).await;
    assert_eq!(first.status(), 303);
    let replay = try_login(&server, &http, &password, &code).await;
    assert_eq!(replay.status(), 401, "the same code again");
    assert!(
        set_cookies(&replay)
            .iter()
            .all(|c| !c.starts_with("switchyard_session="))
    );
    assert!(replay.text().await.expect("html").contains(WRONG));

    let next = totp_code(USER_TOTP, server.now_ms() + 30_000);
    let fresh = try_login(&server, &http, &password, &next).await;
    assert_eq!(fresh.status(), 303, "the next code works");
}

#[tokio::test]
async fn five_failed_logins_lock_the_login_for_fifteen_minutes() {
    let server = server_with_totp_user().await;
    let http = client();
    let password = server.admin.admin_user.password.clone();
    let code = totp_code(USER_TOTP, server.now_ms());

    // Wrong password with the right code, right password with a wrong code: the same
    // answer, which never says which factor was wrong.
    for (password, code) in [
        ("wrong-password", code.as_str()),
        (password.as_str(), "000000"),
        ("wrong-password", code.as_str()),
        (password.as_str(), ""),
    ] {
        let refused = try_login(&server, &http, password, code).await;
        assert_eq!(refused.status(), 401);
        assert!(refused.text().await.expect("html").contains(WRONG));
    }
    let locked = try_login(&server, &http, "wrong-password", &code).await;
    assert_eq!(locked.status(), 429, "the fifth failure locks");
    let retry_after = locked
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    assert_eq!(retry_after, Some(900));
    let html = locked.text().await.expect("html");
    assert!(html.contains("locked for 15 minutes"), "{html}");

    // Locked: even the right factors are refused.
    let clock = server.clock.clone().expect("manual clock");
    clock.advance(Duration::from_secs(14 * 60));
    let still = try_login(&server, &http, &password, &code).await;
    assert_eq!(still.status(), 429);
    assert_eq!(
        still
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("60")
    );

    clock.advance(Duration::from_secs(60));
    let code = totp_code(USER_TOTP, server.now_ms());
    let open = try_login(&server, &http, &password, &code).await;
    assert_eq!(open.status(), 303, "the lock ends after 15 minutes");
}

#[tokio::test]
async fn api_accounts_are_deleted_only_when_confirmed_and_pages_are_not_cached() {
    let server = TestServer::start().await;
    let http = client();
    let api = server.api().await;
    let session = ui_login(&server, &http).await;
    let created = api
        .post(
            "/api-accounts",
            json!({"name": "to-delete", "authorizations": {"permissions": [], "scopes": {}}}),
            201,
        )
        .await;
    let id = created["id"].as_str().expect("account id").to_owned();
    let page = server.url(&format!("/t/{}/admin/api-accounts", server.admin.tenant));

    let shown = get_with(&http, &page, &session).await;
    assert_eq!(
        shown
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let csrf = hidden_csrf(&shown.text().await.expect("html"));
    let account = format!("{page}/{id}");

    let unconfirmed = post_with(
        &http,
        &account,
        &session,
        &[("csrf", &csrf), ("action", "delete")],
    )
    .await;
    assert_eq!(unconfirmed.status(), 422);
    assert_eq!(
        api.status(Method::GET, &format!("/api-accounts/{id}"), None)
            .await,
        200
    );

    let deleted = post_with(
        &http,
        &account,
        &session,
        &[("csrf", &csrf), ("action", "delete"), ("confirm", "yes")],
    )
    .await;
    assert_eq!(deleted.status(), 303);
    assert_eq!(
        api.status(Method::GET, &format!("/api-accounts/{id}"), None)
            .await,
        404
    );
}
