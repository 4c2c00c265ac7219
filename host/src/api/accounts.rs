use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::error::ApiError;
use super::extract::{AccountsRead, AccountsWrite, ApiJson, Authorized};
use crate::app::App;
use crate::service::accounts::{self, NewUser, UserPatch, UserView};

/// `GET /accounts`: the users inside the caller's data scope.
pub async fn list(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<AccountsRead>,
) -> Result<Json<Vec<UserView>>, ApiError> {
    Ok(Json(accounts::list(&app, &caller).await?))
}

/// `POST /accounts`.
pub async fn create(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<AccountsWrite>,
    ApiJson(new): ApiJson<NewUser>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(accounts::create(&app, &caller, new).await?),
    ))
}

/// `GET /accounts/{id}`.
pub async fn get(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<AccountsRead>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<UserView>, ApiError> {
    Ok(Json(UserView::from(
        &accounts::get(&app, &caller, &id).await?,
    )))
}

/// `PATCH /accounts/{id}`.
pub async fn update(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<AccountsWrite>,
    Path((_, id)): Path<(String, String)>,
    ApiJson(patch): ApiJson<UserPatch>,
) -> Result<Json<UserView>, ApiError> {
    Ok(Json(accounts::update(&app, &caller, &id, patch).await?))
}

/// `DELETE /accounts/{id}`.
pub async fn delete(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<AccountsWrite>,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    accounts::delete(&app, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
