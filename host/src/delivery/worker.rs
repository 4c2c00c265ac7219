//! The delivery worker: takes due deliveries off the queue, re-checks authorization,
//! authenticates through the receiver's protocol plugin, sends, logs the attempt and
//! schedules the next one.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

use super::ahead::{self, Claimed};
use super::dispatch::{Handoff, Parties, Slot};
use super::{HttpClient, retry};
use crate::app::App;
use crate::domain::{ApiAccount, Attempt, Delivery, DeliveryStatus, Event, Receiver, Timestamp};
use crate::plugins::{DeliveryContext, OutgoingRequest};
use crate::router;
use crate::store::{FanoutJob, Recorded, Store};

/// Runs until `shutdown` turns true, then lets attempts in flight finish.
pub async fn run(
    app: App,
    client: HttpClient,
    mut handoffs: mpsc::UnboundedReceiver<Handoff>,
    mut shutdown: watch::Receiver<bool>,
) {
    let now = app.now();
    match app.blocking(move |s| s.recover_in_flight(now)).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(count = n, "requeued deliveries left in flight by a crash"),
        Err(e) => tracing::error!(error = %e, "cannot requeue deliveries left in flight"),
    }
    let (recorder, finished) = mpsc::channel(RECORD_BATCH * 2);
    let recording = tokio::spawn(record(app.clone(), finished));
    let mut running = JoinSet::new();
    let mut claim = true;
    let mut sleep: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(std::future::pending());
    loop {
        while running.try_join_next().is_some() {}
        if claim {
            match claim_due(&app, &client, &recorder, &mut running).await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the delivery queue; retrying in a second");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
            let room = app.dispatch.room();
            let next_due = app
                .quick(|s| s.next_due(&|tenant, receiver| room.of(tenant, receiver)))
                .ok()
                .flatten();
            if room.outdated() {
                continue;
            }
            sleep = match next_due {
                Some(due) => app.clock.sleep_until(due.ms()),
                None => Box::pin(std::future::pending()),
            };
        }
        claim = tokio::select! {
            Some(handoff) = handoffs.recv() => {
                let mut batch = vec![handoff];
                while batch.len() < ATTEMPTS_PER_TASK
                    && let Ok(more) = handoffs.try_recv()
                {
                    batch.push(more);
                }
                let batch = batch.into_iter().map(|h| Start::handed_off(&app, h)).collect();
                running.spawn(attempts_together(app.clone(), client.clone(), recorder.clone(), batch));
                false
            }
            () = app.deliveries_ready.notified() => true,
            () = &mut sleep => true,
            _ = shutdown.changed() => break,
        };
    }
    // Graceful shutdown: attempts in flight get a grace period to finish; the rest stay
    // marked in flight and are queued again at the next start, as do the deliveries
    // claimed ahead and not started.
    let waiting = app.dispatch.ahead().close();
    if waiting > 0 {
        tracing::info!(
            count = waiting,
            "claimed deliveries not started; they will be queued again at the next start"
        );
    }
    let grace = app.config.delivery.shutdown_grace;
    let finished = tokio::time::timeout(grace, async {
        while running.join_next().await.is_some() {}
    })
    .await;
    if finished.is_err() {
        // Slots still taken: a task runs several attempts.
        let left = app.dispatch.capacity().saturating_sub(app.dispatch.free());
        tracing::warn!(
            left,
            "attempts still in flight at shutdown; they will be retried after the restart"
        );
        running.abort_all();
        while running.join_next().await.is_some() {}
    }
    // Store what finished before stopping.
    drop(recorder);
    let _ = recording.await;
}

/// Attempts started in one task, at most: a hand-off and those already waiting behind
/// it (usually the receivers of one event), or a share of what the queue handed out.
const ATTEMPTS_PER_TASK: usize = 16;

/// An attempt to start: the delivery, its fan-out job if it is fresh, its parties (`None`
/// when they could not be read: the stuck-delivery check queues it again), its slot.
struct Start {
    delivery: Delivery,
    job: Option<FanoutJob>,
    parties: Option<Parties>,
    slot: Slot,
}

impl Start {
    /// A claimed delivery to attempt on `slot`; counted as running on its receiver, so
    /// that successors may wait behind it.
    fn claimed(app: &App, (delivery, parties): Claimed, slot: Slot) -> Self {
        app.dispatch.ahead().started(slot.lane());
        Self {
            delivery,
            job: None,
            parties,
            slot,
        }
    }

    /// A fresh delivery from fan-out, likewise counted.
    fn handed_off(app: &App, handoff: Handoff) -> Self {
        app.dispatch.ahead().started(handoff.slot.lane());
        Self {
            delivery: handoff.delivery,
            job: Some(handoff.job),
            parties: Some(handoff.parties),
            slot: handoff.slot,
        }
    }
}

/// Runs attempts side by side in one task. A task per attempt cost about 7 % more host
/// CPU per event with 10 receivers, in spawning, scheduling and joining, and in one
/// event's attempts running on both cores (docs/performance-history.md, Round 12). Each
/// attempt, as soon as it ends, hands its slot to the successor waiting behind it (see
/// [`super::Ahead`]), or frees it.
async fn attempts_together(app: App, client: HttpClient, recorder: Recorder, batch: Vec<Start>) {
    let (app, client, recorder) = (&app, &client, &recorder);
    let mut attempts: FuturesUnordered<_> = batch
        .into_iter()
        .map(|start| async move {
            let Start {
                delivery,
                job,
                parties,
                slot,
            } = start;
            let mut next = Some((delivery, job, parties));
            while let Some((delivery, job, parties)) = next.take() {
                if let Some(parties) = parties {
                    attempt(app, client, recorder, delivery, job, parties).await;
                }
                next = app
                    .dispatch
                    .ahead()
                    .ended(slot.lane())
                    .map(|(successor, parties)| {
                        // Room behind this slot again: the worker claims the next one.
                        app.deliveries_ready.notify_one();
                        (successor, None, parties)
                    });
            }
            drop(slot);
            freed(app);
        })
        .collect();
    while attempts.next().await.is_some() {}
}

/// Claims what is due and has room and starts its attempts; true when it took all it
/// could, so there may be more. While some slots are free, it also claims successors
/// for the attempts running (see [`super::Ahead`]): with every slot taken, what waits
/// for one may be another receiver's delivery.
async fn claim_due(
    app: &App,
    client: &HttpClient,
    recorder: &Recorder,
    running: &mut JoinSet<()>,
) -> Result<bool, crate::store::Error> {
    let mut held = app.dispatch.hold_free();
    let free = held.len();
    let ahead = if free > 0 && reads_ahead(&app.config) {
        app.dispatch.ahead().room()
    } else {
        HashMap::new()
    };
    let limit = free + ahead.values().sum::<usize>();
    if limit == 0 {
        return Ok(false);
    }
    let (now, room) = (app.now(), app.dispatch.room());
    let (due, mut slots) = app
        .blocking(move |s| {
            // Each receiver gets slots out of those held, in the order the claim asks,
            // and successors on top.
            let (unoffered, slots) = (Cell::new(free), RefCell::new(HashMap::new()));
            let due = s.claim_due(now, limit, &|tenant, receiver| {
                let lane = ahead::lane(tenant, receiver);
                let offered = room.of(tenant, receiver).min(unoffered.get());
                unoffered.set(unoffered.get() - offered);
                let successors = ahead.get(&lane).copied().unwrap_or(0);
                slots.borrow_mut().insert(lane, offered);
                offered + successors
            })?;
            let parties = load_parties(s, &due);
            let due: Vec<Claimed> = due.into_iter().zip(parties).collect();
            Ok::<_, crate::store::Error>((due, slots.into_inner()))
        })
        .await?;
    let full = due.len() == limit;
    if full {
        app.dispatch.mark_starved();
    }
    let mut starts = Vec::new();
    let mut unplaced = Vec::new();
    for claimed in due {
        let lane = ahead::lane_of(&claimed.0);
        match slots.get_mut(&lane).filter(|left| **left > 0) {
            Some(left) => {
                *left -= 1;
                let permit = held.take().expect("no more slots offered than held");
                let slot = app.dispatch.slot(permit, &claimed.0);
                starts.push(Start::claimed(app, claimed, slot));
            }
            None => {
                unplaced.extend(app.dispatch.ahead().wait(&lane, claimed));
            }
        }
    }
    drop(held);
    // Successors whose receiver's attempts all ended meanwhile, leaving their slots.
    let mut release = Vec::new();
    for claimed in unplaced {
        match app.dispatch.reserve(&claimed.0.tenant, &claimed.0.receiver) {
            Some(slot) => starts.push(Start::claimed(app, claimed, slot)),
            None => release.push(claimed.0),
        }
    }
    let mut starts = starts.into_iter();
    loop {
        let batch: Vec<Start> = starts.by_ref().take(ATTEMPTS_PER_TASK).collect();
        if batch.is_empty() {
            break;
        }
        running.spawn(attempts_together(
            app.clone(),
            client.clone(),
            recorder.clone(),
            batch,
        ));
    }
    if !release.is_empty() {
        let count = release.len();
        if let Err(e) = app.blocking(move |s| s.release_claimed(&release)).await {
            tracing::error!(count, error = %e, "cannot put claimed deliveries back on the queue; the stuck-delivery check will");
        }
    }
    Ok(full)
}

/// Whether successors may be claimed. Each is in flight in the store for up to two
/// attempts (the one it waits behind, and its own), which must end before the
/// stuck-delivery check would queue it again. An attempt sends at most twice (again
/// with fresh tokens after a 401), each send within `delivery.timeout`, and calls
/// plugins at most three times, each within `plugins.call_timeout`.
fn reads_ahead(config: &crate::config::Config) -> bool {
    let attempt = 2 * config.delivery.timeout + 3 * config.plugins.call_timeout;
    config.jobs.stuck_after >= 2 * attempt
}

/// An attempt ended: wake the worker if due work may be waiting for its slot.
fn freed(app: &App) {
    if app.dispatch.take_starved() {
        app.deliveries_ready.notify_one();
    }
}

/// Reads the receiver, API account and event of each claimed delivery, each one once
/// per batch (a backlog is mostly many deliveries to few receivers). `None` for a
/// delivery whose parties cannot be read; the stuck-delivery check queues it again.
fn load_parties(store: &dyn Store, due: &[Delivery]) -> Vec<Option<Parties>> {
    let mut receivers = HashMap::new();
    let mut accounts = HashMap::new();
    let mut events = HashMap::new();
    let mut load = |delivery: &Delivery| -> Result<Parties, crate::store::Error> {
        let tenant = &delivery.tenant;
        let receiver = once(&mut receivers, tenant, &delivery.receiver, |id| {
            store.receiver(tenant, id)
        })?;
        let account = match &receiver {
            Some(r) => once(&mut accounts, tenant, &r.api_account, |id| {
                store.api_account(tenant, id)
            })?,
            None => None,
        };
        let event = once(&mut events, tenant, &delivery.event, |id| {
            store.event(tenant, id)
        })?;
        Ok(Parties {
            receiver,
            account,
            event,
        })
    };
    due.iter()
        .map(|delivery| {
            load(delivery)
                .inspect_err(|e| tracing::error!(delivery = %delivery.id, error = %e, "cannot load the receiver; the stuck-delivery check will queue it again"))
                .ok()
        })
        .collect()
}

/// `load(id)`, read once per `cache`.
fn once<T>(
    cache: &mut HashMap<(String, String), Option<Arc<T>>>,
    tenant: &str,
    id: &str,
    load: impl FnOnce(&str) -> Result<Option<T>, crate::store::Error>,
) -> Result<Option<Arc<T>>, crate::store::Error> {
    let key = (tenant.to_owned(), id.to_owned());
    if let Some(found) = cache.get(&key) {
        return Ok(found.clone());
    }
    let found = load(id)?.map(Arc::new);
    cache.insert(key, found.clone());
    Ok(found)
}

/// What one attempt came to.
enum Outcome {
    /// Ended without sending: the delivery can no longer go out.
    Final(DeliveryStatus, String),
    /// Sent (or tried to): the receiver's answer, or why there was none.
    Tried(Attempt),
}

/// Where attempts send their outcomes.
type Recorder = mpsc::Sender<Finished>;

/// Runs an attempt of `delivery`: one claimed from the queue, or (with its `job`) one
/// fresh from fan-out.
async fn attempt(
    app: &App,
    client: &HttpClient,
    recorder: &Recorder,
    delivery: Delivery,
    job: Option<FanoutJob>,
    parties: Parties,
) {
    // At debug level only: with the log on at info, a span per webhook took 5–10 % of
    // the host's CPU (docs/performance-history.md, Round 11). The lines that matter name
    // the delivery themselves, and an auth protocol's log lines are tagged with it by the
    // plugin host.
    let span = tracing::debug_span!("attempt", delivery = %delivery.id, event = %delivery.event, receiver = %delivery.receiver);
    // Boxed: an attempt's future takes kilobytes, which its task would otherwise carry,
    // and copy as it is spawned, finished and joined.
    Box::pin(run_attempt(app, client, recorder, delivery, job, parties).instrument(span)).await;
}

async fn run_attempt(
    app: &App,
    client: &HttpClient,
    recorder: &Recorder,
    mut delivery: Delivery,
    job: Option<FanoutJob>,
    parties: Parties,
) {
    let outcome = match parties.receiver.as_ref().filter(|r| r.is_live()) {
        None => Outcome::Final(DeliveryStatus::Failed, "the receiver was removed".into()),
        Some(receiver) => {
            send(
                app,
                client,
                &delivery,
                receiver,
                parties.event,
                parties.account,
                job.is_none(),
            )
            .await
        }
    };
    let mut unsubscribe = false;
    match outcome {
        Outcome::Final(status, why) => {
            app.metrics.attempt(status, None);
            tracing::info!(delivery = %delivery.id, receiver = %delivery.receiver, ?status, reason = %why, "delivery ended without sending");
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
            // Every attempt is in the delivery log; the process log hears of those that
            // did not deliver, and of the rest only at debug level: a line per webhook, at
            // thousands a second, would drown what needs attention.
            if delivery.status == DeliveryStatus::Delivered {
                tracing::debug!(code = ?delivery.status_code, "delivered");
            } else {
                tracing::info!(delivery = %delivery.id, receiver = %delivery.receiver, status = ?delivery.status, code = ?delivery.status_code, error = ?delivery.error, "attempt did not deliver");
            }
        }
    }
    // The recorder is gone only at shutdown: a claimed delivery stays in flight in the
    // store and is queued again at the next start; a fresh one's job runs again.
    let _ = recorder
        .send(Finished {
            delivery,
            job,
            unsubscribe,
        })
        .await;
}

/// An attempt's outcome, for the recorder.
struct Finished {
    delivery: Delivery,
    /// The fan-out job of a fresh delivery, not stored yet.
    job: Option<FanoutJob>,
    /// The receiver answered 410 Gone.
    unsubscribe: bool,
}

/// Finished attempts most stored in one transaction.
const RECORD_BATCH: usize = 512;

/// How long a small batch of finished attempts waits for more. At a steady trickle each
/// attempt would otherwise cost a transaction of its own, and sled writes and syncs its
/// log buffer twice per transaction, whatever its size: at 1,000 events/s a 20 ms wait
/// took 5 % less host CPU per event than 5 ms. A delivery waiting here is found by its
/// id all the same (`Dispatch::unlogged`).
const RECORD_LINGER: Duration = Duration::from_millis(20);

/// Batches at least this large are stored without waiting.
const RECORD_LINGER_BELOW: usize = 32;

/// Stores finished attempts, all that finished meanwhile in one transaction, until every
/// sender is gone.
async fn record(app: App, mut finished: mpsc::Receiver<Finished>) {
    let mut batch = Vec::new();
    while finished.recv_many(&mut batch, RECORD_BATCH).await > 0 {
        if batch.len() < RECORD_LINGER_BELOW {
            tokio::time::sleep(RECORD_LINGER).await;
            while batch.len() < RECORD_BATCH
                && let Ok(more) = finished.try_recv()
            {
                batch.push(more);
            }
        }
        let queued_again = batch.iter().any(|f| f.delivery.next_attempt_at.is_some());
        let gone: Vec<(String, String)> = batch
            .iter()
            .filter(|f| f.unsubscribe)
            .map(|f| (f.delivery.tenant.clone(), f.delivery.receiver.clone()))
            .collect();
        let open_jobs = app.dispatch.open_jobs();
        let mut recorded = Recorded::default();
        let mut jobs = Vec::new();
        for Finished { delivery, job, .. } in batch.drain(..) {
            match job {
                Some(job) => {
                    if open_jobs.recorded(&job) {
                        recorded.ended.push(job.clone());
                    }
                    jobs.push(job);
                    recorded.fresh.push(delivery);
                }
                None => recorded.claimed.push(delivery),
            }
        }
        let now = app.now();
        let (stored, saved, recorded) = app
            .blocking(move |s| {
                let stored = s.finish_attempts(&recorded);
                (
                    stored.is_ok(),
                    stored.and_then(|()| unsubscribe(s, gone, now)),
                    recorded,
                )
            })
            .await;
        app.dispatch.logged(&recorded.fresh);
        // A job that runs again is found only by a scan of the store, and the router may
        // be waiting for a publish.
        if open_jobs.settle(&jobs, stored, || app.commit.fresh().stop()) {
            app.fanout_ready.notify_one();
        }
        match saved {
            // The worker may be asleep until a later time, or for good.
            Ok(()) if queued_again => app.deliveries_ready.notify_one(),
            Ok(()) => {}
            Err(e) => {
                tracing::error!(error = %e, "cannot save attempts; claimed ones are queued again by the stuck-delivery check, fresh ones by their fan-out running again");
            }
        }
    }
}

/// Marks receivers that answered 410 Gone removed.
fn unsubscribe(
    s: &dyn Store,
    gone: Vec<(String, String)>,
    now: Timestamp,
) -> Result<(), crate::store::Error> {
    for (tenant, receiver) in gone {
        if let Some(mut r) = s.receiver(&tenant, &receiver)?
            && r.is_live()
        {
            r.deleted_at = Some(now);
            r.deleted_reason = Some("the receiver answered 410 Gone".into());
            s.put_receiver(&r)?;
        }
    }
    Ok(())
}

async fn send(
    app: &App,
    client: &HttpClient,
    delivery: &Delivery,
    receiver: &Receiver,
    event: Option<Arc<Event>>,
    account: Option<Arc<ApiAccount>>,
    authorize_again: bool,
) -> Outcome {
    let started = app.now();
    let failed_attempt = |error: String| Attempt {
        at: started,
        status_code: None,
        duration_ms: 0,
        error: Some(error),
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
    // A fresh hand-off is the exception: fan-out authorized it a moment ago, on these very
    // receiver, account and event.
    if authorize_again {
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
    // Borrowed, so that the closure below can be called twice.
    let (context, failed_attempt) = (&context, &failed_attempt);
    let authenticate_and_send = |request: OutgoingRequest, fresh_tokens: bool| async move {
        let call = app.plugins.authenticate(
            &receiver.tenant,
            &receiver.auth.plugin,
            request,
            context,
            &receiver.auth.settings,
            fresh_tokens,
        );
        match app.metrics.time_plugin(call).await {
            Ok(request) => Ok(client.send(request).await),
            Err(e) => {
                app.metrics.plugin_failed();
                let mut a = failed_attempt(format!("auth protocol {}: {e}", receiver.auth.plugin));
                a.duration_ms = clock.elapsed().as_millis() as u64;
                Err(Outcome::Tried(a))
            }
        }
    };
    // A 401 may mean a cached OAuth2 token was revoked early: one fresh token, one retry.
    // Only then is the request needed twice.
    let retry = (receiver.auth.plugin == "oauth2").then(|| request.clone());
    let mut answer = match authenticate_and_send(request, false).await {
        Ok(answer) => answer,
        Err(failed) => return failed,
    };
    if let Some(request) = retry
        && matches!(&answer, Ok(a) if a.status == 401)
    {
        answer = match authenticate_and_send(request, true).await {
            Ok(answer) => answer,
            Err(failed) => return failed,
        };
    }
    let duration_ms = clock.elapsed().as_millis() as u64;
    Outcome::Tried(match answer {
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
    })
}
