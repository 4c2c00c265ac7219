use axum::Json;
use axum::extract::State;

use super::extract::Authenticated;
use crate::app::App;
use crate::domain::topics::Topic;
use crate::service::events;

/// `GET /topics`: the topic catalog.
pub async fn list(State(app): State<App>, _caller: Authenticated) -> Json<Vec<Topic>> {
    Json(events::catalog(&app))
}
