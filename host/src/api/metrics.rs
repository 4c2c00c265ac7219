use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::app::App;

/// `GET /metrics`: Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "Health", summary = "Counters, histograms and gauges in the Prometheus text format",
    responses((status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain")))]
pub async fn render(State(app): State<App>) -> impl IntoResponse {
    let queued = app.blocking(|s| s.queued()).await.unwrap_or(0);
    let stats = app.plugins.stats();
    let plugin = [
        ("compiled_total", stats.compiled),
        ("cache_hits_total", stats.cache_hits),
        ("instances_created_total", stats.instantiated),
        ("warm_calls_total", stats.warm_calls),
    ];
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(queued, &plugin),
    )
}
