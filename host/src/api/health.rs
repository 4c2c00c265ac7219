use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::openapi::Health;
use crate::app::App;

/// Liveness: the process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "Health",
    summary = "Liveness",
    responses((status = 200, description = "The process answers", body = Health))
)]
pub async fn live() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: the store answers and the router and delivery worker run.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "Health",
    summary = "Readiness: store open, router and delivery worker running",
    responses((status = 200, description = "Ready", body = Health), (status = 503, description = "Not ready", body = Health))
)]
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
