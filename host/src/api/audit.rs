use axum::Json;
use axum::extract::State;

use super::error::ApiError;
use super::extract::{ApiAccountsManage, Authorized};
use crate::app::App;
use crate::domain::AuditEntry;

/// `GET /audit`: actions taken by impersonation, newest first.
pub async fn list(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<ApiAccountsManage>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    let tenant = caller.tenant.clone();
    Ok(Json(app.blocking(move |s| s.audit(&tenant, 500)).await?))
}
