//! Fan-out: an event becomes one delivery per live receiver that subscribes to its topic
//! and whose API account may see it, with the body its transform plugin makes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::app::App;
use crate::delivery::{Handoff, OpenJobs, Parties};
use crate::domain::{
    ApiAccount, Delivery, DeliveryStatus, Event, PluginRef, Receiver, Timestamp, topics,
};
use crate::plugins;
use crate::store::{FanoutDone, FanoutJob, FreshJobs, Store};

/// Jobs taken per round, at most.
const BATCH: usize = 256;

/// What a round of fan-out came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Round {
    /// It fanned out this many jobs (0: none was pending).
    Done(usize),
    /// Too few slots were free: it waits for attempts to finish.
    Busy,
}

/// Runs fan-out jobs as they are published, until `shutdown` turns true.
pub async fn run(app: App, mut shutdown: watch::Receiver<bool>) {
    let (mut pace, mut directories) = (Pace::default(), Directories::default());
    loop {
        match fan_out_pending(&app, &mut pace, &mut directories).await {
            Ok(Round::Done(0)) => {}
            Ok(Round::Done(_)) => continue,
            Ok(Round::Busy) => {
                tokio::select! {
                    () = app.dispatch.freed() => continue,
                    _ = shutdown.changed() => return,
                }
            }
            Err(e) => {
                // The jobs it took from the feed are pending in the store.
                app.commit.fresh().stop();
                tracing::error!(error = %e, "fan-out failed; retrying in a second");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        }
        // `notify_one` keeps a permit when nobody waits, so a publish that lands
        // between the scan above and this wait is not missed.
        tokio::select! {
            () = app.fanout_ready.notified() => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// How many jobs a round takes: as many as the free slots can start at once, judged by
/// the deliveries each job of the last round made, once an eighth of the slots (or one
/// job's deliveries, up to half the slots) is free. Deliveries made beyond the free
/// slots would only be queued and read back; their events wait for fan-out instead, at
/// no cost. A receiver with no room of its own (down, slow) does not hold fan-out up:
/// only the global slots count, and its deliveries are queued as before.
#[derive(Debug)]
pub struct Pace {
    per_job: usize,
}

impl Default for Pace {
    fn default() -> Self {
        Self { per_job: 1 }
    }
}

impl Pace {
    /// Jobs to take with `free` of `capacity` slots free; `None`: wait for more.
    fn jobs(&self, free: usize, capacity: usize) -> Option<usize> {
        let wanted = (capacity / 8).max(self.per_job).min(capacity / 2).max(1);
        (free >= wanted).then(|| (free / self.per_job).clamp(1, BATCH))
    }

    fn learn(&mut self, jobs: usize, deliveries: usize) {
        if jobs > 0 {
            self.per_job = deliveries.div_ceil(jobs).max(1);
        }
    }
}

/// A tenant's live receivers and its API accounts.
struct Directory {
    /// By id.
    receivers: BTreeMap<String, Arc<Receiver>>,
    accounts: BTreeMap<String, Arc<ApiAccount>>,
}

impl Directory {
    fn read(store: &dyn Store, tenant: &str) -> Result<Self, crate::store::Error> {
        Ok(Self {
            receivers: store
                .receivers(tenant, false)?
                .into_iter()
                .map(|r| (r.id.clone(), Arc::new(r)))
                .collect(),
            accounts: store
                .api_accounts(tenant)?
                .into_iter()
                .map(|a| (a.id.clone(), Arc::new(a)))
                .collect(),
        })
    }
}

/// The tenants' directories as read since the store's directory version last changed.
#[derive(Default)]
pub struct Directories {
    version: u64,
    tenants: HashMap<String, Arc<Directory>>,
}

impl Directories {
    /// Drops every directory if the store's directory version moved since they were read.
    fn check(&mut self, store: &dyn Store) {
        let version = store.directory_version();
        if version != self.version {
            self.tenants.clear();
            self.version = version;
        }
    }

    fn get(
        &mut self,
        store: &dyn Store,
        tenant: &str,
    ) -> Result<Arc<Directory>, crate::store::Error> {
        if let Some(directory) = self.tenants.get(tenant) {
            return Ok(directory.clone());
        }
        let directory = Arc::new(Directory::read(store, tenant)?);
        self.tenants.insert(tenant.to_owned(), directory.clone());
        Ok(directory)
    }
}

/// A batch of fan-out jobs with what they need from the store.
struct Batch {
    jobs: Vec<(FanoutJob, Option<Arc<Event>>)>,
    tenants: BTreeMap<String, Arc<Directory>>,
    /// Whether the jobs may have run before, so that some of their deliveries may be
    /// stored already. Those from the committer's feed never ran, nor did those a scan
    /// found after the feed filled up (see [`crate::store::Scanned`]).
    may_have_run: bool,
}

/// Up to `jobs` pending jobs: fresh from the committer, or else found in the store (not
/// those `open`, whose deliveries are with the worker).
fn load_batch(
    store: &dyn Store,
    jobs: usize,
    open: &OpenJobs,
    feed: &FreshJobs,
    directories: &mut Directories,
) -> Result<Batch, crate::store::Error> {
    directories.check(store);
    let (jobs, may_have_run) = match feed.take(jobs) {
        Some(taken) => (
            taken.into_iter().map(|f| (f.job, Some(f.event))).collect(),
            false,
        ),
        None => {
            let found = feed.scan(jobs, || store.fanout_jobs(jobs, &|job| open.is_open(job)))?;
            let mut with_events = Vec::with_capacity(found.jobs.len());
            for job in found.jobs {
                let event = store.event(&job.tenant, &job.event)?.map(Arc::new);
                with_events.push((job, event));
            }
            (with_events, found.may_have_run)
        }
    };
    let mut batch = Batch {
        jobs,
        tenants: BTreeMap::new(),
        may_have_run,
    };
    for (job, _) in &batch.jobs {
        if !batch.tenants.contains_key(&job.tenant) {
            let directory = directories.get(store, &job.tenant)?;
            batch.tenants.insert(job.tenant.clone(), directory);
        }
    }
    Ok(batch)
}

/// Fans out one batch of pending jobs, as many as `pace` allows.
///
/// A delivery whose receiver has a slot free goes straight to the worker and is stored
/// when its first attempt ends; its job stays open (pending in the store) until then. The
/// rest are stored now, queued, in one transaction with the jobs that end, and not
/// flushed: the events and their jobs are already durable. After a crash a job that did
/// not end runs again and makes the same deliveries (same ids, same `Webhook-Id`),
/// skipping those already stored.
pub async fn fan_out_pending(
    app: &App,
    pace: &mut Pace,
    directories: &mut Directories,
) -> Result<Round, crate::store::Error> {
    let Some(jobs) = pace.jobs(app.dispatch.free(), app.dispatch.capacity()) else {
        return Ok(Round::Busy);
    };
    let open_jobs = app.dispatch.open_jobs();
    let feed = app.commit.fresh();
    let batch = app.quick(|s| load_batch(s, jobs, open_jobs, feed, directories))?;
    let count = batch.jobs.len();
    if count == 0 {
        return Ok(Round::Done(0));
    }
    let mut made = 0;
    let mut done = Vec::with_capacity(count);
    let mut fresh = Vec::with_capacity(count);
    for (job, event) in &batch.jobs {
        let deliveries = match (event, batch.tenants.get(&job.tenant)) {
            (Some(event), Some(directory)) => {
                deliveries_for(app, directory, event, batch.may_have_run).await?
            }
            _ => Vec::new(),
        };
        app.metrics.deliveries_created(deliveries.len());
        made += deliveries.len();
        let (mut queued, mut handed) = (Vec::new(), Vec::new());
        for delivery in deliveries {
            let slot = (delivery.status == DeliveryStatus::Pending)
                .then(|| app.dispatch.reserve(&delivery.tenant, &delivery.receiver))
                .flatten();
            match slot {
                Some(slot) => handed.push((delivery, slot)),
                None => queued.push(delivery),
            }
        }
        if handed.is_empty() || !queued.is_empty() {
            done.push(FanoutDone {
                job: job.clone(),
                queued,
                ends: handed.is_empty(),
            });
        }
        fresh.push(handed);
    }
    let any_queued = done
        .iter()
        .any(|d| d.queued.iter().any(|q| q.next_attempt_at.is_some()));
    if !done.is_empty() {
        app.blocking(move |s| s.complete_fanout(&done)).await?;
    }

    for ((job, event), handed) in batch.jobs.iter().zip(fresh) {
        open_jobs.open(job.clone(), handed.len());
        let directory = batch.tenants.get(&job.tenant);
        for (delivery, slot) in handed {
            let receiver = directory.and_then(|dir| dir.receivers.get(&delivery.receiver));
            let account =
                receiver.and_then(|r| directory.and_then(|dir| dir.accounts.get(&r.api_account)));
            let parties = Parties {
                receiver: receiver.cloned(),
                account: account.cloned(),
                event: event.clone(),
            };
            app.dispatch.hand_off(Handoff {
                delivery,
                job: job.clone(),
                parties,
                slot,
            });
        }
    }
    if any_queued {
        app.deliveries_ready.notify_one();
    }
    pace.learn(count, made);
    Ok(Round::Done(count))
}

/// The deliveries `event` makes that are not stored yet: all of them, unless its job may
/// have run before (`may_have_run`: each is looked up then). Its subscribers are the
/// receivers that existed when it was published, so a job that runs again never reaches
/// a receiver created since.
async fn deliveries_for(
    app: &App,
    directory: &Directory,
    event: &Event,
    may_have_run: bool,
) -> Result<Vec<Delivery>, crate::store::Error> {
    let wire = to_plugin_event(event);
    let mut out = Vec::new();
    let mut allowed = Answers::default();
    let mut bodies = Answers::default();
    for receiver in directory.receivers.values().filter(|r| {
        r.created_at <= event.occurred_at
            && r.topics.iter().any(|p| topics::matches(p, &event.topic))
    }) {
        let id = delivery_id(&event.id, &receiver.id);
        if may_have_run && app.quick(|s| s.has_delivery(&event.tenant, &receiver.id, &id))? {
            continue;
        }
        let account = directory.accounts.get(&receiver.api_account);
        let Some(account) = account.filter(|a| !a.disabled) else {
            tracing::debug!(receiver = %receiver.id, "receiver's API account is gone or disabled");
            continue;
        };
        let filter = (&receiver.filter, Some(account.id.as_str()));
        match allowed
            .get(filter, || authorize(app, receiver, account, &wire))
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::debug!(event = %event.id, receiver = %receiver.id, "not authorized: no delivery");
                continue;
            }
            Err(e) => {
                out.push(failed(
                    app,
                    event,
                    receiver,
                    format!("authorization filter: {e}"),
                ));
                continue;
            }
        }
        let transform = &receiver.transform;
        let body = bodies.get((transform, None), || {
            let call =
                app.plugins
                    .transform(&event.tenant, &transform.plugin, &wire, &transform.settings);
            app.metrics.time_plugin(call)
        });
        match body.await {
            Ok(body) => out.push(transformed(app.now(), event, &wire, &receiver.id, body)),
            Err(e) => out.push(failed(
                app,
                event,
                receiver,
                format!("payload transform: {e}"),
            )),
        }
    }
    Ok(out)
}

/// One event's answers to one kind of plugin call, shared by the receivers that make the
/// same call: the plugin and its settings, and for a filter the API account. A filter's
/// and a transform's answers depend only on their arguments (a plugin keeps no state
/// between calls), so receivers that share them need one call per event between them.
struct Answers<'a, T> {
    known: Vec<(Call<'a>, Result<T, String>)>,
}

/// A plugin with its settings, and the API account a filter is asked about.
type Call<'a> = (&'a PluginRef, Option<&'a str>);

impl<T> Default for Answers<'_, T> {
    fn default() -> Self {
        Self { known: Vec::new() }
    }
}

impl<'a, T: Clone> Answers<'a, T> {
    /// The answer to `call`: made with `ask` the first time, then the same.
    async fn get<F>(&mut self, call: Call<'a>, ask: impl FnOnce() -> F) -> Result<T, String>
    where
        F: Future<Output = Result<T, plugins::Error>>,
    {
        if let Some((_, answer)) = self.known.iter().find(|(known, _)| *known == call) {
            return answer.clone();
        }
        let answer = ask().await.map_err(|e| e.to_string());
        self.known.push((call, answer.clone()));
        answer
    }
}

/// Asks the receiver's authorization filter whether its API account may see the event.
pub async fn authorize(
    app: &App,
    receiver: &Receiver,
    account: &ApiAccount,
    event: &plugins::Event,
) -> Result<bool, plugins::Error> {
    let principal = principal(account);
    let call = app.plugins.allow(
        &receiver.tenant,
        &receiver.filter.plugin,
        event,
        &principal,
        &receiver.filter.settings,
    );
    app.metrics.time_plugin(call).await
}

/// The principal a filter plugin sees for an API account.
pub fn principal(account: &ApiAccount) -> plugins::Principal {
    plugins::Principal {
        id: account.id.clone(),
        permissions: account.authorizations.permissions.clone(),
        scopes: account
            .authorizations
            .scopes
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

/// The event as plugins see it.
pub fn to_plugin_event(event: &Event) -> plugins::Event {
    plugins::Event {
        id: event.id.clone(),
        tenant: event.tenant.clone(),
        topic: event.topic.clone(),
        occurred_at_ms: event.occurred_at.ms(),
        subject: event.subject.as_ref().map(|s| plugins::Subject {
            kind: s.kind.clone(),
            id: s.id.clone(),
            attributes: s
                .attributes
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }),
        content_type: "application/json".to_owned(),
        payload: event.payload_bytes(),
    }
}

/// The delivery id of an event for a receiver: the same however often fan-out runs, and
/// ordered by the event's time (its UUIDv7 prefix), so the log scans newest first.
pub fn delivery_id(event_id: &str, receiver_id: &str) -> String {
    let time = event_id
        .strip_prefix("evt_")
        .and_then(|hex| hex.get(..12))
        .unwrap_or("000000000000");
    let digest = Sha256::new()
        .chain_update(event_id)
        .chain_update("/")
        .chain_update(receiver_id)
        .finalize();
    let mut id = String::with_capacity(36);
    id.push_str("dlv_");
    id.push_str(time);
    id.push_str(&hex::encode(&digest[..10]));
    id
}

/// The delivery of what `receiver`'s transform made of `event` (`wire`, as the plugin
/// saw it). A body that is the payload byte for byte, as the `json` transform makes it,
/// is stored once, with the event.
fn transformed(
    now: Timestamp,
    event: &Event,
    wire: &plugins::Event,
    receiver: &str,
    body: plugins::Body,
) -> Delivery {
    Delivery {
        body_is_payload: body.bytes == wire.payload,
        ..new_delivery(now, event, receiver, body)
    }
}

fn new_delivery(now: Timestamp, event: &Event, receiver: &str, body: plugins::Body) -> Delivery {
    Delivery {
        id: delivery_id(&event.id, receiver),
        tenant: event.tenant.clone(),
        receiver: receiver.to_owned(),
        event: event.id.clone(),
        topic: event.topic.clone(),
        status: DeliveryStatus::Pending,
        status_code: None,
        attempts: Vec::new(),
        next_attempt_at: Some(now),
        request_body: String::from_utf8(body.bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        content_type: body.content_type,
        error: None,
        created_at: now,
        body_pruned: false,
        body_is_payload: false,
    }
}

fn failed(app: &App, event: &Event, receiver: &Receiver, error: String) -> Delivery {
    app.metrics.plugin_failed();
    tracing::warn!(event = %event.id, receiver = %receiver.id, %error, "fan-out failed for receiver");
    let mut delivery = new_delivery(
        app.now(),
        event,
        &receiver.id,
        plugins::Body {
            content_type: String::new(),
            bytes: Vec::new(),
        },
    );
    delivery.status = DeliveryStatus::Failed;
    delivery.next_attempt_at = None;
    delivery.error = Some(error);
    delivery
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids;

    #[test]
    fn only_a_body_that_is_the_payload_byte_for_byte_is_kept_with_the_event() {
        let event = Event {
            id: "evt_1".into(),
            tenant: "t".into(),
            topic: "Cases.Update".into(),
            subject: None,
            payload: Event::payload_of(&serde_json::json!({"n": 1.5, "name": "Ada"})),
            occurred_at: Timestamp(1),
            published_by: "acc_1".into(),
        };
        let wire = to_plugin_event(&event);
        let body = |bytes: Vec<u8>| plugins::Body {
            content_type: "application/json".into(),
            bytes,
        };
        let same = transformed(
            Timestamp(2),
            &event,
            &wire,
            "rcv_1",
            body(wire.payload.clone()),
        );
        assert!(same.body_is_payload);
        assert_eq!(same.request_body.as_bytes(), event.payload_bytes());
        let mut spaced = wire.payload.clone();
        spaced.push(b' ');
        let other = transformed(Timestamp(2), &event, &wire, "rcv_1", body(spaced));
        assert!(
            !other.body_is_payload,
            "the same JSON, but not the same bytes"
        );
    }

    #[test]
    fn fan_out_takes_what_the_free_slots_can_start() {
        let mut pace = Pace::default();
        assert_eq!(pace.jobs(64, 64), Some(64));
        assert_eq!(pace.jobs(8, 64), Some(8));
        assert_eq!(pace.jobs(7, 64), None, "waits for an eighth of the slots");
        assert_eq!(pace.jobs(1, 1), Some(1));
        assert_eq!(pace.jobs(0, 1), None);
        pace.learn(6, 60);
        assert_eq!(pace.jobs(64, 64), Some(6));
        assert_eq!(
            pace.jobs(9, 64),
            None,
            "waits until one job's deliveries fit"
        );
        assert_eq!(pace.jobs(10, 64), Some(1));
        pace.learn(4, 0);
        assert_eq!(
            pace.jobs(64, 64),
            Some(64),
            "jobs that made nothing count as one"
        );
        pace.learn(1, 100);
        assert_eq!(
            pace.jobs(32, 64),
            Some(1),
            "never waits for more than half the slots"
        );
        assert_eq!(pace.jobs(31, 64), None);
    }

    #[test]
    fn delivery_ids_are_stable_valid_and_follow_the_event_time() {
        let a = delivery_id("evt_0190c1a2b3c4000000000000000000aa", "rcv_1");
        assert_eq!(
            a,
            delivery_id("evt_0190c1a2b3c4000000000000000000aa", "rcv_1")
        );
        assert_ne!(
            a,
            delivery_id("evt_0190c1a2b3c4000000000000000000aa", "rcv_2")
        );
        assert!(ids::is_valid("dlv", &a), "{a}");
        // Fan-out that runs again, after an upgrade too, must find what it stored.
        assert_eq!(a, "dlv_0190c1a2b3c4e2945e634a5b65cfa378");
        let later = delivery_id("evt_0190c1a2b3c5000000000000000000aa", "rcv_1");
        assert!(a < later);
    }
}
