use axum::Json;
use axum::extract::State;

use super::error::ApiError;
use super::error::ErrorBody;
use super::extract::{ApiAccountsManage, Authorized};
use crate::app::App;
use crate::domain::AuditEntry;

/// `GET /audit`: actions taken by impersonation, newest first.
#[utoipa::path(
    get,
    path = "/t/{tenant}/v1/audit",
    tag = "Audit",
    summary = "Actions taken by impersonation, newest first (at most 500)",
    params(("tenant" = String, Path, description = "The tenant name")),
    responses((status = 200, description = "The audit entries", body = Vec<AuditEntry>), (status = 401, description = "Missing, expired or other-tenant access token", body = ErrorBody), (status = 403, description = "The caller lacks the permission", body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn list(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<ApiAccountsManage>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    let tenant = caller.tenant.clone();
    Ok(Json(app.blocking(move |s| s.audit(&tenant, 500)).await?))
}
