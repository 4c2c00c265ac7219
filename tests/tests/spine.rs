//! One event in, authorized, signed by the websub plugin, delivered, logged, retried.

use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use switchyard_tests::{Options, TestReceiver, TestServer, eventually};

const WAIT: Duration = Duration::from_secs(20);
const HOUR: Duration = Duration::from_secs(3600);

fn hmac_hex<M: Mac + hmac::digest::KeyInit>(key: &[u8], body: &[u8]) -> String {
    let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key).expect("any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn independent_signature(algorithm: &str, secret: &str, body: &[u8]) -> String {
    let key = secret.as_bytes();
    let hex = match algorithm {
        "sha1" => hmac_hex::<Hmac<sha1::Sha1>>(key, body),
        "sha256" => hmac_hex::<Hmac<sha2::Sha256>>(key, body),
        "sha384" => hmac_hex::<Hmac<sha2::Sha384>>(key, body),
        "sha512" => hmac_hex::<Hmac<sha2::Sha512>>(key, body),
        other => panic!("unknown algorithm {other}"),
    };
    format!("{algorithm}={hex}")
}

fn websub(receiver: &TestReceiver, account: &str, topics: &[&str], algorithm: &str) -> Value {
    json!({
        "url": receiver.url,
        "topics": topics,
        "api_account": account,
        "auth": {"protocol": "websub", "settings": {"secret": format!("s3cret-{algorithm}"), "algorithm": algorithm}},
    })
}

/// Waits until the delivery has logged `n` attempts, so the clock moves only between
/// attempts (a jump during one would make it look stuck to the maintenance job).
async fn attempts_logged(api: &switchyard_tests::Api, id: &str, n: usize) {
    eventually(WAIT, || async {
        let d = api.get(&format!("/deliveries/{id}")).await;
        (d["attempts"].as_array().map(Vec::len) == Some(n)).then_some(())
    })
    .await;
}

fn long_sessions() -> Option<switchyard_tests::Configure> {
    Some(Box::new(|c| {
        c.auth.access_token_ttl = Duration::from_secs(1000 * 3600);
    }))
}

fn user(id: &str) -> Value {
    json!({"kind": "user", "id": id, "attributes": {"org_unit": "sales"}})
}

#[tokio::test]
async fn every_websub_algorithm_signs_the_exact_body() {
    let server = TestServer::start().await;
    let api = server.api().await;
    let account = server.admin.api_account.id.clone();
    let mut receivers = Vec::new();
    for algorithm in ["sha1", "sha256", "sha384", "sha512"] {
        let receiver = TestReceiver::start().await;
        api.add_receiver(websub(&receiver, &account, &["Accounts.*"], algorithm))
            .await;
        receivers.push((algorithm, receiver));
    }

    let payload = json!({"name": "Ada", "changed": ["email"]});
    let event = api
        .publish("Accounts.Update", user("usr_1"), payload.clone())
        .await;

    for (algorithm, receiver) in &receivers {
        let got = receiver.next(WAIT).await;
        let expected = independent_signature(algorithm, &format!("s3cret-{algorithm}"), &got.body);
        assert_eq!(
            got.header("x-hub-signature"),
            Some(expected.as_str()),
            "{algorithm}"
        );
        assert_eq!(
            got.json(),
            payload,
            "the json transform sends the payload as published"
        );
        assert_eq!(got.header("x-switchyard-topic"), Some("Accounts.Update"));
        assert_eq!(got.header("content-type"), Some("application/json"));
        let id = got.header("webhook-id").expect("Webhook-Id").to_owned();
        assert!(id.starts_with("dlv_"), "{id}");

        // The log shows what was sent.
        let delivery = eventually(WAIT, || async {
            let d = api.get(&format!("/deliveries/{id}")).await;
            (d["status"] == "delivered").then_some(d)
        })
        .await;
        assert_eq!(delivery["event"], event.as_str());
        assert_eq!(delivery["topic"], "Accounts.Update");
        assert_eq!(delivery["status_code"], 200);
        assert_eq!(
            delivery["request_body"].as_str().map(str::as_bytes),
            Some(&got.body[..])
        );
        assert_eq!(delivery["attempts"].as_array().map(Vec::len), Some(1));
    }
}

#[tokio::test]
async fn a_receiver_that_keeps_failing_is_retried_on_schedule_then_failed() {
    let start = 1_800_000_000_000;
    let server = TestServer::start_with(Options {
        manual_clock_at: Some(start),
        configure: long_sessions(),
    })
    .await;
    let clock = server.clock.clone().expect("manual clock");
    let api = server.api().await;
    let receiver = TestReceiver::start().await;
    receiver.answer(500);
    let account = server.admin.api_account.id.clone();
    api.add_receiver(websub(&receiver, &account, &["Cases.Update"], "sha256"))
        .await;
    api.publish("Cases.Update", json!(null), json!({"case": 7}))
        .await;

    let first = receiver.next(WAIT).await;
    let id = first.header("webhook-id").expect("Webhook-Id").to_owned();
    for (retry, wait) in [1u64, 2, 6, 24].into_iter().enumerate() {
        attempts_logged(&api, &id, retry + 1).await;
        let due = Duration::from_secs(wait * 3600);
        // A millisecond before the retry is due nothing happens…
        clock.advance(due - Duration::from_millis(1));
        assert!(
            receiver.nothing_within(Duration::from_millis(300)).await,
            "retry {} came early",
            retry + 1
        );
        // …and at the due time it comes, with the same Webhook-Id.
        clock.advance(Duration::from_millis(1));
        let again = receiver.next(WAIT).await;
        assert_eq!(again.header("webhook-id"), Some(id.as_str()));
        assert_eq!(again.body, first.body);
    }

    // Hours went by on the manual clock: the first session expired.
    let api = server.api().await;
    let delivery = eventually(WAIT, || async {
        let d = api.get(&format!("/deliveries/{id}")).await;
        (d["status"] == "failed").then_some(d)
    })
    .await;
    let attempts = delivery["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 5);
    assert!(attempts.iter().all(|a| a["status_code"] == 500));
    assert_eq!(delivery["next_attempt_at"], Value::Null);
    let offsets: Vec<u64> = attempts
        .iter()
        .map(|a| {
            let at = humantime::parse_rfc3339(a["at"].as_str().expect("at")).expect("RFC 3339");
            (at.duration_since(std::time::UNIX_EPOCH)
                .expect("after epoch")
                .as_millis() as u64
                - start)
                / 1000
        })
        .collect();
    assert_eq!(offsets, [0, 3600, 3 * 3600, 9 * 3600, 33 * 3600]);

    clock.advance(HOUR * 100);
    assert!(
        receiver.nothing_within(Duration::from_millis(300)).await,
        "no sixth attempt"
    );
}

#[tokio::test]
async fn a_failure_then_success_ends_delivered() {
    let server = TestServer::start_with(Options {
        manual_clock_at: Some(1_800_000_000_000),
        ..Options::default()
    })
    .await;
    let clock = server.clock.clone().expect("manual clock");
    let api = server.api().await;
    let receiver = TestReceiver::start().await;
    receiver.answer(500);
    let account = server.admin.api_account.id.clone();
    api.add_receiver(websub(&receiver, &account, &["Cases.*"], "sha256"))
        .await;
    api.publish("Cases.Close", json!(null), json!({"case": 8}))
        .await;

    let first = receiver.next(WAIT).await;
    let first_id = first.header("webhook-id").expect("Webhook-Id").to_owned();
    attempts_logged(&api, &first_id, 1).await;
    receiver.answer(200);
    clock.advance(HOUR);
    let second = receiver.next(WAIT).await;
    assert_eq!(first.header("webhook-id"), second.header("webhook-id"));
    let id = second.header("webhook-id").expect("Webhook-Id").to_owned();
    let api = server.api().await;
    let delivery = eventually(WAIT, || async {
        let d = api.get(&format!("/deliveries/{id}")).await;
        (d["status"] == "delivered").then_some(d)
    })
    .await;
    let codes: Vec<_> = delivery["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| a["status_code"].clone())
        .collect();
    assert_eq!(codes, [json!(500), json!(200)]);
}

#[tokio::test]
async fn a_removed_receiver_gets_nothing_new_and_keeps_its_log() {
    let server = TestServer::start().await;
    let api = server.api().await;
    let receiver = TestReceiver::start().await;
    let account = server.admin.api_account.id.clone();
    let id = api
        .add_receiver(websub(&receiver, &account, &["Cases.Create"], "sha256"))
        .await;
    api.publish("Cases.Create", json!(null), json!({"n": 1}))
        .await;
    receiver.next(WAIT).await;

    let (status, removed) = api
        .call(Method::DELETE, &format!("/receivers/{id}"), None)
        .await
        .expect("DELETE");
    assert_eq!(status, 200, "{removed}");
    assert!(removed["deleted_at"].is_string());

    api.publish("Cases.Create", json!(null), json!({"n": 2}))
        .await;
    assert!(receiver.nothing_within(Duration::from_millis(800)).await);

    let live = api.get("/receivers").await;
    assert!(
        live.as_array()
            .expect("list")
            .iter()
            .all(|r| r["id"] != id.as_str())
    );
    let all = api.get("/receivers?include_deleted=true").await;
    let listed = all
        .as_array()
        .expect("list")
        .iter()
        .find(|r| r["id"] == id.as_str())
        .expect("removed receiver still listed")
        .clone();
    assert!(listed["deleted_at"].is_string());
    let log = eventually(WAIT, || async {
        let log = api.get(&format!("/receivers/{id}/deliveries")).await;
        (log[0]["status"] == "delivered").then_some(log)
    })
    .await;
    assert_eq!(log.as_array().map(Vec::len), Some(1));
    assert!(
        log[0]["request_body"]
            .as_str()
            .expect("body")
            .contains("\"n\":1")
    );
}

#[tokio::test]
async fn a_queued_delivery_survives_a_restart() {
    let start = 1_800_000_000_000;
    let server = TestServer::start_with(Options {
        manual_clock_at: Some(start),
        ..Options::default()
    })
    .await;
    let api = server.api().await;
    let receiver = TestReceiver::start().await;
    receiver.answer(503);
    let account = server.admin.api_account.id.clone();
    api.add_receiver(websub(&receiver, &account, &["Cases.Update"], "sha512"))
        .await;
    api.publish("Cases.Update", json!(null), json!({"case": 9}))
        .await;
    let first = receiver.next(WAIT).await;
    let id = first.header("webhook-id").expect("Webhook-Id").to_owned();
    eventually(WAIT, || async {
        let d = api.get(&format!("/deliveries/{id}")).await;
        (d["status"] == "retrying").then_some(())
    })
    .await;

    // Restart two hours later, with the receiver back up.
    receiver.answer(200);
    let later = switchyard::clock::ManualClock::new(start + 2 * 3600 * 1000);
    let server = server.restart(Some(later)).await;
    let again = receiver.next(WAIT).await;
    assert_eq!(again.header("webhook-id"), Some(id.as_str()));
    assert_eq!(again.body, first.body, "the retry sends the same body");
    let api = server.api().await;
    eventually(WAIT, || async {
        let d = api.get(&format!("/deliveries/{id}")).await;
        (d["status"] == "delivered").then_some(())
    })
    .await;
}

#[tokio::test]
async fn an_idempotency_key_publishes_once() {
    let server = TestServer::start().await;
    let api = server.api().await;
    let receiver = TestReceiver::start().await;
    let account = server.admin.api_account.id.clone();
    api.add_receiver(websub(&receiver, &account, &["Cases.Create"], "sha256"))
        .await;
    let publish = |key: &str| {
        api.http
            .post(format!("{}/events", api.base))
            .bearer_auth(&api.token)
            .header("Idempotency-Key", key)
            .json(&json!({"topic": "Cases.Create", "payload": {"n": 1}}))
            .send()
    };
    let first = publish("order-1").await.expect("publish");
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.expect("JSON");
    let second = publish("order-1").await.expect("publish");
    assert_eq!(second.status(), 200);
    let second: Value = second.json().await.expect("JSON");
    assert_eq!(first["id"], second["id"]);
    // As the document says: 1 to 255 visible ASCII characters other than '/'.
    for bad in ["a/b", "two words", "\t", &"k".repeat(256)] {
        let refused = publish(bad).await.expect("publish");
        assert_eq!(refused.status(), 422, "{bad:?}");
    }
    assert_eq!(
        publish(&"k".repeat(255)).await.expect("publish").status(),
        202
    );
    receiver.next(WAIT).await;
    receiver.next(WAIT).await;
    assert!(
        receiver.nothing_within(Duration::from_millis(800)).await,
        "one delivery only"
    );
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let server = TestServer::start().await;
    let api = server.api().await;
    let account = server.admin.api_account.id.clone();

    let raw = api
        .http
        .post(format!("{}/receivers", api.base))
        .bearer_auth(&api.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("POST");
    assert_eq!(raw.status(), 400);
    let body: Value = raw.json().await.expect("JSON error");
    assert_eq!(body["code"], "invalid_request");
    assert!(
        body["detail"]
            .as_str()
            .expect("detail")
            .contains("malformed JSON")
    );

    let cases = [
        json!({"url": "ftp://x", "topics": ["Cases.Create"], "api_account": account, "auth": {"protocol": "websub", "settings": {"secret": "x"}}}),
        json!({"url": "http://x", "topics": ["No.Such"], "api_account": account, "auth": {"protocol": "websub", "settings": {"secret": "x"}}}),
        json!({"url": "http://x", "topics": ["Cases.Create"], "api_account": "acc_nope", "auth": {"protocol": "websub", "settings": {"secret": "x"}}}),
        json!({"url": "http://x", "topics": ["Cases.Create"], "api_account": account, "auth": {"protocol": "nope", "settings": {}}}),
        json!({"url": "http://x", "topics": ["Cases.Create"], "api_account": account, "auth": {"protocol": "websub", "settings": {}}}),
        json!({"url": "http://x", "topics": "Cases.Create", "api_account": account, "auth": {"protocol": "websub", "settings": {"secret": "x"}}}),
        json!({"url": "http://x", "topics": ["Cases.Create"], "api_account": account, "auth": {"protocol": "websub", "settings": {"secret": "x"}}, "surprise": 1}),
    ];
    for case in cases {
        let (status, body) = api
            .call(Method::POST, "/receivers", Some(case.clone()))
            .await
            .expect("POST");
        assert_eq!(status, 422, "{case} → {body}");
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{body}"
        );
    }
    assert_eq!(api.get("/receivers?include_deleted=true").await, json!([]));

    let (status, body) = api
        .call(
            Method::POST,
            "/events",
            Some(json!({"topic": "Nope.Nothing", "payload": {}})),
        )
        .await
        .expect("POST");
    assert_eq!(status, 422, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .expect("detail")
            .contains("unknown topic")
    );

    let (status, _) = api
        .call(Method::GET, "/deliveries/dlv_nope", None)
        .await
        .expect("GET");
    assert_eq!(status, 404);
    let (status, _) = api
        .call(Method::GET, "/deliveries?status=sideways", None)
        .await
        .expect("GET");
    assert_eq!(status, 400);

    let unauthenticated = api
        .http
        .get(format!("{}/receivers", api.base))
        .send()
        .await
        .expect("GET");
    assert_eq!(unauthenticated.status(), 401);
    let other_tenant = api
        .http
        .get(server.url("/t/other/v1/receivers"))
        .bearer_auth(&api.token)
        .send()
        .await
        .expect("GET");
    assert_eq!(other_tenant.status(), 401);
}

#[tokio::test]
async fn login_refuses_wrong_factors_alike_and_replays() {
    let server = TestServer::start_with(Options {
        manual_clock_at: Some(1_800_000_000_000),
        ..Options::default()
    })
    .await;
    let account = &server.admin.api_account;
    let login = |token: &str, totp: String| {
        server
            .http
            .post(server.url("/auth/login"))
            .json(&json!({"account": account.id, "token": token, "totp": totp}))
            .send()
    };
    let code = switchyard_tests::totp_code(&account.totp_secret, server.now_ms());
    let wrong_token = login("nope", code.clone()).await.expect("login");
    assert_eq!(wrong_token.status(), 401);
    let wrong_token: Value = wrong_token.json().await.expect("JSON");
    let wrong_code = login(&account.token, "000000".into()).await.expect("login");
    assert_eq!(wrong_code.status(), 401);
    let wrong_code: Value = wrong_code.json().await.expect("JSON");
    assert_eq!(
        wrong_token, wrong_code,
        "the answer does not say which factor was wrong"
    );

    let ok = login(&account.token, code.clone()).await.expect("login");
    assert_eq!(ok.status(), 200);
    let ok: Value = ok.json().await.expect("JSON");
    assert_eq!(ok["token_type"], "Bearer");
    assert_eq!(ok["base_url"], server.base_url());
    assert!(ok["expires_in"].as_u64().is_some_and(|s| s > 0));
    let replay = login(&account.token, code).await.expect("login");
    assert_eq!(replay.status(), 401, "a code works once");
}
