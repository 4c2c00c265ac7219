use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use serde::Deserialize;

use super::error::ApiError;
use super::extract::{Authorized, WebhooksManage};
use crate::app::App;
use crate::domain::{Delivery, DeliveryStatus};
use crate::service::deliveries;
use crate::store::DeliveryQuery;

/// Filters and paging of the webhook log.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    topic: Option<String>,
    status: Option<String>,
    /// Only deliveries older than this id (the last id of the previous page).
    before: Option<String>,
    /// Page size, 1 to 500 (default 50).
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
        Ok(DeliveryQuery {
            receiver,
            topic: self.topic,
            status,
            before: self.before,
            limit: self.limit.unwrap_or(50),
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
pub async fn list(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<WebhooksManage>,
    Query(q): Query<LogQuery>,
) -> Result<Page, ApiError> {
    let query = q.into_query(None)?;
    let limit = query.limit.clamp(1, deliveries::MAX_PAGE);
    let rows = deliveries::list(&app, &caller.tenant, query).await?;
    Ok(page(&app, &caller.tenant, "/deliveries", rows, limit))
}

/// `GET /receivers/{id}/deliveries`: one receiver's log, removed receivers included.
pub async fn for_receiver(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<WebhooksManage>,
    Path((_, id)): Path<(String, String)>,
    Query(q): Query<LogQuery>,
) -> Result<Page, ApiError> {
    let query = q.into_query(Some(id.clone()))?;
    let limit = query.limit.clamp(1, deliveries::MAX_PAGE);
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
pub async fn get(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<WebhooksManage>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Delivery>, ApiError> {
    Ok(Json(deliveries::get(&app, &caller.tenant, &id).await?))
}

/// `POST /deliveries/{id}/resend`: send again now.
pub async fn resend(
    State(app): State<App>,
    Authorized(caller, ..): Authorized<WebhooksManage>,
    Path((_, id)): Path<(String, String)>,
) -> Result<(axum::http::StatusCode, Json<Delivery>), ApiError> {
    let d = deliveries::resend(&app, &caller.tenant, &id).await?;
    Ok((axum::http::StatusCode::ACCEPTED, Json(d)))
}
