use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use serde::Deserialize;

use super::error::ApiError;
use super::error::ErrorBody;
use super::extract::{ApiQuery, Authorized, WebhooksManage};
use crate::app::App;
use crate::domain::{Delivery, DeliveryStatus};
use crate::service::deliveries;
use crate::store::DeliveryQuery;

/// Filters and paging of the webhook log.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// Only this topic, e.g. `Accounts.Update`.
    topic: Option<String>,
    /// Only this status: pending, delivered, retrying, failed, unauthorized or gone.
    #[param(value_type = Option<DeliveryStatus>)]
    status: Option<String>,
    /// Only deliveries older than this id (the last id of the previous page).
    before: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500, default = 50)]
    limit: Option<usize>,
}

impl LogQuery {
    fn into_query(self, receiver: Option<String>) -> Result<DeliveryQuery, ApiError> {
        let status = match self.status.as_deref() {
            None => None,
            Some(s) => Some(DeliveryStatus::parse(s).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "unknown status {s:?}; one of pending, delivered, retrying, failed, unauthorized, gone"
                ))
            })?),
        };
        let limit = self.limit.unwrap_or(50);
        if !(1..=deliveries::MAX_PAGE).contains(&limit) {
            return Err(ApiError::bad_request(format!(
                "limit must be 1 to {}",
                deliveries::MAX_PAGE
            )));
        }
        Ok(DeliveryQuery {
            receiver,
            topic: self.topic,
            status,
            before: self.before,
            limit,
        })
    }
}

type Page = (HeaderMap, Json<Vec<Delivery>>);

fn page(app: &App, tenant: &str, path: &str, rows: Vec<Delivery>, limit: usize) -> Page {
    let mut headers = HeaderMap::new();
    if let Some(last) = rows.last().filter(|_| rows.len() >= limit) {
        let next = format!(
            "<{}{path}?before={}&limit={limit}>; rel=\"next\"",
            app.config.base_url(tenant),
            last.id
        );
        if let Ok(value) = HeaderValue::from_str(&next) {
            headers.insert(header::LINK, value);
        }
    }
    (headers, Json(rows))
}

/// `GET /deliveries`: the tenant's webhook log, newest first.
#[utoipa::path(
    get,
    path = "/t/{tenant}/v1/deliveries",
    tag = "Webhook log",
    summary = "The webhook log, newest first",
    params(("tenant" = String, Path, description = "The tenant name"), LogQuery),
    responses((status = 200, description = "One page of deliveries", body = Vec<Delivery>, headers(("Link" = String, description = "`<…?before=<last id>&limit=N>; rel=\"next\"` when a further page may exist"))), (status = 400, description = "Malformed request", body = ErrorBody), (status = 401, description = "Missing, expired or other-tenant access token", body = ErrorBody), (status = 403, description = "The caller lacks the permission", body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn list(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<WebhooksManage>,
    ApiQuery(q): ApiQuery<LogQuery>,
) -> Result<Page, ApiError> {
    let query = q.into_query(None)?;
    let limit = query.limit;
    let rows = deliveries::list(&app, &caller.tenant, query).await?;
    Ok(page(&app, &caller.tenant, "/deliveries", rows, limit))
}

/// `GET /receivers/{id}/deliveries`: one receiver's log, removed receivers included.
#[utoipa::path(
    get,
    path = "/t/{tenant}/v1/receivers/{id}/deliveries",
    tag = "Webhook log",
    summary = "One receiver's webhook log, newest first (removed receivers too)",
    params(("tenant" = String, Path, description = "The tenant name"), ("id" = String, Path, description = "The resource id"), LogQuery),
    responses((status = 200, description = "One page of deliveries", body = Vec<Delivery>, headers(("Link" = String, description = "Next page, as for /deliveries"))), (status = 400, description = "Malformed request", body = ErrorBody), (status = 401, description = "Missing, expired or other-tenant access token", body = ErrorBody), (status = 403, description = "The caller lacks the permission", body = ErrorBody), (status = 404, description = "No such receiver in this tenant", body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn for_receiver(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<WebhooksManage>,
    Path((_, id)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<LogQuery>,
) -> Result<Page, ApiError> {
    let query = q.into_query(Some(id.clone()))?;
    let limit = query.limit;
    let rows = deliveries::list(&app, &caller.tenant, query).await?;
    Ok(page(
        &app,
        &caller.tenant,
        &format!("/receivers/{id}/deliveries"),
        rows,
        limit,
    ))
}

/// `GET /deliveries/{id}`: with the request body and every attempt.
#[utoipa::path(
    get,
    path = "/t/{tenant}/v1/deliveries/{id}",
    tag = "Webhook log",
    summary = "One delivery with its request body and every attempt",
    params(("tenant" = String, Path, description = "The tenant name"), ("id" = String, Path, description = "The resource id")),
    responses((status = 200, description = "The delivery; one whose first attempt is still under way shows as `pending`, with no attempt yet", body = Delivery), (status = 401, description = "Missing, expired or other-tenant access token", body = ErrorBody), (status = 403, description = "The caller lacks the permission", body = ErrorBody), (status = 404, description = "No such resource in this tenant", body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<WebhooksManage>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Delivery>, ApiError> {
    Ok(Json(deliveries::get(&app, &caller.tenant, &id).await?))
}

/// `POST /deliveries/{id}/resend`: send again now.
#[utoipa::path(
    post,
    path = "/t/{tenant}/v1/deliveries/{id}/resend",
    tag = "Webhook log",
    summary = "Send a delivery again now",
    params(("tenant" = String, Path, description = "The tenant name"), ("id" = String, Path, description = "The resource id")),
    responses((status = 202, description = "Queued for sending", body = Delivery), (status = 401, description = "Missing, expired or other-tenant access token", body = ErrorBody), (status = 403, description = "The caller lacks the permission", body = ErrorBody), (status = 404, description = "No such resource in this tenant", body = ErrorBody), (status = 409, description = "The receiver was removed, or the delivery's first attempt is still under way", body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn resend(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<WebhooksManage>,
    Path((_, id)): Path<(String, String)>,
) -> Result<(axum::http::StatusCode, Json<Delivery>), ApiError> {
    let d = deliveries::resend(&app, &caller.tenant, &id).await?;
    Ok((axum::http::StatusCode::ACCEPTED, Json(d)))
}
