//! The cost of one plugin call through the runtime (a warm sandboxed instance), next to
//! the same logic called natively from the plugin crates' rlibs.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use switchyard::clock::SystemClock;
use switchyard::plugins::{
    DeliveryContext, Event, OutgoingRequest, Plugins, PluginsConfig, Principal, Settings, Subject,
};

use crate::load::{TOPIC, payload};
use crate::scenarios::SECRET;

const TENANT: &str = "default";

/// One plugin entry point, measured both ways.
#[derive(Debug, Clone, Serialize)]
pub struct CallCost {
    /// `websub.authenticate`, `json.transform`, `scope-filter.allow`.
    pub call: String,
    /// Calls timed (after a warm-up).
    pub calls: u64,
    /// Mean µs per call through the plugin runtime.
    pub plugin_us: f64,
    /// Mean µs per call of the native Rust logic.
    pub native_us: f64,
}

fn settings(pairs: &[(&str, &str)]) -> Settings {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn event() -> Event {
    Event {
        id: "evt_0196a1b2c3d4".into(),
        tenant: TENANT.into(),
        topic: TOPIC.into(),
        occurred_at_ms: 1_764_400_000_000,
        subject: Some(Subject {
            kind: "user".into(),
            id: "usr_1".into(),
            attributes: vec![("org-unit".into(), "sales".into())],
        }),
        content_type: "application/json".into(),
        payload: payload(1).to_string().into_bytes(),
    }
}

fn sdk_event(event: &Event) -> switchyard_plugin_sdk::Event {
    switchyard_plugin_sdk::Event {
        id: event.id.clone(),
        tenant: event.tenant.clone(),
        topic: event.topic.clone(),
        occurred_at_ms: event.occurred_at_ms,
        subject: event
            .subject
            .as_ref()
            .map(|s| switchyard_plugin_sdk::Subject {
                kind: s.kind.clone(),
                id: s.id.clone(),
                attributes: s.attributes.clone(),
            }),
        content_type: event.content_type.clone(),
        payload: event.payload.clone(),
    }
}

fn per_call_us(started: Instant, calls: u64) -> f64 {
    started.elapsed().as_secs_f64() * 1e6 / calls.max(1) as f64
}

/// Measures `calls` calls of each entry point (after `calls / 10` warm-up calls), with
/// the runtime's default settings and the built-ins' precompiled cache in `cache_dir`.
pub async fn plugin_calls(cache_dir: &Path, calls: u64) -> anyhow::Result<Vec<CallCost>> {
    let data = tempfile::tempdir()?;
    let config = PluginsConfig {
        cache_dir: Some(cache_dir.to_owned()),
        ..PluginsConfig::default()
    };
    let data_dir = data.path().to_owned();
    let plugins = tokio::task::spawn_blocking(move || {
        Plugins::new(&config, Arc::new(SystemClock), &data_dir)
    })
    .await??;
    let warmup = (calls / 10).max(10);
    let event = event();
    let sdk_event = sdk_event(&event);

    // websub.authenticate
    let request = OutgoingRequest {
        method: "POST".into(),
        url: "http://127.0.0.1:9/hook".into(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: event.payload.clone(),
    };
    let context = DeliveryContext {
        delivery_id: "dlv_0196a1b2c3d4".into(),
        event_id: event.id.clone(),
        topic: TOPIC.into(),
        attempt: 1,
    };
    let websub = settings(&[("secret", SECRET), ("algorithm", "sha256")]);
    let mut plugin_us = 0.0;
    for (round, n) in [(0, warmup), (1, calls)] {
        let started = Instant::now();
        for _ in 0..n {
            let signed = plugins
                .authenticate(TENANT, "websub", request.clone(), &context, &websub, false)
                .await?;
            black_box(signed);
        }
        if round == 1 {
            plugin_us = per_call_us(started, n);
        }
    }
    let started = Instant::now();
    for _ in 0..calls {
        let mut signed = black_box(request.clone());
        let value = switchyard_plugin_websub::signature(
            switchyard_plugin_websub::Algorithm::Sha256,
            black_box(SECRET.as_bytes()),
            &signed.body,
        );
        signed.headers.push(("X-Hub-Signature".into(), value));
        black_box(signed);
    }
    let mut costs = vec![CallCost {
        call: "websub.authenticate".into(),
        calls,
        plugin_us,
        native_us: per_call_us(started, calls),
    }];

    // json.transform, with the envelope so there is work to do.
    let envelope = settings(&[("envelope", "true")]);
    for (round, n) in [(0, warmup), (1, calls)] {
        let started = Instant::now();
        for _ in 0..n {
            black_box(plugins.transform(TENANT, "json", &event, &envelope).await?);
        }
        if round == 1 {
            plugin_us = per_call_us(started, n);
        }
    }
    let started = Instant::now();
    for _ in 0..calls {
        let body = switchyard_plugin_json::envelope(black_box(&sdk_event))
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        black_box(body);
    }
    costs.push(CallCost {
        call: "json.transform (envelope)".into(),
        calls,
        plugin_us,
        native_us: per_call_us(started, calls),
    });

    // scope-filter.allow
    let principal = Principal {
        id: "acc_1".into(),
        permissions: vec!["cases.read".into()],
        scopes: vec![("org-unit".into(), vec!["sales".into(), "support".into()])],
    };
    let sdk_principal = switchyard_plugin_sdk::Principal {
        id: principal.id.clone(),
        permissions: principal.permissions.clone(),
        scopes: principal.scopes.clone(),
    };
    let none = Settings::new();
    for (round, n) in [(0, warmup), (1, calls)] {
        let started = Instant::now();
        for _ in 0..n {
            let allowed = plugins
                .allow(TENANT, "scope-filter", &event, &principal, &none)
                .await?;
            anyhow::ensure!(allowed, "scope-filter refused the bench event");
        }
        if round == 1 {
            plugin_us = per_call_us(started, n);
        }
    }
    let started = Instant::now();
    for _ in 0..calls {
        black_box(switchyard_plugin_scope_filter::allow(
            black_box(&sdk_event),
            black_box(&sdk_principal),
            None,
        ));
    }
    costs.push(CallCost {
        call: "scope-filter.allow".into(),
        calls,
        plugin_us,
        native_us: per_call_us(started, calls),
    });
    Ok(costs)
}
