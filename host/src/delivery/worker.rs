//! The delivery worker: takes due deliveries off the queue, re-checks authorization,
//! authenticates through the receiver's protocol plugin, sends, logs the attempt and
//! schedules the next one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::{HttpClient, retry};
use crate::app::App;
use crate::domain::{Attempt, Delivery, DeliveryStatus, Receiver};
use crate::plugins::{DeliveryContext, OutgoingRequest};
use crate::router;
use crate::store::DueDelivery;

/// How long a delivery waits when its receiver already has its share of attempts in flight.
const DEFER: Duration = Duration::from_secs(1);

/// Attempts in flight per receiver, so one slow receiver cannot take every slot.
#[derive(Debug, Default)]
struct ReceiverSlots {
    busy: Mutex<HashMap<String, usize>>,
}

/// One attempt's hold on its receiver's share; released on drop.
struct Slot<'a> {
    slots: &'a ReceiverSlots,
    receiver: String,
}

impl ReceiverSlots {
    fn take(&self, receiver: &str, limit: usize) -> Option<Slot<'_>> {
        let mut busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        let count = busy.entry(receiver.to_owned()).or_default();
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(Slot {
            slots: self,
            receiver: receiver.to_owned(),
        })
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut busy = self.slots.busy.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = busy.get_mut(&self.receiver) {
            *count -= 1;
            if *count == 0 {
                busy.remove(&self.receiver);
            }
        }
    }
}

/// Runs until `shutdown` turns true, then lets attempts in flight finish.
pub async fn run(app: App, client: HttpClient, mut shutdown: watch::Receiver<bool>) {
    let now = app.now();
    match app.blocking(move |s| s.recover_in_flight(now)).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(count = n, "requeued deliveries left in flight by a crash"),
        Err(e) => tracing::error!(error = %e, "cannot requeue deliveries left in flight"),
    }
    let slots = Arc::new(Semaphore::new(app.config.delivery.concurrency));
    let receivers = Arc::new(ReceiverSlots::default());
    let mut running = JoinSet::new();
    loop {
        while running.try_join_next().is_some() {}
        let free = slots.available_permits();
        let now = app.now();
        let due = if free == 0 {
            Ok(Vec::new())
        } else {
            app.blocking(move |s| s.claim_due(now, free)).await
        };
        let due = match due {
            Ok(due) => due,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the delivery queue; retrying in a second");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        let claimed = due.len();
        for item in due {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return;
            };
            let (app, client, receivers) = (app.clone(), client.clone(), receivers.clone());
            running.spawn(async move {
                attempt(&app, &client, &receivers, item).await;
                drop(permit);
                // A freed slot may let the loop claim more.
                app.deliveries_ready.notify_one();
            });
        }
        if claimed > 0 && claimed == free {
            continue;
        }
        let next_due = app.blocking(|s| s.next_due()).await.ok().flatten();
        let sleep = match next_due {
            Some(due) => app.clock.sleep_until(due.ms()),
            None => Box::pin(std::future::pending()),
        };
        tokio::select! {
            () = app.deliveries_ready.notified() => {}
            () = sleep => {}
            _ = shutdown.changed() => break,
        }
    }
    // Graceful shutdown: attempts in flight get a grace period to finish; the rest stay
    // marked in flight and are queued again at the next start.
    let grace = app.config.delivery.shutdown_grace;
    let finished = tokio::time::timeout(grace, async {
        while running.join_next().await.is_some() {}
    })
    .await;
    if finished.is_err() {
        tracing::warn!(
            left = running.len(),
            "attempts still in flight at shutdown; they will be retried after the restart"
        );
        running.abort_all();
    }
}

/// What one attempt came to.
enum Outcome {
    /// Ended without sending: the delivery can no longer go out.
    Final(DeliveryStatus, String),
    /// Sent (or tried to): the receiver's answer, or why there was none.
    Tried(Attempt),
}

async fn attempt(app: &App, client: &HttpClient, receivers: &ReceiverSlots, due: DueDelivery) {
    let (tenant, id) = (due.tenant.clone(), due.delivery.clone());
    let loaded = app
        .blocking(move |s| {
            let Some(delivery) = s.delivery(&tenant, &id)? else {
                return Ok(None);
            };
            let receiver = s.receiver(&tenant, &delivery.receiver)?;
            Ok::<_, crate::store::Error>(Some((delivery, receiver)))
        })
        .await;
    let (mut delivery, receiver) = match loaded {
        Ok(Some(found)) => found,
        Ok(None) => return,
        Err(e) => {
            tracing::error!(delivery = %due.delivery, error = %e, "cannot load delivery");
            return;
        }
    };
    let limit = app.config.delivery.per_receiver_concurrency;
    let Some(_slot) = receivers.take(&delivery.receiver, limit) else {
        // Its receiver is busy: try again shortly, without counting an attempt.
        delivery.next_attempt_at = Some(app.now().after(DEFER));
        if let Err(e) = app.blocking(move |s| s.finish_attempt(&delivery)).await {
            tracing::error!(error = %e, "cannot defer a delivery");
        }
        return;
    };
    let span = tracing::info_span!("attempt", delivery = %delivery.id, event = %delivery.event, receiver = %delivery.receiver);
    let _enter = span.enter();

    let outcome = match receiver.filter(Receiver::is_live) {
        None => Outcome::Final(DeliveryStatus::Failed, "the receiver was removed".into()),
        Some(receiver) => send(app, client, &delivery, &receiver).await,
    };
    let mut unsubscribe = false;
    match outcome {
        Outcome::Final(status, why) => {
            app.metrics.attempt(status, None);
            tracing::info!(?status, reason = %why, "delivery ended without sending");
            delivery.status = status;
            delivery.error = Some(why);
            delivery.next_attempt_at = None;
        }
        Outcome::Tried(attempt) => {
            delivery.status_code = attempt.status_code;
            delivery.error = attempt.error.clone();
            let last = attempt.at;
            let last_duration_ms = attempt.duration_ms;
            delivery.attempts.push(attempt);
            match delivery.status_code {
                Some(200..=299) => {
                    delivery.status = DeliveryStatus::Delivered;
                    delivery.next_attempt_at = None;
                }
                Some(410) => {
                    delivery.status = DeliveryStatus::Gone;
                    delivery.next_attempt_at = None;
                    unsubscribe = true;
                }
                _ => {
                    let schedule = &app.config.delivery.retry_schedule;
                    delivery.next_attempt_at =
                        retry::next_attempt(schedule, delivery.attempts.len(), last);
                    delivery.status = if delivery.next_attempt_at.is_some() {
                        DeliveryStatus::Retrying
                    } else {
                        DeliveryStatus::Failed
                    };
                }
            }
            app.metrics
                .attempt(delivery.status, Some(last_duration_ms as f64 / 1000.0));
            tracing::info!(status = ?delivery.status, code = ?delivery.status_code, "attempt logged");
        }
    }
    let now = app.now();
    let saved = app
        .blocking(move |s| {
            s.finish_attempt(&delivery)?;
            if unsubscribe
                && let Some(mut r) = s.receiver(&delivery.tenant, &delivery.receiver)?
                && r.is_live()
            {
                r.deleted_at = Some(now);
                r.deleted_reason = Some("the receiver answered 410 Gone".into());
                s.put_receiver(&r)?;
            }
            Ok::<_, crate::store::Error>(())
        })
        .await;
    if let Err(e) = saved {
        tracing::error!(error = %e, "cannot save the attempt; it will be retried after a restart");
    }
}

async fn send(app: &App, client: &HttpClient, delivery: &Delivery, receiver: &Receiver) -> Outcome {
    let (tenant, event_id, account_id) = (
        delivery.tenant.clone(),
        delivery.event.clone(),
        receiver.api_account.clone(),
    );
    let loaded = app
        .blocking(move |s| {
            Ok::<_, crate::store::Error>((
                s.event(&tenant, &event_id)?,
                s.api_account(&tenant, &account_id)?,
            ))
        })
        .await;
    let started = app.now();
    let failed_attempt = |error: String| Attempt {
        at: started,
        status_code: None,
        duration_ms: 0,
        error: Some(error),
    };
    let (event, account) = match loaded {
        Ok(found) => found,
        Err(e) => return Outcome::Tried(failed_attempt(format!("storage: {e}"))),
    };
    let Some(event) = event else {
        return Outcome::Final(DeliveryStatus::Failed, "the event no longer exists".into());
    };
    let Some(account) = account.filter(|a| !a.disabled) else {
        return Outcome::Final(
            DeliveryStatus::Unauthorized,
            "the receiver's API account is disabled or gone".into(),
        );
    };
    // Authorization is checked again at send time: scopes may have changed since fan-out.
    match router::authorize(app, receiver, &account, &router::to_plugin_event(&event)).await {
        Ok(true) => {}
        Ok(false) => {
            return Outcome::Final(
                DeliveryStatus::Unauthorized,
                format!("API account {} may not see this event", account.id),
            );
        }
        Err(e) => {
            app.metrics.plugin_failed();
            return Outcome::Tried(failed_attempt(format!("authorization filter: {e}")));
        }
    }

    let context = DeliveryContext {
        delivery_id: delivery.id.clone(),
        event_id: delivery.event.clone(),
        topic: delivery.topic.clone(),
        attempt: delivery.attempts.len() as u32 + 1,
    };
    let request = OutgoingRequest {
        method: "POST".into(),
        url: receiver.url.clone(),
        headers: vec![
            ("content-type".into(), delivery.content_type.clone()),
            ("webhook-id".into(), delivery.id.clone()),
            ("x-switchyard-topic".into(), delivery.topic.clone()),
        ],
        body: delivery.request_body.clone().into_bytes(),
    };
    let clock = Instant::now();
    let mut fresh_tokens = false;
    loop {
        let call = app.plugins.authenticate(
            &receiver.tenant,
            &receiver.auth.plugin,
            request.clone(),
            &context,
            &receiver.auth.settings,
            fresh_tokens,
        );
        let authenticated = app.metrics.time_plugin(call).await;
        let request = match authenticated {
            Ok(r) => r,
            Err(e) => {
                app.metrics.plugin_failed();
                let mut a = failed_attempt(format!("auth protocol {}: {e}", receiver.auth.plugin));
                a.duration_ms = clock.elapsed().as_millis() as u64;
                return Outcome::Tried(a);
            }
        };
        let answer = client.send(request).await;
        // A 401 may mean a cached OAuth2 token was revoked early: one fresh token, one retry.
        if matches!(&answer, Ok(a) if a.status == 401)
            && !fresh_tokens
            && receiver.auth.plugin == "oauth2"
        {
            fresh_tokens = true;
            continue;
        }
        let duration_ms = clock.elapsed().as_millis() as u64;
        return Outcome::Tried(match answer {
            Ok(a) => Attempt {
                at: started,
                status_code: Some(a.status),
                duration_ms,
                error: (!(200..300).contains(&a.status))
                    .then(|| format!("the receiver answered {}", a.status)),
            },
            Err(error) => Attempt {
                at: started,
                status_code: None,
                duration_ms,
                error: Some(error),
            },
        });
    }
}
