use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::error::ApiError;
use super::extract::{ApiAccountsManage, ApiJson, Authorized};
use crate::app::App;
use crate::service::api_accounts::{
    self, ApiAccountPatch, ApiAccountView, Created, NewApiAccount, Rotated,
};

/// `GET /api-accounts`.
pub async fn list(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<ApiAccountsManage>,
) -> Result<Json<Vec<ApiAccountView>>, ApiError> {
    Ok(Json(api_accounts::list(&app, &caller).await?))
}

/// `POST /api-accounts`: the token and TOTP secret are in this answer and never again.
pub async fn create(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<ApiAccountsManage>,
    ApiJson(new): ApiJson<NewApiAccount>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(api_accounts::create(&app, &caller, new).await?),
    ))
}

/// `GET /api-accounts/{id}`.
pub async fn get(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<ApiAccountsManage>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<ApiAccountView>, ApiError> {
    let account = api_accounts::get(&app, &caller, &id).await?;
    Ok(Json(ApiAccountView::from(&account)))
}

/// `PATCH /api-accounts/{id}`.
pub async fn update(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<ApiAccountsManage>,
    Path((_, id)): Path<(String, String)>,
    ApiJson(patch): ApiJson<ApiAccountPatch>,
) -> Result<Json<ApiAccountView>, ApiError> {
    Ok(Json(api_accounts::update(&app, &caller, &id, patch).await?))
}

/// `DELETE /api-accounts/{id}`.
pub async fn delete(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<ApiAccountsManage>,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    api_accounts::delete(&app, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api-accounts/{id}/rotate-token`.
pub async fn rotate_token(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<ApiAccountsManage>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Rotated>, ApiError> {
    Ok(Json(api_accounts::rotate_token(&app, &caller, &id).await?))
}

/// `POST /api-accounts/{id}/rotate-totp`.
pub async fn rotate_totp(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<ApiAccountsManage>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Rotated>, ApiError> {
    Ok(Json(api_accounts::rotate_totp(&app, &caller, &id).await?))
}
