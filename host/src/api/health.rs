use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::app::App;

/// Liveness: the process answers.
pub async fn live() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: the store answers and the router and delivery worker run.
pub async fn ready(State(app): State<App>) -> (StatusCode, Json<Value>) {
    let store = app.blocking(|s| s.tenants().is_ok()).await;
    let worker = app.running.worker.load(Ordering::SeqCst);
    let router = app.running.router.load(Ordering::SeqCst);
    let ok = store && worker && router;
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "status": if ok { "ready" } else { "not_ready" },
            "store": store,
            "router": router,
            "worker": worker,
        })),
    )
}
