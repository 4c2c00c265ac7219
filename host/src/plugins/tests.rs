//! The real built-in components (and a hostile test plugin) through wasmtime.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hmac::{Hmac, Mac};

use super::builtin::{BUILTIN_PLUGINS, test_plugins};
use super::*;
use crate::clock::{ManualClock, SharedClock, SystemClock};

/// One precompiled-artifact cache for the whole test run, so each test does not
/// recompile every built-in.
fn shared_cache() -> PathBuf {
    std::env::temp_dir().join(format!(
        "switchyard-plugin-tests-{}",
        env!("CARGO_PKG_VERSION")
    ))
}

fn config() -> PluginsConfig {
    PluginsConfig {
        cache_dir: Some(shared_cache()),
        call_timeout: Duration::from_millis(500),
        allow_private_token_urls: true,
        max_instances: 50,
        ..PluginsConfig::default()
    }
}

fn host_with(config: &PluginsConfig, clock: SharedClock) -> (Plugins, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let plugins = Plugins::new(config, clock, dir.path()).unwrap();
    (plugins, dir)
}

fn host() -> (Plugins, tempfile::TempDir) {
    host_with(&config(), Arc::new(SystemClock))
}

fn settings(pairs: &[(&str, &str)]) -> Settings {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn request(body: &[u8]) -> OutgoingRequest {
    OutgoingRequest {
        method: "POST".into(),
        url: "https://receiver.example.com/hook".into(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_vec(),
    }
}

fn context(delivery_id: &str) -> DeliveryContext {
    DeliveryContext {
        delivery_id: delivery_id.into(),
        event_id: "evt_1".into(),
        topic: "Accounts.Update".into(),
        attempt: 1,
    }
}

fn event(subject: Option<&[(&str, &str)]>) -> Event {
    Event {
        id: "evt_1".into(),
        tenant: "acme".into(),
        topic: "Accounts.Update".into(),
        occurred_at_ms: 1_614_265_330_000,
        subject: subject.map(|attrs| Subject {
            kind: "user".into(),
            id: "usr_1".into(),
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }),
        content_type: "application/json".into(),
        payload: br#"{"name":"Ada"}"#.to_vec(),
    }
}

fn header<'a>(request: &'a OutgoingRequest, name: &str) -> Option<&'a str> {
    request
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn hex_hmac<M: Mac + hmac::digest::KeyInit>(key: &[u8], body: &[u8]) -> String {
    let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn built_ins_are_listed_with_their_kinds() {
    let (plugins, _dir) = host();
    let listed: Vec<(String, PluginKind)> = plugins
        .list(None)
        .into_iter()
        .map(|i| (i.name, i.kind))
        .collect();
    assert_eq!(
        listed,
        [
            ("cloudevents".to_string(), PluginKind::PayloadTransform),
            ("json".to_string(), PluginKind::PayloadTransform),
            ("oauth2".to_string(), PluginKind::AuthProtocol),
            ("scope-filter".to_string(), PluginKind::AuthorizationFilter),
            ("standard-webhooks".to_string(), PluginKind::AuthProtocol),
            ("websub".to_string(), PluginKind::AuthProtocol),
        ]
    );
    let websub = plugins.info("acme", "websub").unwrap();
    assert!(
        websub
            .settings
            .iter()
            .any(|s| s.name == "secret" && s.secret && s.required)
    );
    assert!(plugins.is_builtin("acme", "websub"));
}

#[tokio::test]
async fn websub_signs_with_every_algorithm() {
    let (plugins, _dir) = host();
    let body = br#"{"topic":"Accounts.Update","id":42}"#;
    for algorithm in ["sha1", "sha256", "sha384", "sha512"] {
        let signed = plugins
            .authenticate(
                "acme",
                "websub",
                request(body),
                &context("dlv_1"),
                &settings(&[
                    ("secret", "It's a Secret to Everybody"),
                    ("algorithm", algorithm),
                ]),
                false,
            )
            .await
            .unwrap();
        let key = b"It's a Secret to Everybody";
        let expected = match algorithm {
            "sha1" => hex_hmac::<Hmac<sha1::Sha1>>(key, body),
            "sha256" => hex_hmac::<Hmac<sha2::Sha256>>(key, body),
            "sha384" => hex_hmac::<Hmac<sha2::Sha384>>(key, body),
            _ => hex_hmac::<Hmac<sha2::Sha512>>(key, body),
        };
        assert_eq!(
            header(&signed, "x-hub-signature"),
            Some(format!("{algorithm}={expected}").as_str())
        );
        assert_eq!(signed.body, body, "the body is sent as signed");
    }
}

#[tokio::test]
async fn websub_refuses_an_unknown_algorithm() {
    let (plugins, _dir) = host();
    let error = plugins
        .authenticate(
            "acme",
            "websub",
            request(b"{}"),
            &context("dlv_1"),
            &settings(&[("secret", "s"), ("algorithm", "md5")]),
            false,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Rejected(m) if m.contains("md5")),
        "{error}"
    );
}

#[tokio::test]
async fn standard_webhooks_matches_the_published_vector() {
    let clock = ManualClock::new(1_614_265_330_000);
    let (plugins, _dir) = host_with(&config(), clock.clone());
    let signed = plugins
        .authenticate(
            "acme",
            "standard-webhooks",
            request(br#"{"test": 2432232314}"#),
            &context("msg_p5jXN8AQM9LWM0D4loKWxJek"),
            &settings(&[("secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]),
            false,
        )
        .await
        .unwrap();
    assert_eq!(
        header(&signed, "webhook-id"),
        Some("msg_p5jXN8AQM9LWM0D4loKWxJek")
    );
    assert_eq!(header(&signed, "webhook-timestamp"), Some("1614265330"));
    assert_eq!(
        header(&signed, "webhook-signature"),
        Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
    );

    // A retry an hour later is signed afresh with the host's (manual) clock.
    clock.advance(Duration::from_secs(3600));
    let again = plugins
        .authenticate(
            "acme",
            "standard-webhooks",
            signed,
            &context("msg_p5jXN8AQM9LWM0D4loKWxJek"),
            &settings(&[("secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]),
            false,
        )
        .await
        .unwrap();
    assert_eq!(header(&again, "webhook-timestamp"), Some("1614268930"));
    assert_eq!(
        again
            .headers
            .iter()
            .filter(|(k, _)| k == "webhook-signature")
            .count(),
        1
    );
}

#[tokio::test]
async fn scope_filter_allows_and_denies() {
    let (plugins, _dir) = host();
    let principal = |permissions: &[&str], scopes: &[(&str, &[&str])]| Principal {
        id: "acc_1".into(),
        permissions: permissions.iter().map(|p| p.to_string()).collect(),
        scopes: scopes
            .iter()
            .map(|(k, vs)| (k.to_string(), vs.iter().map(|v| v.to_string()).collect()))
            .collect(),
    };
    let sales = event(Some(&[("org-unit", "sales")]));
    let none = Settings::new();
    let cases: Vec<(&str, Event, Principal, Settings, bool)> = vec![
        (
            "no subject",
            event(None),
            principal(&[], &[]),
            none.clone(),
            true,
        ),
        (
            "in scope",
            sales.clone(),
            principal(&[], &[("org-unit", &["sales", "hr"])]),
            none.clone(),
            true,
        ),
        (
            "out of scope",
            sales.clone(),
            principal(&[], &[("org-unit", &["hr"])]),
            none.clone(),
            false,
        ),
        (
            "no scope at all",
            sales.clone(),
            principal(&["*"], &[]),
            none.clone(),
            false,
        ),
        (
            "wildcard",
            sales.clone(),
            principal(&[], &[("org-unit", &["*"])]),
            none.clone(),
            true,
        ),
        (
            "missing attribute",
            sales.clone(),
            principal(&[], &[("org-unit", &["sales"]), ("country", &["nl"])]),
            none.clone(),
            false,
        ),
        (
            "lacks permission",
            sales.clone(),
            principal(&["accounts.read"], &[("org-unit", &["sales"])]),
            settings(&[("permission", "accounts.write")]),
            false,
        ),
        (
            "holds permission",
            sales.clone(),
            principal(&["accounts.read"], &[("org-unit", &["sales"])]),
            settings(&[("permission", "accounts.read")]),
            true,
        ),
    ];
    for (name, event, principal, settings, expected) in cases {
        let allowed = plugins
            .allow("acme", "scope-filter", &event, &principal, &settings)
            .await
            .unwrap();
        assert_eq!(allowed, expected, "{name}");
    }
}

#[tokio::test]
async fn json_is_the_identity_or_an_envelope() {
    let (plugins, _dir) = host();
    let body = plugins
        .transform("acme", "json", &event(None), &Settings::new())
        .await
        .unwrap();
    assert_eq!(body.content_type, "application/json");
    assert_eq!(body.bytes, br#"{"name":"Ada"}"#);

    let body = plugins
        .transform(
            "acme",
            "json",
            &event(Some(&[("org-unit", "sales")])),
            &settings(&[("envelope", "true")]),
        )
        .await
        .unwrap();
    let value: serde_json::Value = serde_json::from_slice(&body.bytes).unwrap();
    assert_eq!(
        value,
        serde_json::json!({
            "id": "evt_1", "topic": "Accounts.Update", "tenant": "acme",
            "occurred_at": "2021-02-25T15:02:10.000Z",
            "subject": {"kind": "user", "id": "usr_1", "attributes": {"org-unit": "sales"}},
            "payload": {"name": "Ada"},
        })
    );
}

#[tokio::test]
async fn cloudevents_structured_mode() {
    let (plugins, _dir) = host();
    let body = plugins
        .transform("acme", "cloudevents", &event(Some(&[])), &Settings::new())
        .await
        .unwrap();
    assert_eq!(body.content_type, "application/cloudevents+json");
    let value: serde_json::Value = serde_json::from_slice(&body.bytes).unwrap();
    assert_eq!(
        value,
        serde_json::json!({
            "specversion": "1.0", "id": "evt_1", "source": "/switchyard/acme",
            "type": "Accounts.Update", "time": "2021-02-25T15:02:10.000Z", "subject": "usr_1",
            "datacontenttype": "application/json", "data": {"name": "Ada"},
        })
    );
    let mut binary = event(None);
    binary.content_type = "application/octet-stream".into();
    binary.payload = vec![0, 1, 2];
    let body = plugins
        .transform("acme", "cloudevents", &binary, &Settings::new())
        .await
        .unwrap();
    let value: serde_json::Value = serde_json::from_slice(&body.bytes).unwrap();
    assert_eq!(value["data_base64"], "AAEC");
}

#[test]
fn each_component_exports_exactly_its_world() {
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    let engine = wasmtime::Engine::new(&config).unwrap();
    for (package, bytes) in BUILTIN_PLUGINS {
        let component = wasmtime::component::Component::new(&engine, bytes).unwrap();
        let ty = component.component_type();
        let exports: BTreeSet<&str> = ty.exports(&engine).map(|(name, _)| name).collect();
        let expected: BTreeSet<&str> = match *package {
            "switchyard-plugin-websub"
            | "switchyard-plugin-oauth2"
            | "switchyard-plugin-standard-webhooks" => ["describe", "authenticate"].into(),
            "switchyard-plugin-json" | "switchyard-plugin-cloudevents" => {
                ["describe", "transform"].into()
            }
            "switchyard-plugin-scope-filter" => ["describe", "allow"].into(),
            other => panic!("unexpected built-in {other}"),
        };
        assert_eq!(exports, expected, "{package}");
        for (import, _) in ty.imports(&engine) {
            assert!(
                import.starts_with("switchyard:plugin/") || import.starts_with("wasi:"),
                "{package} imports {import}"
            );
        }
    }
}

#[tokio::test]
async fn garbage_uploads_are_invalid() {
    let (plugins, _dir) = host();
    for bytes in [&b"not wasm"[..], b"", b"\0asm\x01\0\0\0"] {
        let error = plugins.install(Some("acme"), bytes).await.unwrap_err();
        assert!(matches!(error, Error::Invalid(_)), "{error}");
    }
}

#[test]
fn a_restart_loads_precompiled_artifacts() {
    let data = tempfile::tempdir().unwrap();
    let config = PluginsConfig::default();
    let first = Plugins::new(&config, Arc::new(SystemClock), data.path()).unwrap();
    assert_eq!(first.stats().compiled, BUILTIN_PLUGINS.len() as u64);
    drop(first);
    let second = Plugins::new(&config, Arc::new(SystemClock), data.path()).unwrap();
    assert_eq!(second.stats().compiled, 0);
    assert_eq!(second.stats().cache_hits, BUILTIN_PLUGINS.len() as u64);
}

fn hostile_bytes() -> Vec<u8> {
    std::fs::read(test_plugins::HOSTILE).unwrap()
}

#[tokio::test]
async fn install_list_shadow_and_remove_a_tenant_plugin() {
    let (plugins, dir) = host();
    let info = plugins
        .install(Some("acme"), &hostile_bytes())
        .await
        .unwrap();
    assert_eq!(info.name, "hostile");
    assert_eq!(info.kind, PluginKind::PayloadTransform);
    assert!(
        plugins
            .list(Some("acme"))
            .iter()
            .any(|i| i.name == "hostile")
    );
    assert!(
        !plugins
            .list(Some("other"))
            .iter()
            .any(|i| i.name == "hostile")
    );
    assert!(!plugins.list(None).iter().any(|i| i.name == "hostile"));
    assert!(plugins.info("other", "hostile").is_none());
    let error = plugins
        .transform("other", "hostile", &event(None), &Settings::new())
        .await
        .unwrap_err();
    assert!(matches!(error, Error::NotFound(_)));

    // Persisted: a restart on the same data directory has it again.
    let again = Plugins::new(&config(), Arc::new(SystemClock), dir.path()).unwrap();
    assert!(again.info("acme", "hostile").is_some());

    assert!(matches!(
        plugins.remove(Some("acme"), "websub"),
        Err(Error::BuiltIn(_))
    ));
    assert!(matches!(
        plugins.remove(None, "json"),
        Err(Error::BuiltIn(_))
    ));
    plugins.remove(Some("acme"), "hostile").unwrap();
    assert!(plugins.info("acme", "hostile").is_none());
    assert!(matches!(
        plugins.remove(Some("acme"), "hostile"),
        Err(Error::NotFound(_))
    ));
    let after_restart = Plugins::new(&config(), Arc::new(SystemClock), dir.path()).unwrap();
    assert!(after_restart.info("acme", "hostile").is_none());
}

#[tokio::test]
async fn installed_plugins_carry_their_scope_and_origin() {
    let (plugins, _dir) = host();
    let json = plugins.installed_one(Some("acme"), "json").unwrap();
    assert!(json.builtin);
    assert_eq!((json.scope, json.origin), (Scope::Global, Origin::BuiltIn));

    plugins.install(None, &hostile_bytes()).await.unwrap();
    let global = plugins.installed_one(Some("acme"), "hostile").unwrap();
    assert!(!global.builtin);
    assert_eq!(
        (global.scope, global.origin),
        (Scope::Global, Origin::Uploaded)
    );
    assert!(
        plugins
            .installed(None)
            .iter()
            .any(|p| p.info.name == "hostile")
    );

    // A tenant's own copy shadows the global one, for that tenant only.
    plugins
        .install(Some("acme"), &hostile_bytes())
        .await
        .unwrap();
    let own = plugins.installed(Some("acme"));
    let hostile: Vec<_> = own.iter().filter(|p| p.info.name == "hostile").collect();
    assert_eq!(hostile.len(), 1);
    assert_eq!(hostile[0].scope, Scope::Tenant);
    assert_eq!(
        plugins
            .installed_one(Some("other"), "hostile")
            .unwrap()
            .scope,
        Scope::Global
    );
    assert_eq!(
        plugins.installed_one(None, "hostile").unwrap().scope,
        Scope::Global
    );
    let names: Vec<_> = own.iter().map(|p| p.info.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted);

    let json = serde_json::to_value(hostile[0]).unwrap();
    assert_eq!(json["name"], "hostile");
    assert_eq!(json["kind"], "payload-transform");
    assert_eq!(json["builtin"], false);
    assert_eq!(json["scope"], "tenant");
    assert_eq!(json["origin"], "uploaded");
}

#[tokio::test]
async fn check_settings_names_what_is_wrong() {
    let (plugins, _dir) = host();
    plugins
        .check_settings(
            "acme",
            "websub",
            PluginKind::AuthProtocol,
            &settings(&[("secret", "s")]),
        )
        .unwrap();
    let missing = plugins
        .check_settings(
            "acme",
            "websub",
            PluginKind::AuthProtocol,
            &settings(&[("algorithm", "sha1")]),
        )
        .unwrap_err();
    assert!(
        matches!(&missing, Error::InvalidSettings(m) if m.contains("`secret`")),
        "{missing}"
    );
    let unknown = plugins
        .check_settings(
            "acme",
            "websub",
            PluginKind::AuthProtocol,
            &settings(&[("secret", "s"), ("salt", "x")]),
        )
        .unwrap_err();
    assert!(
        matches!(&unknown, Error::InvalidSettings(m) if m.contains("`salt`")),
        "{unknown}"
    );
    let wrong = plugins
        .check_settings("acme", "json", PluginKind::AuthProtocol, &Settings::new())
        .unwrap_err();
    assert!(matches!(wrong, Error::WrongKind { .. }));
    let absent = plugins
        .check_settings("acme", "nope", PluginKind::AuthProtocol, &Settings::new())
        .unwrap_err();
    assert!(matches!(absent, Error::NotFound(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_plugins_fail_only_their_own_call() {
    // Long enough for the `giant` body on a loaded machine (1 s was not, with two cores
    // shared by parallel builds), short enough that `loop` is stopped well within 5 s.
    let config = PluginsConfig {
        call_timeout: Duration::from_millis(3000),
        ..config()
    };
    let (plugins, _dir) = host_with(&config, Arc::new(SystemClock));
    plugins
        .install(Some("acme"), &hostile_bytes())
        .await
        .unwrap();
    let run = |mode: &'static str| {
        let plugins = plugins.clone();
        async move {
            plugins
                .transform(
                    "acme",
                    "hostile",
                    &event(None),
                    &settings(&[("mode", mode)]),
                )
                .await
        }
    };
    let echo = |result: Result<Body, Error>| {
        let body = result.unwrap();
        assert_eq!(body.bytes, br#"{"name":"Ada"}"#);
    };

    echo(run("echo").await);
    let started = std::time::Instant::now();
    let error = run("loop").await.unwrap_err();
    assert!(matches!(error, Error::Timeout), "{error}");
    assert!(started.elapsed() < Duration::from_secs(5));
    echo(run("echo").await);

    let error = run("alloc").await.unwrap_err();
    assert!(
        matches!(&error, Error::ResourceLimit(m) if m.contains("64 MiB")),
        "{error}"
    );
    echo(run("echo").await);

    let error = run("trap").await.unwrap_err();
    assert!(matches!(error, Error::Trap(_)), "{error}");
    echo(run("echo").await);

    let error = run("panic").await.unwrap_err();
    assert!(
        matches!(&error, Error::Trap(m) if m.contains("unreachable")),
        "{error}"
    );
    echo(run("echo").await);

    let error = run("giant").await.unwrap_err();
    assert!(
        matches!(&error, Error::BadOutput(m) if m.contains("at most")),
        "{error}"
    );
    echo(run("echo").await);

    let error = run("headers").await.unwrap_err();
    assert!(
        matches!(&error, Error::Rejected(m) if m.len() < 2048),
        "{error}"
    );
    let error = run("fail").await.unwrap_err();
    assert!(
        matches!(&error, Error::Rejected(m) if m == "failing on purpose"),
        "{error}"
    );
    echo(run("echo").await);

    // A spinning plugin does not hold up other calls.
    let (spin, other) = tokio::join!(run("loop"), async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let started = std::time::Instant::now();
        let result = run("echo").await;
        (result, started.elapsed())
    });
    assert!(matches!(spin, Err(Error::Timeout)));
    echo(other.0);
    assert!(
        other.1 < Duration::from_millis(250),
        "echo waited {:?}",
        other.1
    );
}

#[tokio::test]
async fn warm_instances_are_reused_and_plugins_see_the_host_clock() {
    let clock = ManualClock::new(1_700_000_000_000);
    let (plugins, _dir) = host_with(&config(), clock.clone());
    plugins
        .install(Some("acme"), &hostile_bytes())
        .await
        .unwrap();
    let before = plugins.stats();
    for _ in 0..5 {
        let body = plugins
            .transform(
                "acme",
                "hostile",
                &event(None),
                &settings(&[("mode", "now")]),
            )
            .await
            .unwrap();
        assert_eq!(body.bytes, b"1700000000000");
    }
    let after = plugins.stats();
    assert_eq!(after.instantiated - before.instantiated, 1);
    assert_eq!(after.warm_calls - before.warm_calls, 4);
}

#[tokio::test]
async fn a_plugin_built_against_the_first_contract_still_loads_and_runs() {
    let clock = ManualClock::new(1_700_000_000_000);
    let (plugins, _dir) = host_with(&config(), clock);
    let bytes = std::fs::read(test_plugins::FIRST_WIT).unwrap();
    let info = plugins.install(Some("acme"), &bytes).await.unwrap();
    assert_eq!(
        (info.name.as_str(), info.kind),
        ("first-wit", PluginKind::PayloadTransform)
    );
    let event = event(None);
    let body = plugins
        .transform("acme", "first-wit", &event, &Settings::new())
        .await
        .unwrap();
    let payload = String::from_utf8(event.payload).unwrap();
    assert_eq!(
        String::from_utf8(body.bytes).unwrap(),
        format!(r#"{{"first-wit":1700000000000,"payload":{payload}}}"#)
    );
}

/// A token endpoint on 127.0.0.1 that counts requests and checks the client's Basic
/// credentials.
async fn token_endpoint() -> (String, Arc<AtomicUsize>) {
    use axum::http::{HeaderMap, StatusCode};
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = axum::Router::new().route(
        "/token",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let counter = counter.clone();
            async move {
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                // "client id" / "s3cr%t" form-urlencoded, then Basic (RFC 6749 §2.3.1).
                let expected = "Basic Y2xpZW50K2lkOnMzY3IlMjV0";
                let json = [(axum::http::header::CONTENT_TYPE, "application/json")];
                if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected)
                    || !body.contains("grant_type=client_credentials")
                {
                    return (
                        StatusCode::UNAUTHORIZED,
                        json,
                        r#"{"error":"invalid_client"}"#.to_string(),
                    );
                }
                (
                    StatusCode::OK,
                    json,
                    format!(
                        r#"{{"access_token":"tok{n}","token_type":"bearer","expires_in":3600}}"#
                    ),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/token"), hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth2_fetches_caches_and_refreshes_tokens() {
    let clock = ManualClock::new(1_700_000_000_000);
    let (plugins, _dir) = host_with(&config(), clock.clone());
    let (url, hits) = token_endpoint().await;
    let good = settings(&[
        ("token_url", &url),
        ("client_id", "client id"),
        ("client_secret", "s3cr%t"),
    ]);
    let auth = |settings: Settings, fresh: bool| {
        let plugins = plugins.clone();
        async move {
            plugins
                .authenticate(
                    "acme",
                    "oauth2",
                    request(b"{}"),
                    &context("dlv_1"),
                    &settings,
                    fresh,
                )
                .await
        }
    };

    let signed = auth(good.clone(), false).await.unwrap();
    assert_eq!(header(&signed, "authorization"), Some("Bearer tok1"));
    let cached = auth(good.clone(), false).await.unwrap();
    assert_eq!(header(&cached, "authorization"), Some("Bearer tok1"));
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    let fresh = auth(good.clone(), true).await.unwrap();
    assert_eq!(header(&fresh, "authorization"), Some("Bearer tok2"));

    // Just before expiry (an hour, less the refresh margin) a new token is fetched.
    clock.advance(Duration::from_secs(3600 - 59));
    let renewed = auth(good.clone(), false).await.unwrap();
    assert_eq!(header(&renewed, "authorization"), Some("Bearer tok3"));

    // Another tenant with the same client id but a wrong secret gets no cached token.
    let wrong = settings(&[
        ("token_url", &url),
        ("client_id", "client id"),
        ("client_secret", "guess"),
    ]);
    let error = auth(wrong, false).await.unwrap_err();
    assert!(
        matches!(&error, Error::Rejected(m) if m.contains("invalid_client")),
        "{error}"
    );
}

#[tokio::test]
async fn oauth2_refuses_internal_token_urls_unless_allowed() {
    let config = PluginsConfig {
        allow_private_token_urls: false,
        ..config()
    };
    let (plugins, _dir) = host_with(&config, Arc::new(SystemClock));
    let error = plugins
        .authenticate(
            "acme",
            "oauth2",
            request(b"{}"),
            &context("dlv_1"),
            &settings(&[
                ("token_url", "http://127.0.0.1:9/token"),
                ("client_id", "c"),
                ("client_secret", "s"),
            ]),
            false,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Rejected(m) if m.contains("internal address")),
        "{error}"
    );
}

#[test]
fn the_host_is_send_and_sync() {
    fn assert<T: Send + Sync + Clone + 'static>() {}
    assert::<Plugins>();
}
