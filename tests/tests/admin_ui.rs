//! The admin UI in a real browser: headless Chromium through chromedriver. Needs Debian's
//! `chromium` and `chromium-driver` (`.ci/run` installs them); fails, naming the install
//! command, when they are missing. Screenshots go to `target/ui-screenshots/`.

use std::time::Duration;

use serde_json::{Value, json};
use switchyard_tests::browser::Browser;
use switchyard_tests::{TestReceiver, TestServer, eventually, plugins, totp_code};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn an_administrator_adds_a_websub_receiver_sees_its_log_and_removes_it() {
    let server = TestServer::start().await;
    let api = server.api().await;
    let receiver = TestReceiver::start().await;
    let browser = Browser::start().await;
    let tenant = server.admin.tenant.clone();
    let page = |p: &str| server.url(&format!("/t/{tenant}{p}"));

    // The admin pages send a stranger to the login page.
    browser.goto(&page("/admin/webhooks")).await;
    assert!(
        browser.url().await.ends_with("/login"),
        "redirected to login"
    );
    browser.screenshot("01-login").await;

    let user = &server.admin.admin_user;
    browser.fill("input[name=name]", &user.name).await;
    browser.fill("input[name=password]", &user.password).await;
    browser.click("form button[type=submit]").await;
    eventually(WAIT, || async {
        browser
            .url()
            .await
            .ends_with("/admin/webhooks")
            .then_some(())
    })
    .await;
    browser.screenshot("02-webhooks-empty").await;

    // Step 1: the protocol; step 2: the fields the websub plugin describes.
    browser
        .click("select[name=protocol] option[value=websub]")
        .await;
    browser.click("#choose-protocol button").await;
    let secret_field = browser.find("input[name='setting.secret']").await;
    assert!(!secret_field.is_empty());
    assert!(
        browser
            .try_find("input[type=password][name='setting.secret']")
            .await
            .is_some(),
        "the secret is a password field"
    );
    browser.fill("input[name=url]", &receiver.url).await;
    browser
        .click("input[name=topic][value='Accounts.Update']")
        .await;
    browser
        .fill("input[name='setting.secret']", "ui-s3cret-value")
        .await;
    if browser
        .try_find("input[name='setting.algorithm']")
        .await
        .is_some()
    {
        browser
            .fill("input[name='setting.algorithm']", "sha256")
            .await;
    }
    browser.screenshot("03-add-receiver").await;
    browser.click("#add-receiver button[type=submit]").await;
    let receivers = eventually(WAIT, || async {
        let list = api.get("/receivers").await;
        list.as_array().filter(|l| !l.is_empty()).cloned()
    })
    .await;
    let id = receivers[0]["id"].as_str().expect("receiver id").to_owned();
    assert_eq!(receivers[0]["url"], receiver.url.as_str());
    assert_eq!(receivers[0]["auth"]["plugin"], "websub");
    let html = browser.source().await;
    assert!(html.contains(&id), "the new receiver is listed");
    assert!(
        !html.contains("ui-s3cret-value"),
        "the secret is never echoed"
    );
    browser.screenshot("04-webhooks-with-receiver").await;

    // An event goes out to it and shows up in the log with its body.
    api.publish(
        "Accounts.Update",
        json!({"kind": "user", "id": "usr_ui", "attributes": {"org_unit": "sales"}}),
        json!({"name": "Grace <Hopper>", "changed": ["email"]}),
    )
    .await;
    let got = receiver.next(WAIT).await;
    assert!(got.header("x-hub-signature").is_some());
    let delivery_id = got.header("webhook-id").expect("Webhook-Id").to_owned();

    // The log lists a delivery once its attempt is recorded, a moment after the webhook
    // arrived: load the page again until it is there.
    eventually(WAIT, || async {
        browser.goto(&page("/admin/log")).await;
        browser.source().await.contains(&delivery_id).then_some(())
    })
    .await;
    let row = browser.text("#deliveries tbody tr").await;
    assert!(row.contains("Accounts.Update"), "{row}");
    browser.screenshot("05-log").await;

    browser
        .click(&format!("#deliveries a[href$='/log/{delivery_id}']"))
        .await;
    let shown_body = browser.text("#request-body").await;
    assert!(
        shown_body.contains("Grace <Hopper>"),
        "the request body is shown, escaped: {shown_body}"
    );
    let sent: Value = got.json();
    assert_eq!(
        serde_json::from_str::<Value>(&shown_body).ok().as_ref(),
        Some(&sent),
        "the body shown is the body sent"
    );
    assert!(browser.try_find("#attempts tbody tr").await.is_some());
    browser.screenshot("06-delivery").await;

    // Removing it keeps it listed, marked, with its log.
    browser.goto(&page("/admin/webhooks")).await;
    browser
        .click(&format!("tr[data-id='{id}'] button[name=remove]"))
        .await;
    eventually(WAIT, || async {
        browser.source().await.contains("Removed").then_some(())
    })
    .await;
    let row = browser.text(&format!("tr[data-id='{id}']")).await;
    assert!(row.contains("Removed"), "{row}");
    assert!(
        browser
            .try_find(&format!("tr.removed[data-id='{id}']"))
            .await
            .is_some()
    );
    browser.screenshot("07-webhooks-removed").await;
    browser
        .goto(&page(&format!("/admin/log?receiver={id}")))
        .await;
    assert!(
        browser.source().await.contains(&delivery_id),
        "the log stays"
    );
    browser.screenshot("08-log-of-removed").await;

    // API accounts: create one, its secrets and QR code are shown once.
    browser.goto(&page("/admin/api-accounts")).await;
    browser.screenshot("09-api-accounts").await;
    browser
        .fill("#create-api-account input[name=name]", "crm-sync")
        .await;
    browser
        .click("#create-api-account input[name=permission][value='webhooks.manage']")
        .await;
    browser
        .fill("#create-api-account input[name=scopes]", "{\"*\": [\"*\"]}")
        .await;
    browser
        .click("#create-api-account button[type=submit]")
        .await;
    let token = browser.text("#api-token").await;
    let totp_secret = browser.text("#totp-secret").await;
    let account_id = browser.text("#account-id").await;
    assert!(
        browser
            .text("#totp-uri")
            .await
            .starts_with("otpauth://totp/")
    );
    assert!(
        browser.try_find("#totp-qr svg").await.is_some(),
        "a QR code"
    );
    browser.screenshot("10-api-account-created").await;

    browser.goto(&page("/admin/plugins")).await;
    let listed = browser.text("#plugins").await;
    for name in ["websub", "oauth2", "json", "scope-filter"] {
        assert!(listed.contains(name), "{name} in {listed}");
    }
    assert!(listed.contains("Built in: cannot be removed"), "{listed}");
    browser.screenshot("11-plugins").await;

    // Upload a plugin through the file input; it is listed, and then removed.
    browser
        .choose_file("#upload-plugin input[type=file]", plugins::UPPER_V1)
        .await;
    browser.click("#upload-plugin button[type=submit]").await;
    eventually(WAIT, || async {
        browser
            .source()
            .await
            .contains("data-name=\"upper\"")
            .then_some(())
    })
    .await;
    assert!(browser.text("#plugin-done").await.contains("upper"));
    assert_eq!(api.get("/plugins/upper").await["scope"], "tenant");
    browser.screenshot("11b-plugin-uploaded").await;
    browser
        .click("tr[data-name='upper'] button[name=remove]")
        .await;
    eventually(WAIT, || async {
        let html = browser.source().await;
        (html.contains("id=\"plugin-done\"") && !html.contains("data-name=\"upper\"")).then_some(())
    })
    .await;
    assert_eq!(
        api.status(reqwest::Method::GET, "/plugins/upper", None)
            .await,
        404
    );

    // Log out; the new API account's own credentials are refused at the login page.
    browser.click("header form button[type=submit]").await;
    eventually(WAIT, || async {
        browser.url().await.ends_with("/login").then_some(())
    })
    .await;
    browser.fill("input[name=name]", &account_id).await;
    browser.fill("input[name=password]", &token).await;
    browser
        .fill(
            "input[name=totp]",
            &totp_code(&totp_secret, server.now_ms()),
        )
        .await;
    browser.click("form button[type=submit]").await;
    let message = browser.text("#login-error").await;
    assert!(
        message.contains("API accounts") && message.contains("through the API"),
        "{message}"
    );
    assert!(browser.url().await.ends_with("/login"));
    browser.screenshot("12-api-account-refused").await;

    // The super-admin API account is refused the same way.
    browser
        .fill("input[name=name]", &server.admin.api_account.id)
        .await;
    browser
        .fill("input[name=password]", &server.admin.api_account.token)
        .await;
    browser.click("form button[type=submit]").await;
    assert!(browser.text("#login-error").await.contains("API accounts"));
    browser.quit().await;
}
