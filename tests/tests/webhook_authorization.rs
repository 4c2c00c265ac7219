//! SPEC 4.2: an account gets no webhooks about users it may not see, checked at fan-out
//! and again at every send.

use std::time::Duration;

use serde_json::{Value, json};
use switchyard_tests::{Options, TestReceiver, TestServer, eventually};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_receiver_gets_only_events_about_users_in_its_accounts_scope() {
    let server = TestServer::start_with(Options {
        manual_clock_at: Some(1_800_000_000_000),
        ..Options::default()
    })
    .await;
    let admin = server.api().await;
    let scoped = admin
        .post(
            "/api-accounts",
            json!({"name": "sales-crm", "authorizations": {"permissions": ["accounts.read"], "scopes": {"org_unit": ["sales"]}}}),
            201,
        )
        .await;
    let scoped_id = scoped["id"].as_str().expect("id").to_owned();
    let receiver = TestReceiver::start().await;
    admin
        .add_receiver(json!({
            "url": receiver.url,
            "topics": ["Accounts.*"],
            "api_account": scoped_id,
            "auth": {"protocol": "websub", "settings": {"secret": "s"}},
            "filter": {"plugin": "scope-filter", "settings": {"permission": "accounts.read"}},
        }))
        .await;

    let ada = admin
        .post(
            "/accounts",
            json!({"name": "ada", "attributes": {"org_unit": "sales"}}),
            201,
        )
        .await;
    admin
        .post(
            "/accounts",
            json!({"name": "bob", "attributes": {"org_unit": "support"}}),
            201,
        )
        .await;
    let created = receiver.next(WAIT).await;
    assert_eq!(
        created.header("x-switchyard-topic"),
        Some("Accounts.Create")
    );
    assert_eq!(created.json()["name"], "ada");
    assert!(
        receiver.nothing_within(Duration::from_millis(500)).await,
        "nothing about bob"
    );

    // Fan-out allowed it, but the scope changes before the retry: not sent.
    receiver.answer(500);
    let ada_id = ada["id"].as_str().expect("id").to_owned();
    admin
        .patch(
            &format!("/accounts/{ada_id}"),
            json!({"name": "ada l."}),
            200,
        )
        .await;
    let update = receiver.next(WAIT).await;
    let delivery_id = update.header("webhook-id").expect("id").to_owned();
    eventually(WAIT, || async {
        let d = admin.get(&format!("/deliveries/{delivery_id}")).await;
        (d["status"] == "retrying").then_some(())
    })
    .await;
    admin
        .patch(
            &format!("/api-accounts/{scoped_id}"),
            json!({"authorizations": {"permissions": ["accounts.read"], "scopes": {"org_unit": ["support"]}}}),
            200,
        )
        .await;
    receiver.answer(200);
    server
        .clock
        .as_ref()
        .expect("clock")
        .advance(Duration::from_secs(3600));
    let admin = server.api().await;
    let d: Value = eventually(WAIT, || async {
        let d = admin.get(&format!("/deliveries/{delivery_id}")).await;
        (d["status"] == "unauthorized").then_some(d)
    })
    .await;
    assert!(
        d["error"].as_str().expect("reason").contains("may not see"),
        "{d}"
    );
    assert_eq!(
        d["attempts"].as_array().map(Vec::len),
        Some(1),
        "the refused send is not an attempt"
    );
    assert!(
        receiver.nothing_within(Duration::from_millis(500)).await,
        "not sent"
    );
}

/// Receivers of one event that share a plugin, its settings and (for the filter) the
/// API account share its answer; the others each get their own.
#[tokio::test]
async fn each_receiver_of_an_event_gets_its_own_accounts_answer_and_its_own_body() {
    let server = TestServer::start().await;
    let admin = server.api().await;
    let account = |unit: &str| json!({"name": format!("{unit}-crm"), "authorizations": {"permissions": ["accounts.read"], "scopes": {"org_unit": [unit]}}});
    let sales = admin.post("/api-accounts", account("sales"), 201).await;
    let support = admin.post("/api-accounts", account("support"), 201).await;
    let mut receivers = Vec::new();
    for (account, envelope) in [
        (&sales, "false"),
        (&support, "false"),
        (&sales, "true"),
        (&sales, "false"),
    ] {
        let receiver = TestReceiver::start().await;
        admin
            .add_receiver(json!({
                "url": receiver.url,
                "topics": ["Accounts.*"],
                "api_account": account["id"],
                "auth": {"protocol": "websub", "settings": {"secret": "s"}},
                "filter": {"plugin": "scope-filter", "settings": {"permission": "accounts.read"}},
                "transform": {"plugin": "json", "settings": {"envelope": envelope}},
            }))
            .await;
        receivers.push(receiver);
    }

    admin
        .post(
            "/accounts",
            json!({"name": "ada", "attributes": {"org_unit": "sales"}}),
            201,
        )
        .await;
    let [plain, other_account, enveloped, plain_again] = &receivers[..] else {
        unreachable!("four receivers");
    };
    let ada = plain.next(WAIT).await.json();
    assert_eq!(ada["name"], "ada");
    assert_eq!(plain_again.next(WAIT).await.json(), ada, "the same body");
    let envelope = enveloped.next(WAIT).await.json();
    assert_eq!(envelope["topic"], "Accounts.Create");
    assert_eq!(envelope["payload"], ada);
    assert!(
        other_account
            .nothing_within(Duration::from_millis(500))
            .await,
        "support's account may not see ada"
    );
}
