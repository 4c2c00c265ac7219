use axum::Json;
use axum::extract::State;

use super::error::ErrorBody;
use super::extract::Authenticated;
use crate::app::App;
use crate::domain::topics::Topic;
use crate::service::events;

/// `GET /topics`: the topic catalog.
#[utoipa::path(
    get,
    path = "/t/{tenant}/v1/topics",
    tag = "Topics",
    summary = "The topic catalog with descriptions",
    params(("tenant" = String, Path, description = "The tenant name")),
    responses((status = 200, description = "Every topic", body = Vec<Topic>), (status = 401, description = "Missing, expired or other-tenant access token", body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn list(State(app): State<App>, _caller: Authenticated) -> Json<Vec<Topic>> {
    Json(events::catalog(&app))
}
