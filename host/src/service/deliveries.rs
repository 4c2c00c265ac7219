//! The webhook log: listing, reading and resending deliveries.

use super::{Error, Result};
use crate::app::App;
use crate::domain::{Delivery, DeliveryStatus};
use crate::store::DeliveryQuery;

/// The most rows one page holds.
pub const MAX_PAGE: usize = 500;

/// A page of the tenant's deliveries, newest first.
pub async fn list(app: &App, tenant: &str, mut query: DeliveryQuery) -> Result<Vec<Delivery>> {
    query.limit = query.limit.clamp(1, MAX_PAGE);
    if let Some(receiver) = &query.receiver {
        let (t, r) = (tenant.to_owned(), receiver.clone());
        if app.blocking(move |s| s.receiver(&t, &r)).await?.is_none() {
            return Err(Error::NotFound(format!("receiver {receiver}")));
        }
    }
    let t = tenant.to_owned();
    Ok(app.blocking(move |s| s.deliveries(&t, &query)).await?)
}

/// One delivery with its body and every attempt. A fresh one whose first attempt has
/// not ended is not stored yet: it is shown as it was handed to the worker.
pub async fn get(app: &App, tenant: &str, id: &str) -> Result<Delivery> {
    // The worker's first, then the store: one stored meanwhile is found in the store.
    match app.dispatch.unlogged(tenant, id) {
        Some(sending) => Ok(sending),
        None => stored(app, tenant, id).await,
    }
}

async fn stored(app: &App, tenant: &str, id: &str) -> Result<Delivery> {
    let (t, i) = (tenant.to_owned(), id.to_owned());
    app.blocking(move |s| s.delivery(&t, &i))
        .await?
        .ok_or_else(|| Error::NotFound(format!("delivery {id}")))
}

/// Sends a delivery again now, whatever its status, unless its receiver was removed or
/// its first attempt is still under way. The retry schedule starts over; the attempts so
/// far stay in the log.
pub async fn resend(app: &App, tenant: &str, id: &str) -> Result<Delivery> {
    if app.dispatch.unlogged(tenant, id).is_some() {
        return Err(Error::Conflict(format!(
            "delivery {id} is being sent; resend it once its first attempt has ended"
        )));
    }
    let mut delivery = stored(app, tenant, id).await?;
    let (t, r) = (tenant.to_owned(), delivery.receiver.clone());
    let receiver = app.blocking(move |s| s.receiver(&t, &r)).await?;
    if !receiver.is_some_and(|r| r.is_live()) {
        return Err(Error::Conflict(format!(
            "delivery {id} cannot be resent: its receiver was removed"
        )));
    }
    delivery.status = DeliveryStatus::Pending;
    delivery.next_attempt_at = Some(app.now());
    delivery.error = None;
    let stored = delivery.clone();
    app.blocking(move |s| s.requeue(&stored)).await?;
    app.commit.flush().await?;
    app.deliveries_ready.notify_one();
    Ok(delivery)
}
