//! The delivery engine under what real receivers do: 410, redirects, hanging, private
//! addresses; resends and metrics.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use switchyard_tests::{Api, Options, Received, TestReceiver, TestServer, eventually};

const WAIT: Duration = Duration::from_secs(20);

fn websub(url: &str, account: &str, topics: &[&str]) -> Value {
    json!({
        "url": url,
        "topics": topics,
        "api_account": account,
        "auth": {"protocol": "websub", "settings": {"secret": "s3cret"}},
    })
}

/// A server with `concurrency` attempt slots, `per_receiver` of them for one receiver,
/// whose attempts may hang for longer than a test runs.
async fn with_slots(concurrency: usize, per_receiver: usize) -> TestServer {
    TestServer::start_with(Options {
        configure: Some(Box::new(move |c| {
            c.delivery.timeout = Duration::from_secs(120);
            c.delivery.concurrency = concurrency;
            c.delivery.per_receiver_concurrency = per_receiver;
        })),
        ..Options::default()
    })
    .await
}

/// A receiver that holds every request until released, subscribed to `Cases.*`.
async fn held_receiver(server: &TestServer, api: &Api) -> TestReceiver {
    let receiver = TestReceiver::start().await;
    receiver.hang();
    let account = server.admin.api_account.id.clone();
    api.add_receiver(websub(&receiver.url, &account, &["Cases.*"]))
        .await;
    receiver
}

/// Counts the next `count` webhooks in `seen`, by their payload's `n`.
async fn tally(receiver: &TestReceiver, seen: &mut [u32], count: usize) {
    for _ in 0..count {
        let n = receiver.next(WAIT).await.json()["n"].as_u64().expect("n");
        seen[usize::try_from(n).expect("n")] += 1;
    }
}

async fn delivery_when(api: &Api, id: &str, status: &str) -> Value {
    eventually(WAIT, || async {
        let d = api.get(&format!("/deliveries/{id}")).await;
        (d["status"] == status).then_some(d)
    })
    .await
}

/// Subscribes `receiver` to `Cases.*` for `account`, publishes `{"n": 1}`, and waits
/// until the log shows its delivery delivered. Returns the webhook and its id.
async fn deliver_one(api: &Api, account: &str, receiver: &TestReceiver) -> (Received, String) {
    api.add_receiver(websub(&receiver.url, account, &["Cases.*"]))
        .await;
    api.publish("Cases.Update", json!(null), json!({"n": 1}))
        .await;
    let webhook = receiver.next(WAIT).await;
    let id = webhook.header("webhook-id").expect("webhook-id").to_owned();
    delivery_when(api, &id, "delivered").await;
    (webhook, id)
}

#[tokio::test]
async fn a_receiver_answering_410_is_unsubscribed_without_retries() {
    let server = TestServer::start().await;
    let api = server.api().await;
    let receiver = TestReceiver::start().await;
    receiver.answer(410);
    let account = server.admin.api_account.id.clone();
    let id = api
        .add_receiver(websub(&receiver.url, &account, &["Cases.*"]))
        .await;
    api.publish("Cases.Create", json!(null), json!({"n": 1}))
        .await;
    let got = receiver.next(WAIT).await;
    let delivery = delivery_when(&api, got.header("webhook-id").expect("id"), "gone").await;
    assert_eq!(delivery["status_code"], 410);
    assert_eq!(delivery["next_attempt_at"], Value::Null);

    let removed = api.get(&format!("/receivers/{id}")).await;
    assert!(removed["deleted_at"].is_string(), "{removed}");
    assert!(
        removed["deleted_reason"]
            .as_str()
            .expect("reason")
            .contains("410")
    );
    api.publish("Cases.Create", json!(null), json!({"n": 2}))
        .await;
    assert!(
        receiver.nothing_within(Duration::from_millis(800)).await,
        "unsubscribed"
    );
}

#[tokio::test]
async fn a_delivery_can_be_resent_with_the_same_webhook_id() {
    let server = TestServer::start().await;
    let api = server.api().await;
    let receiver = TestReceiver::start().await;
    let account = server.admin.api_account.id.clone();
    let (first, id) = deliver_one(&api, &account, &receiver).await;

    let (status, _) = api
        .call(Method::POST, &format!("/deliveries/{id}/resend"), None)
        .await
        .expect("resend");
    assert_eq!(status, 202);
    let again = receiver.next(WAIT).await;
    assert_eq!(again.header("webhook-id"), Some(id.as_str()));
    assert_eq!(again.body, first.body);
    let delivery = eventually(WAIT, || async {
        let d = api.get(&format!("/deliveries/{id}")).await;
        (d["attempts"].as_array().map(Vec::len) == Some(2)).then_some(d)
    })
    .await;
    assert_eq!(delivery["status"], "delivered");
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let server = TestServer::start().await;
    let api = server.api().await;
    let receiver = TestReceiver::start().await;
    receiver.answer(302);
    let account = server.admin.api_account.id.clone();
    api.add_receiver(websub(&receiver.url, &account, &["Cases.*"]))
        .await;
    api.publish("Cases.Update", json!(null), json!({})).await;
    let got = receiver.next(WAIT).await;
    let d = delivery_when(&api, got.header("webhook-id").expect("id"), "retrying").await;
    assert_eq!(d["status_code"], 302);
    assert!(
        d["attempts"][0]["error"]
            .as_str()
            .expect("error")
            .contains("302")
    );
}

#[tokio::test]
async fn private_targets_are_refused_unless_allowed() {
    let server = TestServer::start_with(Options {
        configure: Some(Box::new(|c| c.delivery.allow_private_targets = false)),
        ..Options::default()
    })
    .await;
    let api = server.api().await;
    let receiver = TestReceiver::start().await;
    let account = server.admin.api_account.id.clone();

    // A literal private address is refused at once…
    for url in [
        receiver.url.clone(),
        "http://169.254.169.254/latest/meta-data".to_owned(),
        "http://10.0.0.1/hook".to_owned(),
    ] {
        let (status, body) = api
            .call(
                Method::POST,
                "/receivers",
                Some(websub(&url, &account, &["Cases.*"])),
            )
            .await
            .expect("POST");
        assert_eq!(status, 422, "{url}: {body}");
        assert!(
            body["detail"]
                .as_str()
                .expect("detail")
                .contains("not a public address")
        );
    }
    // …a name that resolves to one is refused when sending.
    let by_name = receiver.url.replace("127.0.0.1", "localhost");
    api.add_receiver(websub(&by_name, &account, &["Cases.*"]))
        .await;
    api.publish("Cases.Update", json!(null), json!({})).await;
    let log = eventually(WAIT, || async {
        let log = api.get("/deliveries").await;
        (log[0]["status"] == "retrying").then_some(log)
    })
    .await;
    let error = log[0]["attempts"][0]["error"].as_str().expect("error");
    assert!(error.contains("no public address"), "{error}");
    assert!(receiver.nothing_within(Duration::from_millis(300)).await);
}

#[tokio::test]
async fn a_hanging_receiver_does_not_hold_up_the_others() {
    let server = with_slots(4, 2).await;
    let api = server.api().await;
    let (slow, fast) = (TestReceiver::start().await, TestReceiver::start().await);
    slow.hang();
    let account = server.admin.api_account.id.clone();
    api.add_receiver(websub(&slow.url, &account, &["Cases.*"]))
        .await;
    api.add_receiver(websub(&fast.url, &account, &["Cases.*"]))
        .await;
    for n in 0..10 {
        api.publish("Cases.Update", json!(null), json!({"n": n}))
            .await;
    }
    // Every webhook reaches the healthy receiver while the slow one holds its two slots
    // for far longer than this test waits.
    let mut seen = Vec::new();
    for _ in 0..10 {
        seen.push(fast.next(WAIT).await.json()["n"].clone());
    }
    seen.sort_by_key(|n| n.as_i64());
    assert_eq!(seen, (0..10).map(|n| json!(n)).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_backlog_is_claimed_ahead_of_its_slots_and_each_webhook_sent_once() {
    // Two slots for the receiver and two more free: behind each of its attempts, one
    // delivery is claimed ahead and starts on that attempt's slot once it ends.
    let server = with_slots(4, 2).await;
    let api = server.api().await;
    let receiver = held_receiver(&server, &api).await;
    let events = 10;
    for n in 0..events {
        api.publish("Cases.Update", json!(null), json!({"n": n}))
            .await;
    }
    let mut seen = vec![0; events];
    tally(&receiver, &mut seen, 2).await;
    // Two held by the receiver, two claimed behind them, the rest queued.
    eventually(WAIT, || async {
        let metrics = server.http.get(server.url("/metrics")).send().await.ok()?;
        let text = metrics.text().await.ok()?;
        text.contains("switchyard_queue_depth 6\n").then_some(())
    })
    .await;
    receiver.release();
    tally(&receiver, &mut seen, events - 2).await;
    assert!(seen.iter().all(|&times| times == 1), "{seen:?}");
    assert!(receiver.nothing_within(Duration::from_millis(500)).await);
}

#[tokio::test]
async fn events_published_while_fan_out_waits_are_each_delivered_once() {
    // One slot, held by the first webhook: fan-out waits while more events are published
    // than the router's in-memory feed holds (8 MiB), so it must find them in the store.
    let server = with_slots(1, 1).await;
    let api = server.api().await;
    let receiver = held_receiver(&server, &api).await;
    api.publish("Cases.Update", json!(null), json!({"n": 0}))
        .await;
    receiver.next(WAIT).await;
    let (events, pad) = (60, "x".repeat(150_000));
    for n in 1..=events {
        api.publish("Cases.Update", json!(null), json!({"n": n, "pad": pad}))
            .await;
    }
    receiver.release();
    let mut seen = vec![0; events + 1];
    seen[0] = 1;
    tally(&receiver, &mut seen, events).await;
    assert!(seen.iter().all(|&times| times == 1), "{seen:?}");
    assert!(receiver.nothing_within(Duration::from_millis(500)).await);
}

#[tokio::test]
async fn an_event_cut_off_mid_fan_out_is_finished_after_a_restart_without_resending() {
    let server = TestServer::start_with(Options {
        configure: Some(Box::new(|c| {
            c.delivery.timeout = Duration::from_secs(120);
            c.delivery.shutdown_grace = Duration::from_millis(200);
        })),
        ..Options::default()
    })
    .await;
    let api = server.api().await;
    let (fast, slow) = (TestReceiver::start().await, TestReceiver::start().await);
    slow.hang();
    let account = server.admin.api_account.id.clone();
    api.add_receiver(websub(&fast.url, &account, &["Cases.*"]))
        .await;
    api.add_receiver(websub(&slow.url, &account, &["Cases.*"]))
        .await;
    api.publish("Cases.Update", json!(null), json!({"n": 1}))
        .await;
    let delivered = fast.next(WAIT).await;
    let id = delivered
        .header("webhook-id")
        .expect("webhook-id")
        .to_owned();
    delivery_when(&api, &id, "delivered").await;
    let cut_off = slow.next(WAIT).await;

    // The hanging attempt is cut off by the shutdown: its event's fan-out is not over.
    let server = server.restart(None).await;
    let again = slow.next(WAIT).await;
    assert_eq!(again.header("webhook-id"), cut_off.header("webhook-id"));
    assert_eq!(again.json()["n"], 1);
    assert!(
        fast.nothing_within(Duration::from_secs(2)).await,
        "the delivery stored before the restart is not sent again"
    );
    // The next TOTP step: the last code was used up before the restart.
    let admin = &server.admin.api_account;
    let api = (server.api_as(&admin.id, &admin.token, &admin.totp_secret, 1)).await;
    let log = api.get("/deliveries").await;
    let logged = log.as_array().expect("a list");
    let delivered: Vec<&Value> = logged.iter().filter(|d| d["id"] == id.as_str()).collect();
    assert_eq!(delivered.len(), 1, "{log}");
    assert_eq!(delivered[0]["attempts"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn a_webhook_being_sent_can_be_looked_up_by_its_id() {
    let server = TestServer::start().await;
    let api = server.api().await;
    let receiver = TestReceiver::start().await;
    receiver.hang();
    let account = server.admin.api_account.id.clone();
    api.add_receiver(websub(&receiver.url, &account, &["Cases.*"]))
        .await;
    api.publish("Cases.Update", json!(null), json!({"n": 1}))
        .await;
    let held = receiver.next(WAIT).await;
    let id = held.header("webhook-id").expect("webhook-id");

    // Its first attempt has not ended, so it is not stored yet; the log still knows it.
    let d = api.get(&format!("/deliveries/{id}")).await;
    assert_eq!(d["status"], "pending", "{d}");
    assert_eq!(d["attempts"].as_array().map(Vec::len), Some(0), "{d}");
    assert_eq!(
        d["request_body"].as_str(),
        std::str::from_utf8(&held.body).ok(),
        "{d}"
    );
    let resend = api
        .post(&format!("/deliveries/{id}/resend"), json!(null), 409)
        .await;
    assert!(
        resend["detail"]
            .as_str()
            .is_some_and(|t| t.contains("being sent")),
        "{resend}"
    );
}

#[tokio::test]
async fn a_replay_sends_nothing_again_and_no_older_event_to_a_newer_receiver() {
    let server = TestServer::start().await;
    let api = server.api().await;
    let (early, late) = (TestReceiver::start().await, TestReceiver::start().await);
    let account = server.admin.api_account.id.clone();
    deliver_one(&api, &account, &early).await;
    api.add_receiver(websub(&late.url, &account, &["Cases.*"]))
        .await;

    // Replaying the publish journal runs every journaled event's fan-out again, which
    // must make nothing it made before nor reach a receiver created since.
    let server = server.restart_replaying_the_journal().await;
    let admin = &server.admin.api_account;
    let api = (server.api_as(&admin.id, &admin.token, &admin.totp_secret, 1)).await;
    api.publish("Cases.Update", json!(null), json!({"n": 2}))
        .await;
    assert_eq!(early.next(WAIT).await.json()["n"], 2);
    assert_eq!(late.next(WAIT).await.json()["n"], 2);
    assert!(early.nothing_within(Duration::from_secs(1)).await);
    assert!(late.nothing_within(Duration::from_secs(1)).await);
}

#[tokio::test]
async fn a_graceful_stop_leaves_nothing_to_replay() {
    let mut server = TestServer::start().await;
    let api = server.api().await;
    api.publish("Cases.Update", json!(null), json!({"n": 1}))
        .await;
    let journal = switchyard::journal_path(&server.config);
    let size = || std::fs::metadata(&journal).expect("publish journal").len();
    assert!(size() > 0, "the event is journaled");
    server.shutdown().await;
    assert_eq!(
        size(),
        0,
        "the stop flushed the store and emptied the journal"
    );
}

#[tokio::test]
async fn metrics_count_events_and_outcomes() {
    let server = TestServer::start().await;
    let api = server.api().await;
    let receiver = TestReceiver::start().await;
    let account = server.admin.api_account.id.clone();
    api.add_receiver(websub(&receiver.url, &account, &["Cases.*"]))
        .await;
    api.publish("Cases.Update", json!(null), json!({})).await;
    receiver.next(WAIT).await;
    let text = eventually(WAIT, || async {
        let text = server
            .http
            .get(server.url("/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.contains("switchyard_delivery_outcomes_total{outcome=\"delivered\"} 1")
            .then_some(text)
    })
    .await;
    // Receivers.Create and Cases.Update.
    assert!(
        text.contains("switchyard_events_published_total 2"),
        "{text}"
    );
    assert!(text.contains("# TYPE switchyard_attempt_duration_seconds histogram"));
    assert!(text.contains("switchyard_queue_depth "));
}

#[tokio::test]
async fn retention_prunes_old_bodies_but_keeps_the_log() {
    let server = TestServer::start_with(Options {
        manual_clock_at: Some(1_800_000_000_000),
        configure: Some(Box::new(|c| {
            c.jobs.retention = Duration::from_secs(24 * 3600);
            c.jobs.retention_schedule = "0 0 * * * *".into();
        })),
    })
    .await;
    let api = server.api().await;
    let receiver = TestReceiver::start().await;
    let account = server.admin.api_account.id.clone();
    api.add_receiver(websub(&receiver.url, &account, &["Cases.*"]))
        .await;
    api.publish("Cases.Update", json!(null), json!({"secret": "payload"}))
        .await;
    let got = receiver.next(WAIT).await;
    let id = got.header("webhook-id").expect("id").to_owned();
    let kept = delivery_when(&api, &id, "delivered").await;
    assert_eq!(kept["body_pruned"], false);

    server
        .clock
        .as_ref()
        .expect("clock")
        .advance(Duration::from_secs(25 * 3600));
    let api = server.api().await;
    let pruned = eventually(WAIT, || async {
        let d = api.get(&format!("/deliveries/{id}")).await;
        (d["body_pruned"] == true).then_some(d)
    })
    .await;
    assert_eq!(pruned["request_body"], "");
    assert_eq!(pruned["status"], "delivered");
    assert_eq!(pruned["attempts"].as_array().map(Vec::len), Some(1));
}
