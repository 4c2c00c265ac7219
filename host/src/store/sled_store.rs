//! The embedded store on sled: one tree per aggregate, JSON values (deliveries in their
//! own encoding, see [`super::record`]), keys made for scans.
//!
//! Keys (`/` separates parts; tenant names and ids never contain it):
//! - `tenants`: `name`
//! - `api_accounts`, `users`, `receivers`, `events`: `tenant/id`
//! - `deliveries`: `tenant/receiver id/delivery id`, so that a receiver's log is a range
//!   of them (delivery ids are time-ordered)
//! - `account_index`: `account id` → tenant (login knows only the account id)
//! - `access_tokens`: `sha256 hex of the token`
//! - `audit`: `tenant/entry id` (actions taken by impersonation)
//! - `idempotency`: `tenant/scope/key` → event id
//! - `fanout`: `event id/tenant` (event ids are time-ordered: oldest job first), for the
//!   jobs pending at the last flush; newer ones are kept in memory (see
//!   [`SledStore::unwritten_jobs`])
//! - `lane_queue`, `lanes`, `lane_due`: the delivery queue, one lane per receiver (see
//!   [`super::lanes`])
//! - `in_flight`: a delivery's key → claim time (claimed, being attempted)
//! - `ui_sessions`: `sha256 hex of the admin UI session id`
//! - `login_guards`: `tenant/user id` (TOTP replay and lockout state of the UI login)
//! - the default tree: `layout` → [`LAYOUT`], the key layout the store was last written in

use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde::de::DeserializeOwned;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::{Db, Transactional, Tree};

use super::lanes::{self, LanesTx, TxResult};
use super::record::{decode_delivery, delivery_key, encode_delivery};
use super::{
    AccessToken, DeliveryQuery, Error, FanoutDone, FanoutJob, LoginGuard, Publication, Published,
    Recorded, Result, Store, UiSession,
};
use crate::domain::{ApiAccount, AuditEntry, Delivery, Event, Receiver, Tenant, Timestamp, User};

/// Memory sled may keep for pages it read or wrote (its default is 1 GiB); the OS page
/// cache keeps what falls out of it close. With 100,000 deliveries queued, 32 MiB
/// instead of 64 took the host from 116 to 86 MiB at no cost in drain rate or CPU.
const CACHE_BYTES: u64 = 32 << 20;

/// The key layout this version writes. Version 1 (no `layout` entry) keyed deliveries
/// `tenant/id` and kept each receiver's log in a `by_receiver` tree: a second insert
/// for every delivery, which cost the recorder a tenth of the host's CPU.
const LAYOUT: u8 = 2;
const LAYOUT_KEY: &[u8] = b"layout";

/// The sled-backed [`Store`].
#[derive(Clone)]
pub struct SledStore {
    db: Db,
    tenants: Tree,
    api_accounts: Tree,
    account_index: Tree,
    users: Tree,
    access_tokens: Tree,
    audit: Tree,
    receivers: Tree,
    events: Tree,
    idempotency: Tree,
    fanout: Tree,
    deliveries: Tree,
    queue: Tree,
    lanes: Tree,
    lane_due: Tree,
    in_flight: Tree,
    ui_sessions: Tree,
    login_guards: Tree,
    /// Held by every change to the queue, so a claim's scan and its transaction see the
    /// same lanes.
    queue_lock: Arc<Mutex<()>>,
    /// See [`Store::directory_version`].
    directory_version: Arc<AtomicU64>,
    /// Fan-out jobs set since the last flush, by their key in `fanout`: set and ended
    /// here, they cost no write to the store. Each one's event is in the publish journal,
    /// which starts over only after a flush, and a flush first writes the jobs still
    /// here into `fanout` (under this lock, so a job ends here or after that write).
    unwritten_jobs: Arc<Mutex<BTreeSet<String>>>,
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore").finish_non_exhaustive()
    }
}

fn backend(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Backend(Box::new(e))
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::Corrupt(e.into()))
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    decode_borrowed(bytes)
}

fn decode_borrowed<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::Corrupt(e.into()))
}

fn key(tenant: &str, id: &str) -> String {
    format!("{tenant}/{id}")
}

fn split_key(bytes: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(bytes).ok()?;
    let (a, b) = text.split_once('/')?;
    Some((a.to_owned(), b.to_owned()))
}

/// Runs a transaction whose closure fails with our own `Error`.
fn abort<T>(e: Error) -> std::result::Result<T, ConflictableTransactionError<Error>> {
    Err(ConflictableTransactionError::Abort(e))
}

fn tx_result<T>(r: std::result::Result<T, TransactionError<Error>>) -> Result<T> {
    r.map_err(|e| match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => backend(e),
    })
}

fn tx_encode<T: Serialize>(
    value: &T,
) -> std::result::Result<Vec<u8>, ConflictableTransactionError<Error>> {
    encode(value).or_else(abort)
}

impl SledStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(CACHE_BYTES)
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(backend)?;
        let tree = |name: &str| db.open_tree(name).map_err(backend);
        let store = Self {
            tenants: tree("tenants")?,
            api_accounts: tree("api_accounts")?,
            account_index: tree("account_index")?,
            users: tree("users")?,
            access_tokens: tree("access_tokens")?,
            audit: tree("audit")?,
            receivers: tree("receivers")?,
            events: tree("events")?,
            idempotency: tree("idempotency")?,
            fanout: tree("fanout")?,
            deliveries: tree("deliveries")?,
            queue: tree("lane_queue")?,
            lanes: tree("lanes")?,
            lane_due: tree("lane_due")?,
            in_flight: tree("in_flight")?,
            ui_sessions: tree("ui_sessions")?,
            login_guards: tree("login_guards")?,
            queue_lock: Arc::default(),
            directory_version: Arc::default(),
            unwritten_jobs: Arc::default(),
            db,
        };
        store.migrate_delivery_keys()?;
        store.migrate_global_queue()?;
        Ok(store)
    }

    /// Moves the deliveries of an older layout from `tenant/id` to their receiver's
    /// range, with their in-flight marks, and drops the old receiver logs. Each delivery
    /// moves in its own transaction; one moved already is skipped, so a migration cut
    /// short by a crash goes on at the next open.
    fn migrate_delivery_keys(&self) -> Result<()> {
        let written = self.db.get(LAYOUT_KEY).map_err(backend)?;
        if written.is_some_and(|v| v.first().is_some_and(|&l| l >= LAYOUT)) {
            return Ok(());
        }
        for entry in self.deliveries.iter() {
            let (old, value) = entry.map_err(backend)?;
            if old.iter().filter(|&&b| b == b'/').count() != 1 {
                continue;
            }
            let new = key_of(&decode_delivery(&old, &value)?);
            let r = (&self.deliveries, &self.in_flight).transaction(|(deliveries, in_flight)| {
                deliveries.remove(&old)?;
                deliveries.insert(new.as_bytes(), &value)?;
                if let Some(claimed) = in_flight.remove(&old)? {
                    in_flight.insert(new.as_bytes(), claimed)?;
                }
                Ok(())
            });
            tx_result(r)?;
        }
        if self
            .db
            .tree_names()
            .iter()
            .any(|n| n.as_ref() == b"by_receiver")
        {
            self.db.drop_tree("by_receiver").map_err(backend)?;
        }
        self.db.insert(LAYOUT_KEY, &[LAYOUT]).map_err(backend)?;
        Ok(())
    }

    /// Moves what an older version queued in one global `queue` tree (`due ‖
    /// tenant/delivery id`) into the receivers' lanes.
    fn migrate_global_queue(&self) -> Result<()> {
        if !self.db.tree_names().iter().any(|n| n.as_ref() == b"queue") {
            return Ok(());
        }
        let old = self.db.open_tree("queue").map_err(backend)?;
        for entry in old.iter() {
            let (k, _) = entry.map_err(backend)?;
            let Some((tenant, id)) = k.get(8..).and_then(split_key) else {
                continue;
            };
            if let Some(delivery) = self.delivery(&tenant, &id)? {
                let r = (&self.queue, &self.lanes, &self.lane_due).transaction(
                    |(queue, lanes, lane_due)| {
                        LanesTx {
                            queue,
                            lanes,
                            lane_due,
                        }
                        .enqueue(&delivery)
                    },
                );
                tx_result(r)?;
            }
        }
        self.db.drop_tree("queue").map_err(backend)?;
        Ok(())
    }

    /// Marks a write to the API accounts, users, access tokens or receivers, whatever it
    /// came to: readers that kept what they read of them read again. The write is made
    /// durable (see [`Self::durable`]).
    fn directory_changed<T>(&self, written: Result<T>) -> Result<T> {
        self.directory_version.fetch_add(1, Ordering::SeqCst);
        self.durable(written)
    }

    /// A write its caller answers someone about, on disk before it returns: sled keeps
    /// writes in its log buffers until its next flush (every half second), and a crash
    /// loses what they hold. The event path's writes need no flush of their own (see
    /// [`Store::publish`]); these are few.
    fn durable<T>(&self, written: Result<T>) -> Result<T> {
        let value = written?;
        self.db.flush().map_err(backend)?;
        Ok(value)
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, ()> {
        self.queue_lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `write` in one transaction over the in-flight marks, the deliveries and the
    /// queue, under the queue lock.
    fn queue_transaction<T>(
        &self,
        write: impl Fn(&TransactionalTree, &TransactionalTree, &LanesTx<'_>) -> TxResult<T>,
    ) -> Result<T> {
        let _held = self.lock_queue();
        let r = (
            &self.in_flight,
            &self.deliveries,
            &self.queue,
            &self.lanes,
            &self.lane_due,
        )
            .transaction(|(in_flight, deliveries, queue, lanes, lane_due)| {
                let queue = LanesTx {
                    queue,
                    lanes,
                    lane_due,
                };
                write(in_flight, deliveries, &queue)
            });
        tx_result(r)
    }

    fn unwritten_jobs(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.unwritten_jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Ends fan-out jobs whose deliveries are written: in memory if they are still there,
    /// else in `fanout`, by plain removes after those writes (sled recovers its log in
    /// order, so a crash before them leaves the job pending, to run again and find its
    /// deliveries stored).
    fn end_jobs<'a>(&self, jobs: impl IntoIterator<Item = &'a FanoutJob>) -> Result<()> {
        let mut unwritten = self.unwritten_jobs();
        for job in jobs {
            let k = key(&job.event, &job.tenant);
            if !unwritten.remove(&k) {
                self.fanout.remove(k.as_bytes()).map_err(backend)?;
            }
        }
        Ok(())
    }

    /// `deliveries` with the bodies the store left out because they are their events'
    /// payloads (see `record`), read from the events, each once. Events are never
    /// removed; a body whose event is missing all the same is reported pruned.
    fn with_bodies(&self, mut deliveries: Vec<Delivery>) -> Result<Vec<Delivery>> {
        /// An event as stored, but only the text of its payload: the store writes events
        /// as compact JSON, so that text is what `Event::payload_bytes` gave.
        #[derive(serde::Deserialize)]
        struct StoredPayload<'a> {
            #[serde(borrow)]
            payload: &'a serde_json::value::RawValue,
        }
        let payload_of = |tenant: &str, event: &str| -> Result<Option<String>> {
            let Some(stored) = self.events.get(key(tenant, event)).map_err(backend)? else {
                return Ok(None);
            };
            let stored: StoredPayload<'_> = decode_borrowed(&stored)?;
            Ok(Some(stored.payload.get().to_owned()))
        };
        let mut payloads: HashMap<(String, String), Option<String>> = HashMap::new();
        for d in deliveries
            .iter_mut()
            .filter(|d| d.body_is_payload && !d.body_pruned)
        {
            let event = (d.tenant.clone(), d.event.clone());
            let payload = match payloads.get(&event) {
                Some(payload) => payload.clone(),
                None => {
                    let payload = payload_of(&d.tenant, &d.event)?;
                    payloads.insert(event, payload.clone());
                    payload
                }
            };
            match payload {
                Some(body) => d.request_body = body,
                None => {
                    tracing::error!(delivery = %d.id, event = %d.event, "the event of a delivery is missing: its body is reported pruned");
                    d.body_pruned = true;
                    d.body_is_payload = false;
                }
            }
        }
        Ok(deliveries)
    }

    fn get<T: DeserializeOwned>(tree: &Tree, key: &str) -> Result<Option<T>> {
        tree.get(key)
            .map_err(backend)?
            .map(|v| decode(&v))
            .transpose()
    }

    fn list<T: DeserializeOwned>(tree: &Tree, tenant: &str) -> Result<Vec<T>> {
        tree.scan_prefix(format!("{tenant}/"))
            .map(|kv| decode(&kv.map_err(backend)?.1))
            .collect()
    }

    /// Removes the values of `tree` that expired by `now`; returns how many.
    fn purge_expired<T: DeserializeOwned>(
        tree: &Tree,
        now: Timestamp,
        expires_at: impl Fn(&T) -> Timestamp,
    ) -> Result<usize> {
        let mut purged = 0;
        for entry in tree.iter() {
            let (k, value) = entry.map_err(backend)?;
            if expires_at(&decode(&value)?) <= now {
                tree.remove(k).map_err(backend)?;
                purged += 1;
            }
        }
        Ok(purged)
    }

    fn put<T: Serialize>(tree: &Tree, key: &str, value: &T) -> Result<()> {
        tree.insert(key, encode(value)?).map_err(backend)?;
        Ok(())
    }
}

fn key_of(delivery: &Delivery) -> String {
    delivery_key(&delivery.tenant, &delivery.receiver, &delivery.id)
}

fn tx_put_delivery(
    deliveries: &TransactionalTree,
    queue: &LanesTx<'_>,
    delivery: &Delivery,
) -> std::result::Result<(), ConflictableTransactionError<Error>> {
    let value = encode_delivery(delivery).or_else(abort)?;
    deliveries.insert(key_of(delivery).as_bytes(), value)?;
    queue.enqueue(delivery)
}

impl Store for SledStore {
    fn flush(&self) -> Result<()> {
        {
            let mut unwritten = self.unwritten_jobs();
            for k in unwritten.iter() {
                self.fanout.insert(k.as_bytes(), &[]).map_err(backend)?;
            }
            unwritten.clear();
        }
        self.db.flush().map_err(backend)?;
        Ok(())
    }

    fn create_tenant(&self, tenant: &Tenant, account: &ApiAccount, user: &User) -> Result<()> {
        let r = (
            &self.tenants,
            &self.api_accounts,
            &self.account_index,
            &self.users,
        )
            .transaction(|(tenants, accounts, index, users)| {
                if tenants.get(&tenant.name)?.is_some() {
                    return abort(Error::Conflict(format!("tenant {:?}", tenant.name)));
                }
                tenants.insert(tenant.name.as_bytes(), tx_encode(tenant)?)?;
                accounts.insert(
                    key(&tenant.name, &account.id).as_bytes(),
                    tx_encode(account)?,
                )?;
                index.insert(account.id.as_bytes(), tenant.name.as_bytes())?;
                users.insert(key(&tenant.name, &user.id).as_bytes(), tx_encode(user)?)?;
                Ok(())
            });
        self.directory_changed(tx_result(r))
    }

    fn tenant(&self, name: &str) -> Result<Option<Tenant>> {
        Self::get(&self.tenants, name)
    }

    fn tenants(&self) -> Result<Vec<Tenant>> {
        self.tenants
            .iter()
            .map(|kv| decode(&kv.map_err(backend)?.1))
            .collect()
    }

    fn put_api_account(&self, account: &ApiAccount) -> Result<()> {
        let r = (&self.api_accounts, &self.account_index).transaction(|(accounts, index)| {
            accounts.insert(
                key(&account.tenant, &account.id).as_bytes(),
                tx_encode(account)?,
            )?;
            index.insert(account.id.as_bytes(), account.tenant.as_bytes())?;
            Ok(())
        });
        self.directory_changed(tx_result(r))
    }

    fn api_account(&self, tenant: &str, id: &str) -> Result<Option<ApiAccount>> {
        Self::get(&self.api_accounts, &key(tenant, id))
    }

    fn find_api_account(&self, id: &str) -> Result<Option<ApiAccount>> {
        let Some(tenant) = self.account_index.get(id).map_err(backend)? else {
            return Ok(None);
        };
        let tenant = String::from_utf8_lossy(&tenant).into_owned();
        self.api_account(&tenant, id)
    }

    fn api_accounts(&self, tenant: &str) -> Result<Vec<ApiAccount>> {
        Self::list(&self.api_accounts, tenant)
    }

    fn update_api_account(
        &self,
        tenant: &str,
        id: &str,
        change: &mut dyn FnMut(&mut ApiAccount) -> bool,
    ) -> Result<Option<ApiAccount>> {
        let updated = (|| {
            let k = key(tenant, id);
            // Compare-and-swap until no concurrent writer got in between: the TOTP step
            // and the failure counter must never lose an update.
            loop {
                let Some(old) = self.api_accounts.get(&k).map_err(backend)? else {
                    return Ok(None);
                };
                let mut account: ApiAccount = decode(&old)?;
                if !change(&mut account) {
                    return Ok(Some(account));
                }
                let new = encode(&account)?;
                match self
                    .api_accounts
                    .compare_and_swap(&k, Some(&old), Some(new))
                    .map_err(backend)?
                {
                    Ok(()) => return Ok(Some(account)),
                    Err(_) => continue,
                }
            }
        })();
        self.directory_changed(updated)
    }

    fn revoke_sessions(&self, tenant: &str, account: &str) -> Result<usize> {
        let revoked = (|| {
            let mut revoked = 0;
            for entry in self.access_tokens.iter() {
                let (hash, value) = entry.map_err(backend)?;
                let token: AccessToken = decode(&value)?;
                if token.tenant == tenant && token.account == account {
                    self.access_tokens.remove(hash).map_err(backend)?;
                    revoked += 1;
                }
            }
            Ok(revoked)
        })();
        self.directory_changed(revoked)
    }

    fn delete_api_account(&self, tenant: &str, id: &str) -> Result<bool> {
        let removed = self.api_accounts.remove(key(tenant, id)).map_err(backend);
        let removed = self.directory_changed(removed)?;
        self.account_index.remove(id).map_err(backend)?;
        self.revoke_sessions(tenant, id)?;
        Ok(removed.is_some())
    }

    fn put_user(&self, user: &User) -> Result<()> {
        let put = Self::put(&self.users, &key(&user.tenant, &user.id), user);
        self.directory_changed(put)
    }

    fn user(&self, tenant: &str, id: &str) -> Result<Option<User>> {
        Self::get(&self.users, &key(tenant, id))
    }

    fn users(&self, tenant: &str) -> Result<Vec<User>> {
        Self::list(&self.users, tenant)
    }

    fn delete_user(&self, tenant: &str, id: &str) -> Result<bool> {
        let removed = self.users.remove(key(tenant, id)).map_err(backend);
        Ok(self.directory_changed(removed)?.is_some())
    }

    fn put_access_token(&self, hash: &str, token: &AccessToken) -> Result<()> {
        let put = Self::put(&self.access_tokens, hash, token);
        self.directory_changed(put)
    }

    fn access_token(&self, hash: &str) -> Result<Option<AccessToken>> {
        Self::get(&self.access_tokens, hash)
    }

    fn delete_access_token(&self, hash: &str) -> Result<bool> {
        let removed = self.access_tokens.remove(hash).map_err(backend);
        Ok(self.directory_changed(removed)?.is_some())
    }

    fn append_audit(&self, entry: &AuditEntry) -> Result<()> {
        self.durable(Self::put(
            &self.audit,
            &key(&entry.tenant, &entry.id),
            entry,
        ))
    }

    fn audit(&self, tenant: &str, limit: usize) -> Result<Vec<AuditEntry>> {
        self.audit
            .scan_prefix(format!("{tenant}/"))
            .rev()
            .take(limit)
            .map(|kv| decode(&kv.map_err(backend)?.1))
            .collect()
    }

    fn put_receiver(&self, receiver: &Receiver) -> Result<()> {
        let put = Self::put(
            &self.receivers,
            &key(&receiver.tenant, &receiver.id),
            receiver,
        );
        self.directory_changed(put)
    }

    fn directory_version(&self) -> u64 {
        self.directory_version.load(Ordering::SeqCst)
    }

    fn receiver(&self, tenant: &str, id: &str) -> Result<Option<Receiver>> {
        Self::get(&self.receivers, &key(tenant, id))
    }

    fn receivers(&self, tenant: &str, include_deleted: bool) -> Result<Vec<Receiver>> {
        let mut all: Vec<Receiver> = Self::list(&self.receivers, tenant)?;
        if !include_deleted {
            all.retain(Receiver::is_live);
        }
        Ok(all)
    }

    fn publish(&self, batch: &[Publication]) -> Result<Vec<Published>> {
        // Plain writes, not a transaction: a sled transaction writes and syncs its log
        // buffer on its own, twice, which at a steady rate of small rounds cost more than
        // the rest of the round. The journal makes the round durable; replaying it
        // after a crash repairs whatever part of these writes sled lost. The jobs are
        // kept in memory until the next flush, set after their events, so the router
        // never finds a job without its event.
        let mut out = Vec::with_capacity(batch.len());
        let mut jobs = Vec::with_capacity(batch.len());
        for Publication { event, idempotency } in batch {
            if let Some((scope, k)) = idempotency {
                let idem_key = format!("{}/{scope}/{k}", event.tenant);
                match self.idempotency.get(idem_key.as_bytes()).map_err(backend)? {
                    // Its own key, from before a crash: the replay goes on.
                    Some(first) if first == event.id.as_bytes() => {}
                    Some(first) => {
                        let first = String::from_utf8_lossy(&first).into_owned();
                        out.push(Published::Duplicate(first));
                        continue;
                    }
                    None => {
                        self.idempotency
                            .insert(idem_key.as_bytes(), event.id.as_bytes())
                            .map_err(backend)?;
                    }
                }
            }
            // Events never change, so a replay writes what is there, if anything.
            self.events
                .insert(key(&event.tenant, &event.id).as_bytes(), encode(event)?)
                .map_err(backend)?;
            jobs.push(key(&event.id, &event.tenant));
            out.push(Published::New(event.id.clone()));
        }
        self.unwritten_jobs().extend(jobs);
        Ok(out)
    }

    fn event(&self, tenant: &str, id: &str) -> Result<Option<Event>> {
        Self::get(&self.events, &key(tenant, id))
    }

    fn fanout_jobs(
        &self,
        limit: usize,
        skip: &dyn Fn(&FanoutJob) -> bool,
    ) -> Result<Vec<FanoutJob>> {
        // The first `limit` of each kind; the first `limit` of both are among them.
        let wanted = |k: &[u8]| {
            let (event, tenant) = split_key(k)?;
            let job = FanoutJob { tenant, event };
            (!skip(&job)).then(|| (k.to_vec(), job))
        };
        let mut jobs: Vec<(Vec<u8>, FanoutJob)> = self
            .unwritten_jobs()
            .iter()
            .filter_map(|k| wanted(k.as_bytes()))
            .take(limit)
            .collect();
        let mut written = 0;
        for k in self.fanout.iter().keys() {
            if written == limit {
                break;
            }
            if let Some(found) = wanted(&k.map_err(backend)?) {
                jobs.push(found);
                written += 1;
            }
        }
        jobs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        // A job replayed from the journal may also have been written by a flush whose
        // journal did not start over.
        jobs.dedup_by(|a, b| a.0 == b.0);
        Ok(jobs.into_iter().take(limit).map(|(_, job)| job).collect())
    }

    fn complete_fanout(&self, done: &[FanoutDone]) -> Result<()> {
        if done.iter().any(|d| !d.queued.is_empty()) {
            self.queue_transaction(|_, stored, queue| {
                for delivery in done.iter().flat_map(|d| &d.queued) {
                    tx_put_delivery(stored, queue, delivery)?;
                }
                Ok(())
            })?;
        }
        self.end_jobs(done.iter().filter(|d| d.ends).map(|d| &d.job))
    }

    fn delivery(&self, tenant: &str, id: &str) -> Result<Option<Delivery>> {
        for receiver in self.receivers_with_deliveries(tenant)? {
            let k = delivery_key(tenant, &receiver, id);
            if let Some(value) = self.deliveries.get(&k).map_err(backend)? {
                let delivery = decode_delivery(k.as_bytes(), &value)?;
                return Ok(self.with_bodies(vec![delivery])?.pop());
            }
        }
        Ok(None)
    }

    fn has_delivery(&self, tenant: &str, receiver: &str, id: &str) -> Result<bool> {
        self.deliveries
            .contains_key(delivery_key(tenant, receiver, id))
            .map_err(backend)
    }

    fn deliveries(&self, tenant: &str, query: &DeliveryQuery) -> Result<Vec<Delivery>> {
        let wanted = |d: &Delivery| {
            query.topic.as_ref().is_none_or(|t| &d.topic == t)
                && query.status.is_none_or(|s| d.status == s)
        };
        let receivers = match &query.receiver {
            Some(receiver) => vec![receiver.clone()],
            None => self.receivers_with_deliveries(tenant)?,
        };
        // Newest first across the receivers' ranges: each is read backwards from the
        // cursor, and the newest of their next entries is taken each time.
        let mut ranges: Vec<_> = receivers
            .iter()
            .map(|receiver| {
                let start = format!("{tenant}/{receiver}/");
                let end = match &query.before {
                    Some(before) => format!("{start}{before}"),
                    None => format!("{tenant}/{receiver}0"),
                };
                self.deliveries
                    .range(start.into_bytes()..end.into_bytes())
                    .rev()
            })
            .collect();
        let by_id = |entry: sled::Result<(sled::IVec, sled::IVec)>| {
            let (k, value) = entry.map_err(backend)?;
            let id = k.rsplit(|&b| b == b'/').next().unwrap_or_default().to_vec();
            Ok::<_, Error>((id, k, value))
        };
        let mut next = BinaryHeap::new();
        for (i, range) in ranges.iter_mut().enumerate() {
            if let Some(entry) = range.next() {
                next.push((by_id(entry)?, i));
            }
        }
        let mut out = Vec::new();
        while let Some(((_, k, value), i)) = next.pop() {
            let d = decode_delivery(&k, &value)?;
            if wanted(&d) {
                out.push(d);
                if out.len() >= query.limit {
                    break;
                }
            }
            if let Some(entry) = ranges[i].next() {
                next.push((by_id(entry)?, i));
            }
        }
        self.with_bodies(out)
    }

    fn claim_due(
        &self,
        now: Timestamp,
        limit: usize,
        room: &dyn Fn(&str, &str) -> usize,
    ) -> Result<Vec<Delivery>> {
        let _held = self.lock_queue();
        let end = now.ms().saturating_add(1).to_be_bytes();
        let due_lanes: Vec<sled::IVec> = self
            .lanes
            .range(..end.as_slice())
            .keys()
            .collect::<std::result::Result<_, _>>()
            .map_err(backend)?;
        let mut claimed = Vec::new();
        for entry in due_lanes {
            let Some(lane) = lanes::lane_of(&entry) else {
                continue;
            };
            let Some((tenant, receiver)) = lane.split_once('/') else {
                continue;
            };
            let wanted = room(tenant, receiver).min(limit - claimed.len());
            if wanted == 0 {
                continue;
            }
            // The lane's due deliveries, and when the first one left is due.
            let prefix = lanes::prefix(lane);
            let mut taken = Vec::new();
            let mut next = None;
            for k in self.queue.scan_prefix(&prefix).keys() {
                let k = k.map_err(backend)?;
                let due = lanes::ms_at(&k, prefix.len()).unwrap_or(0);
                if due > now.ms() || taken.len() == wanted {
                    next = Some(due);
                    break;
                }
                taken.push(k);
            }
            let first = lanes::ms_at(&entry, 0);
            let r = (
                &self.queue,
                &self.lanes,
                &self.lane_due,
                &self.in_flight,
                &self.deliveries,
            )
                .transaction(|(queue, lanes, lane_due, in_flight, deliveries)| {
                    LanesTx {
                        queue,
                        lanes,
                        lane_due,
                    }
                    .set_due(lane, first, next)?;
                    let mut out = Vec::new();
                    for k in &taken {
                        queue.remove(k)?;
                        let id =
                            String::from_utf8_lossy(k.get(prefix.len() + 8..).unwrap_or_default());
                        let stored_key = format!("{lane}/{id}");
                        let Some(stored) = deliveries.get(stored_key.as_bytes())? else {
                            continue;
                        };
                        in_flight.insert(stored_key.as_bytes(), &now.ms().to_be_bytes())?;
                        out.push(decode_delivery(stored_key.as_bytes(), &stored).or_else(abort)?);
                    }
                    Ok(out)
                });
            claimed.extend(tx_result(r)?);
            if claimed.len() >= limit {
                break;
            }
        }
        self.with_bodies(claimed)
    }

    fn release_claimed(&self, deliveries: &[Delivery]) -> Result<()> {
        self.queue_transaction(|in_flight, _, queue| {
            for delivery in deliveries {
                in_flight.remove(key_of(delivery).as_bytes())?;
                queue.enqueue(delivery)?;
            }
            Ok(())
        })
    }

    fn queued(&self) -> Result<usize> {
        Ok(self.queue.len())
    }

    fn next_due(&self, room: &dyn Fn(&str, &str) -> usize) -> Result<Option<Timestamp>> {
        for entry in self.lanes.iter().keys() {
            let entry = entry.map_err(backend)?;
            let Some((tenant, receiver)) = lanes::lane_of(&entry).and_then(|l| l.split_once('/'))
            else {
                continue;
            };
            if room(tenant, receiver) > 0 {
                return Ok(lanes::ms_at(&entry, 0).map(Timestamp));
            }
        }
        Ok(None)
    }

    fn finish_attempts(&self, recorded: &Recorded) -> Result<()> {
        // Plain writes where nothing needs a transaction, in an order that is safe
        // because sled recovers its log in order. A fresh delivery that is not queued
        // again (delivered, or failed for good, at its first attempt: the common case)
        // goes in first; a transactional insert would read its old value first, and it
        // has none. The jobs end last: a crash before that leaves a job pending, and
        // its next run finds its deliveries stored.
        let (plain, queued): (Vec<&Delivery>, Vec<&Delivery>) = recorded
            .fresh
            .iter()
            .partition(|d| d.next_attempt_at.is_none());
        for delivery in plain {
            self.deliveries
                .insert(key_of(delivery).as_bytes(), encode_delivery(delivery)?)
                .map_err(backend)?;
        }
        if !(recorded.claimed.is_empty() && queued.is_empty()) {
            self.queue_transaction(|in_flight, deliveries, queue| {
                for delivery in &recorded.claimed {
                    in_flight.remove(key_of(delivery).as_bytes())?;
                    tx_put_delivery(deliveries, queue, delivery)?;
                }
                for delivery in &queued {
                    tx_put_delivery(deliveries, queue, delivery)?;
                }
                Ok(())
            })?;
        }
        self.end_jobs(&recorded.ended)
    }

    fn requeue(&self, delivery: &Delivery) -> Result<()> {
        let key = key_of(delivery);
        self.queue_transaction(|_, deliveries, queue| {
            if let Some(old) = deliveries.get(key.as_bytes())? {
                queue.dequeue(&decode_delivery(key.as_bytes(), &old).or_else(abort)?)?;
            }
            tx_put_delivery(deliveries, queue, delivery)
        })
    }

    fn recover_in_flight(&self, now: Timestamp) -> Result<usize> {
        self.requeue_in_flight(now, |_| true)
    }

    fn recover_stuck(&self, claimed_before: Timestamp, now: Timestamp) -> Result<usize> {
        self.requeue_in_flight(now, |claimed| claimed < claimed_before.ms())
    }

    fn prune_bodies(&self, before: Timestamp) -> Result<usize> {
        let mut pruned = 0;
        for entry in self.deliveries.iter() {
            let (k, v) = entry.map_err(backend)?;
            let mut d = decode_delivery(&k, &v)?;
            if d.created_at >= before || !d.status.is_final() || d.body_pruned {
                continue;
            }
            d.request_body.clear();
            d.body_pruned = true;
            // Only if unchanged since read: a concurrent resend wins.
            if self
                .deliveries
                .compare_and_swap(&k, Some(&v), Some(encode_delivery(&d)?))
                .map_err(backend)?
                .is_ok()
            {
                pruned += 1;
            }
        }
        Ok(pruned)
    }

    fn purge_expired_tokens(&self, now: Timestamp) -> Result<usize> {
        let purged = Self::purge_expired(&self.access_tokens, now, |t: &AccessToken| t.expires_at)?;
        // Nothing removed, nothing written: no flush, and the cached directories stand.
        if purged == 0 {
            return Ok(0);
        }
        self.directory_changed(Ok(purged))
    }

    fn put_ui_session(&self, hash: &str, session: &UiSession) -> Result<()> {
        self.durable(Self::put(&self.ui_sessions, hash, session))
    }

    fn ui_session(&self, hash: &str) -> Result<Option<UiSession>> {
        Self::get(&self.ui_sessions, hash)
    }

    fn delete_ui_session(&self, hash: &str) -> Result<bool> {
        let removed = self.ui_sessions.remove(hash).map_err(backend);
        Ok(self.durable(removed)?.is_some())
    }

    fn purge_expired_ui_sessions(&self, now: Timestamp) -> Result<usize> {
        Self::purge_expired(&self.ui_sessions, now, |s: &UiSession| s.expires_at)
    }

    fn update_login_guard(
        &self,
        tenant: &str,
        user: &str,
        change: &mut dyn FnMut(&mut LoginGuard) -> bool,
    ) -> Result<LoginGuard> {
        let k = key(tenant, user);
        // Compare-and-swap, as for API accounts: concurrent attempts must not lose a
        // failure or reuse a TOTP step.
        loop {
            let old = self.login_guards.get(&k).map_err(backend)?;
            let mut guard: LoginGuard = match &old {
                Some(bytes) => decode(bytes)?,
                None => LoginGuard::default(),
            };
            if !change(&mut guard) {
                return Ok(guard);
            }
            let new = encode(&guard)?;
            match self
                .login_guards
                .compare_and_swap(&k, old, Some(new))
                .map_err(backend)?
            {
                Ok(()) => return self.durable(Ok(guard)),
                Err(_) => continue,
            }
        }
    }
}

impl SledStore {
    /// The receivers `tenant` has deliveries for, deleted ones too: one seek per receiver,
    /// each past the last delivery of the one before.
    fn receivers_with_deliveries(&self, tenant: &str) -> Result<Vec<String>> {
        let prefix = format!("{tenant}/");
        let mut from = prefix.clone().into_bytes();
        let mut receivers = Vec::new();
        while let Some(k) = self.deliveries.range(from..).keys().next() {
            let k = k.map_err(backend)?;
            let Some(rest) = k.strip_prefix(prefix.as_bytes()) else {
                break;
            };
            let receiver = rest.split(|&b| b == b'/').next().unwrap_or_default();
            // `0` follows `/`: the first key after every `tenant/receiver/…`.
            from = [prefix.as_bytes(), receiver, b"0"].concat();
            receivers.push(String::from_utf8_lossy(receiver).into_owned());
        }
        Ok(receivers)
    }

    /// Moves in-flight deliveries whose claim time passes `pick` back on the queue.
    fn requeue_in_flight(&self, now: Timestamp, pick: impl Fn(u64) -> bool) -> Result<usize> {
        let mut count = 0;
        for entry in self.in_flight.iter() {
            let (k, claimed) = entry.map_err(backend)?;
            let claimed = claimed
                .as_ref()
                .try_into()
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            if !pick(claimed) {
                continue;
            }
            self.queue_transaction(|in_flight, deliveries, queue| {
                in_flight.remove(&*k)?;
                let Some(stored) = deliveries.get(&*k)? else {
                    return Ok(());
                };
                let mut delivery = decode_delivery(&k, &stored).or_else(abort)?;
                delivery.next_attempt_at = Some(now);
                tx_put_delivery(deliveries, queue, &delivery)
            })?;
            count += 1;
        }
        Ok(count)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::domain::DeliveryStatus;
    use crate::store::{FanoutDone, FanoutJob, Store};

    fn delivery(id: &str, due: u64) -> Delivery {
        Delivery {
            id: id.into(),
            tenant: "t".into(),
            receiver: "rcv_1".into(),
            event: "evt_1".into(),
            topic: "Cases.Update".into(),
            status: DeliveryStatus::Pending,
            status_code: None,
            attempts: vec![],
            next_attempt_at: Some(Timestamp(due)),
            request_body: "{}".into(),
            content_type: "application/json".into(),
            error: None,
            created_at: Timestamp(0),
            body_pruned: false,
            body_is_payload: false,
        }
    }

    fn fan_out(store: &SledStore, queued: Vec<Delivery>) {
        let job = FanoutJob {
            tenant: "t".into(),
            event: "evt_1".into(),
        };
        let done = FanoutDone {
            job,
            queued,
            ends: true,
        };
        store.complete_fanout(&[done]).expect("fan-out");
    }

    /// An event of tenant `t` to publish, with an idempotency key of `acc_1`'s.
    pub(in crate::store) fn publication(id: &str, key: Option<&str>) -> Publication {
        Publication {
            event: Event {
                id: id.into(),
                tenant: "t".into(),
                topic: "Cases.Update".into(),
                subject: None,
                payload: Event::payload_of(&serde_json::json!({"n": id})),
                occurred_at: Timestamp(1),
                published_by: "acc_1".into(),
            },
            idempotency: key.map(|k| ("acc_1".to_owned(), k.to_owned())),
        }
    }

    impl SledStore {
        /// What a crash does to a round sled had not written out: the event and its
        /// job are gone, its idempotency key stayed.
        pub(in crate::store) fn forget_event(&self, tenant: &str, id: &str) {
            self.events.remove(key(tenant, id)).expect("remove event");
            self.fanout.remove(key(id, tenant)).expect("remove job");
            self.unwritten_jobs().remove(&key(id, tenant));
        }
    }

    /// The events whose fan-out jobs are pending, oldest first.
    pub(in crate::store) fn pending_jobs(store: &SledStore) -> Vec<String> {
        let jobs = store.fanout_jobs(usize::MAX, &|_| false).expect("jobs");
        jobs.into_iter().map(|j| j.event).collect()
    }

    fn any_room(_: &str, _: &str) -> usize {
        usize::MAX
    }

    /// The delivery of tenant `t` with this id, which must be there.
    fn delivery_in(store: &SledStore, id: &str) -> Delivery {
        store.delivery("t", id).expect("get").expect("exists")
    }

    fn ids(claimed: &[Delivery]) -> Vec<&str> {
        claimed.iter().map(|d| d.id.as_str()).collect()
    }

    #[test]
    fn the_queue_hands_out_due_deliveries_once_and_recovers_stuck_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SledStore::open(dir.path()).expect("open");
        fan_out(&store, vec![delivery("dlv_a", 100), delivery("dlv_b", 200)]);
        assert_eq!(
            store.next_due(&any_room).expect("next"),
            Some(Timestamp(100))
        );
        let claimed = store
            .claim_due(Timestamp(150), 10, &any_room)
            .expect("claim");
        assert_eq!(ids(&claimed), ["dlv_a"]);
        assert_eq!(claimed[0].request_body, "{}", "handed out whole");
        assert!(
            store
                .claim_due(Timestamp(150), 10, &any_room)
                .expect("claim")
                .is_empty(),
            "claimed once"
        );
        assert_eq!(store.queued().expect("queued"), 1);
        assert_eq!(
            store.next_due(&any_room).expect("next"),
            Some(Timestamp(200))
        );

        // Claimed at 150: not stuck when the cut-off is earlier, stuck when later.
        assert_eq!(
            store
                .recover_stuck(Timestamp(150), Timestamp(1_000))
                .expect("stuck"),
            0
        );
        assert_eq!(
            store
                .recover_stuck(Timestamp(151), Timestamp(1_000))
                .expect("stuck"),
            1
        );
        let again = store
            .claim_due(Timestamp(1_000), 10, &any_room)
            .expect("claim");
        assert_eq!(ids(&again), ["dlv_b", "dlv_a"], "each lane in due order");
    }

    #[test]
    fn a_claimed_delivery_released_unattempted_is_queued_again_as_it_was() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SledStore::open(dir.path()).expect("open");
        fan_out(&store, vec![delivery("dlv_a", 100), delivery("dlv_b", 120)]);
        let claimed = store
            .claim_due(Timestamp(150), 10, &any_room)
            .expect("claim");
        assert_eq!(ids(&claimed), ["dlv_a", "dlv_b"]);
        assert_eq!(store.queued().expect("queued"), 0);

        store.release_claimed(&claimed[1..]).expect("release");
        assert_eq!(store.queued().expect("queued"), 1);
        assert_eq!(
            store.next_due(&any_room).expect("next"),
            Some(Timestamp(120)),
            "due when it was"
        );
        assert_eq!(
            store
                .recover_stuck(Timestamp(1_000), Timestamp(1_000))
                .expect("stuck"),
            1,
            "only the one still claimed is in flight"
        );
        let again = store
            .claim_due(Timestamp(1_000), 10, &any_room)
            .expect("claim");
        assert_eq!(ids(&again), ["dlv_b", "dlv_a"]);
        assert_eq!(again[0].request_body, "{}", "whole");
    }

    #[test]
    fn a_full_receiver_is_stepped_over_and_keeps_its_backlog_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SledStore::open(dir.path()).expect("open");
        let for_receiver = |id: &str, receiver: &str, due: u64| Delivery {
            receiver: receiver.into(),
            ..delivery(id, due)
        };
        let slow: Vec<Delivery> = (0..5)
            .map(|i| for_receiver(&format!("dlv_s{i}"), "rcv_slow", 10 + i))
            .collect();
        fan_out(&store, slow);
        fan_out(&store, vec![for_receiver("dlv_f0", "rcv_fast", 50)]);

        // The slow receiver has room for two; the fast one is behind its whole backlog.
        let room = |_: &str, receiver: &str| if receiver == "rcv_slow" { 2 } else { 9 };
        let claimed = store.claim_due(Timestamp(100), 10, &room).expect("claim");
        assert_eq!(ids(&claimed), ["dlv_s0", "dlv_s1", "dlv_f0"]);

        // Full: stepped over, and not what the worker should wake up for.
        let full = |_: &str, receiver: &str| usize::from(receiver != "rcv_slow");
        assert!(
            store
                .claim_due(Timestamp(100), 10, &full)
                .expect("claim")
                .is_empty()
        );
        assert_eq!(store.next_due(&full).expect("next"), None);
        assert_eq!(store.next_due(&room).expect("next"), Some(Timestamp(12)));

        let rest = store
            .claim_due(Timestamp(100), 10, &any_room)
            .expect("claim");
        assert_eq!(ids(&rest), ["dlv_s2", "dlv_s3", "dlv_s4"]);
        assert_eq!(store.next_due(&any_room).expect("next"), None);
        assert_eq!(store.queued().expect("queued"), 0);
    }

    /// Turns a new store into one an older version wrote: deliveries keyed `tenant/id`
    /// and logged by receiver apart.
    fn store_of_the_old_layout(store: &SledStore, deliveries: &[Delivery]) {
        store.db.remove(LAYOUT_KEY).expect("layout");
        let log = store.db.open_tree("by_receiver").expect("old log");
        for d in deliveries {
            SledStore::put(&store.deliveries, &key(&d.tenant, &d.id), d).expect("stored");
            log.insert(format!("t/{}/{}", d.receiver, d.id), &[])
                .expect("logged");
        }
    }

    #[test]
    fn deliveries_of_the_old_layout_move_into_their_receivers_ranges_at_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let other = |id: &str| Delivery {
            receiver: "rcv_2".into(),
            ..delivery(id, 5)
        };
        {
            let store = SledStore::open(dir.path()).expect("open");
            let old = [delivery("dlv_1", 5), other("dlv_2"), delivery("dlv_3", 5)];
            store_of_the_old_layout(&store, &old);
            store
                .in_flight
                .insert("t/dlv_2", &7u64.to_be_bytes())
                .expect("claimed");
            store.flush().expect("flush");
        }
        let store = SledStore::open(dir.path()).expect("reopen");
        assert!(
            !store
                .db
                .tree_names()
                .iter()
                .any(|n| n.as_ref() == b"by_receiver")
        );
        let found = store.delivery("t", "dlv_2").expect("get").expect("moved");
        assert_eq!(found.receiver, "rcv_2");
        assert!(store.has_delivery("t", "rcv_2", "dlv_2").expect("read"));
        let all = DeliveryQuery {
            limit: 10,
            ..DeliveryQuery::default()
        };
        let listed = store.deliveries("t", &all).expect("list");
        assert_eq!(ids(&listed), ["dlv_3", "dlv_2", "dlv_1"]);
        assert_eq!(store.recover_in_flight(Timestamp(9)).expect("recover"), 1);
        let claimed = store.claim_due(Timestamp(9), 10, &any_room).expect("claim");
        assert_eq!(ids(&claimed), ["dlv_2"], "its claim moved with it");
        drop(store);
        let again = SledStore::open(dir.path()).expect("open again");
        assert_eq!(
            again.delivery("t", "dlv_1").expect("get").map(|d| d.id),
            Some("dlv_1".into())
        );
    }

    #[test]
    fn a_receivers_log_and_the_tenants_are_newest_first_across_receivers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SledStore::open(dir.path()).expect("open");
        let to = |id: &str, receiver: &str| Delivery {
            receiver: receiver.into(),
            next_attempt_at: None,
            ..delivery(id, 0)
        };
        fan_out(
            &store,
            vec![
                to("dlv_1", "rcv_a"),
                to("dlv_2", "rcv_b"),
                to("dlv_4", "rcv_a"),
            ],
        );
        fan_out(&store, vec![to("dlv_3", "rcv_c"), to("dlv_5", "rcv_b")]);
        let other_tenant = Delivery {
            tenant: "u".into(),
            ..to("dlv_9", "rcv_a")
        };
        fan_out(&store, vec![other_tenant]);
        let query = |receiver: Option<&str>, before: Option<&str>, limit| DeliveryQuery {
            receiver: receiver.map(Into::into),
            before: before.map(Into::into),
            limit,
            ..DeliveryQuery::default()
        };
        let list = |q: DeliveryQuery| ids(&store.deliveries("t", &q).expect("list")).join(" ");
        assert_eq!(list(query(None, None, 10)), "dlv_5 dlv_4 dlv_3 dlv_2 dlv_1");
        assert_eq!(list(query(None, Some("dlv_4"), 2)), "dlv_3 dlv_2");
        assert_eq!(list(query(Some("rcv_a"), None, 10)), "dlv_4 dlv_1");
        assert_eq!(list(query(Some("rcv_b"), Some("dlv_5"), 10)), "dlv_2");
        assert_eq!(list(query(Some("rcv_x"), None, 10)), "");
        assert_eq!(
            store
                .delivery("t", "dlv_3")
                .expect("get")
                .map(|d| d.receiver),
            Some("rcv_c".into())
        );
        assert!(store.delivery("t", "dlv_9").expect("get").is_none(), "u's");
    }

    #[test]
    fn a_queue_of_the_old_layout_moves_into_lanes_at_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = SledStore::open(dir.path()).expect("open");
            store_of_the_old_layout(&store, &[delivery("dlv_old", 70)]);
            let old = store.db.open_tree("queue").expect("old tree");
            let mut k = 70u64.to_be_bytes().to_vec();
            k.extend_from_slice(b"t/dlv_old");
            old.insert(k, &[]).expect("old entry");
            store.flush().expect("flush");
        }
        let store = SledStore::open(dir.path()).expect("reopen");
        let claimed = store
            .claim_due(Timestamp(100), 10, &any_room)
            .expect("claim");
        assert_eq!(ids(&claimed), ["dlv_old"]);
        assert!(!store.db.tree_names().iter().any(|n| n.as_ref() == b"queue"));
    }

    #[test]
    fn every_write_to_accounts_users_tokens_or_receivers_changes_the_directory_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SledStore::open(dir.path()).expect("open");
        let at = serde_json::to_value(Timestamp(1)).expect("time");
        let account: ApiAccount = serde_json::from_value(serde_json::json!({
            "id": "acc_1", "tenant": "t", "name": "a",
            "authorizations": {"permissions": ["*"]},
            "token_hash": "", "totp_secret": "",
            "created_at": at, "updated_at": at,
        }))
        .expect("account");
        let receiver: Receiver = serde_json::from_value(serde_json::json!({
            "id": "rcv_1", "tenant": "t", "url": "http://example.com/",
            "topics": ["Cases.*"], "api_account": "acc_1",
            "auth": {"plugin": "websub"}, "transform": {"plugin": "json"},
            "filter": {"plugin": "scope-filter"},
            "created_at": at, "updated_at": at,
        }))
        .expect("receiver");
        let mut seen = vec![store.directory_version()];
        let mut changed = |what: &str, store: &SledStore| {
            let version = store.directory_version();
            assert!(!seen.contains(&version), "{what} kept version {version}");
            seen.push(version);
        };
        store.put_api_account(&account).expect("put account");
        changed("put_api_account", &store);
        store
            .update_api_account("t", "acc_1", &mut |a| {
                a.disabled = true;
                true
            })
            .expect("update account");
        changed("update_api_account", &store);
        store.put_receiver(&receiver).expect("put receiver");
        changed("put_receiver", &store);
        let token = AccessToken {
            tenant: "t".into(),
            account: "acc_1".into(),
            acting_for: None,
            issued_at: Timestamp(1),
            expires_at: Timestamp(2),
        };
        store.put_access_token("h1", &token).expect("put token");
        changed("put_access_token", &store);
        store.delete_access_token("h1").expect("delete token");
        changed("delete_access_token", &store);
        store.put_access_token("h2", &token).expect("put token");
        changed("put_access_token", &store);
        let unchanged = store.directory_version();
        assert_eq!(store.purge_expired_tokens(Timestamp(1)).expect("purge"), 0);
        assert_eq!(
            store.directory_version(),
            unchanged,
            "a purge that removed nothing"
        );
        assert_eq!(store.purge_expired_tokens(Timestamp(2)).expect("purge"), 1);
        changed("purge_expired_tokens", &store);
        store.revoke_sessions("t", "acc_1").expect("revoke");
        changed("revoke_sessions", &store);
        store.delete_api_account("t", "acc_1").expect("delete");
        changed("delete_api_account", &store);
        let tenant = Tenant {
            name: "u".into(),
            created_at: Timestamp(1),
        };
        let user: User = serde_json::from_value(serde_json::json!({
            "id": "usr_1", "tenant": "u", "name": "n", "authorizations": {}, "password_hash": "",
            "created_at": at, "updated_at": at,
        }))
        .expect("user");
        store
            .create_tenant(
                &tenant,
                &ApiAccount {
                    tenant: "u".into(),
                    ..account
                },
                &user,
            )
            .expect("create tenant");
        changed("create_tenant", &store);
        store.put_user(&user).expect("put user");
        changed("put_user", &store);
        store.delete_user("u", "usr_1").expect("delete user");
        changed("delete_user", &store);
        store.receivers("t", true).expect("read");
        store.api_accounts("t").expect("read");
        assert_eq!(
            seen.last(),
            Some(&store.directory_version()),
            "reads change nothing"
        );
    }

    #[test]
    fn one_publish_batch_stores_each_event_once_per_idempotency_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SledStore::open(dir.path()).expect("open");
        let outcomes = store
            .publish(&[
                publication("evt_1", Some("k")),
                publication("evt_2", None),
                publication("evt_3", Some("k")),
            ])
            .expect("publish");
        assert_eq!(
            outcomes,
            [
                Published::New("evt_1".into()),
                Published::New("evt_2".into()),
                Published::Duplicate("evt_1".into()),
            ]
        );
        let again = store
            .publish(&[publication("evt_4", Some("k"))])
            .expect("publish");
        assert_eq!(again, [Published::Duplicate("evt_1".into())]);
        assert!(store.event("t", "evt_3").expect("read").is_none());
        assert_eq!(pending_jobs(&store), ["evt_1", "evt_2"]);
    }

    #[test]
    fn jobs_set_since_the_last_flush_cost_no_write_and_a_flush_writes_the_pending_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let end = |store: &SledStore, id: &str| {
            let job = FanoutJob {
                tenant: "t".into(),
                event: id.into(),
            };
            let done = FanoutDone {
                job,
                queued: vec![],
                ends: true,
            };
            store.complete_fanout(&[done]).expect("end");
        };
        {
            let store = SledStore::open(dir.path()).expect("open");
            let two = [publication("evt_1", None), publication("evt_2", None)];
            store.publish(&two).expect("publish");
            assert!(store.fanout.is_empty(), "set in memory, not written");
            assert_eq!(pending_jobs(&store), ["evt_1", "evt_2"]);
            store.flush().expect("flush");
            assert_eq!(store.fanout.len(), 2, "written by the flush");
            assert_eq!(pending_jobs(&store), ["evt_1", "evt_2"]);
            // A job replayed from a journal that did not start over after that flush.
            store.publish(&two[1..]).expect("replay");
            assert_eq!(pending_jobs(&store), ["evt_1", "evt_2"]);

            store
                .publish(&[publication("evt_3", None), publication("evt_4", None)])
                .expect("publish");
            assert_eq!(
                pending_jobs(&store),
                ["evt_1", "evt_2", "evt_3", "evt_4"],
                "both kinds, oldest first"
            );
            let first = store.fanout_jobs(3, &|j| j.event == "evt_2").expect("jobs");
            let first: Vec<_> = first.iter().map(|j| j.event.as_str()).collect();
            assert_eq!(first, ["evt_1", "evt_3", "evt_4"]);
            end(&store, "evt_1"); // written
            end(&store, "evt_3"); // in memory
            assert_eq!(store.fanout.len(), 1);
            assert_eq!(pending_jobs(&store), ["evt_2", "evt_4"]);
            store.flush().expect("flush");
        }
        let store = SledStore::open(dir.path()).expect("reopen");
        assert_eq!(pending_jobs(&store), ["evt_2", "evt_4"]);
    }

    #[test]
    fn a_job_whose_deliveries_went_to_the_worker_ends_when_the_last_is_stored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SledStore::open(dir.path()).expect("open");
        store
            .publish(&[publication("evt_1", None)])
            .expect("publish");
        let job = FanoutJob {
            tenant: "t".into(),
            event: "evt_1".into(),
        };
        let queued = Delivery {
            receiver: "rcv_down".into(),
            ..delivery("dlv_queued", 5)
        };
        let done = FanoutDone {
            job: job.clone(),
            queued: vec![queued],
            ends: false,
        };
        store.complete_fanout(&[done]).expect("fan-out");
        assert_eq!(
            pending_jobs(&store),
            ["evt_1"],
            "open while dlv_fresh is out"
        );
        assert!(
            store
                .has_delivery("t", "rcv_down", "dlv_queued")
                .expect("read")
        );
        assert!(!store.has_delivery("t", "rcv_1", "dlv_fresh").expect("read"));
        let skipped = store.fanout_jobs(10, &|j| j == &job).expect("jobs");
        assert!(skipped.is_empty(), "an open job is skipped");

        let mut fresh = delivery("dlv_fresh", 0);
        fresh.status = DeliveryStatus::Delivered;
        fresh.next_attempt_at = None;
        let recorded = Recorded {
            fresh: vec![fresh],
            ended: vec![job],
            ..Recorded::default()
        };
        store.finish_attempts(&recorded).expect("finish");
        assert!(pending_jobs(&store).is_empty());
        assert!(store.has_delivery("t", "rcv_1", "dlv_fresh").expect("read"));
        let query = DeliveryQuery {
            receiver: Some("rcv_1".into()),
            limit: 10,
            ..DeliveryQuery::default()
        };
        let logged = store.deliveries("t", &query).expect("log");
        assert_eq!(ids(&logged), ["dlv_fresh"], "in its receiver's log");
        assert_eq!(store.queued().expect("queued"), 1, "only dlv_queued waits");
    }

    #[test]
    fn attempts_recorded_together_are_stored_queued_and_end_their_jobs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SledStore::open(dir.path()).expect("open");
        store
            .publish(&[publication("evt_1", None), publication("evt_2", None)])
            .expect("publish");
        let job = |event: &str| FanoutJob {
            tenant: "t".into(),
            event: event.into(),
        };
        let mut delivered = delivery("dlv_delivered", 0);
        delivered.status = DeliveryStatus::Delivered;
        delivered.next_attempt_at = None;
        let retried = Delivery {
            receiver: "rcv_2".into(),
            ..delivery("dlv_retried", 5)
        };
        let recorded = Recorded {
            fresh: vec![delivered, retried],
            ended: vec![job("evt_1")],
            ..Recorded::default()
        };
        store.finish_attempts(&recorded).expect("finish");
        assert_eq!(pending_jobs(&store), ["evt_2"], "only the job that ended");
        assert!(
            store
                .has_delivery("t", "rcv_1", "dlv_delivered")
                .expect("read")
        );
        assert!(
            store
                .has_delivery("t", "rcv_2", "dlv_retried")
                .expect("read")
        );
        let due = store
            .claim_due(Timestamp(10), 10, &any_room)
            .expect("claim");
        assert_eq!(ids(&due), ["dlv_retried"], "only the one queued again");
    }

    #[test]
    fn a_body_that_is_the_events_payload_is_stored_once_and_read_from_the_event() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SledStore::open(dir.path()).expect("open");
        // Numbers, escapes and a key order the stored text must give back as they were.
        let mut published = publication("evt_1", None);
        published.event.payload = Event::payload_of(&serde_json::json!({
            "z": 0.1 + 0.2, "a": [1e300, -0.0, u64::MAX], "s": "é \"q\" \u{1}"
        }));
        let event = published.event.clone();
        store.publish(&[published]).expect("publish");
        let payload = String::from_utf8(event.payload_bytes()).expect("UTF-8");
        let shared = |id: &str, due: u64| Delivery {
            request_body: payload.clone(),
            body_is_payload: true,
            ..delivery(id, due)
        };
        let mut delivered = shared("dlv_delivered", 0);
        delivered.status = DeliveryStatus::Delivered;
        delivered.next_attempt_at = None;
        let recorded = Recorded {
            fresh: vec![delivered, shared("dlv_retried", 5)],
            ..Recorded::default()
        };
        store.finish_attempts(&recorded).expect("finish");
        let stored = store
            .deliveries
            .get(delivery_key("t", "rcv_1", "dlv_delivered"))
            .expect("read")
            .expect("stored");
        assert!(
            !stored
                .windows(payload.len())
                .any(|w| w == payload.as_bytes()),
            "the payload is not stored again"
        );
        let read = delivery_in(&store, "dlv_delivered");
        assert_eq!(read.request_body, payload);
        let listed = store
            .deliveries(
                "t",
                &DeliveryQuery {
                    limit: 10,
                    ..DeliveryQuery::default()
                },
            )
            .expect("list");
        assert_eq!(listed.len(), 2);
        assert!(listed.iter().all(|d| d.request_body == payload));
        let due = store
            .claim_due(Timestamp(10), 10, &any_room)
            .expect("claim");
        assert_eq!(ids(&due), ["dlv_retried"]);
        assert_eq!(due[0].request_body, payload, "sent as it was first");
        // Retention empties it like any other body.
        assert_eq!(store.prune_bodies(Timestamp(1)).expect("prune"), 1);
        let pruned = delivery_in(&store, "dlv_delivered");
        assert!(pruned.body_pruned && pruned.request_body.is_empty());
    }

    #[test]
    fn retention_empties_only_old_finished_bodies() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SledStore::open(dir.path()).expect("open");
        let mut done = delivery("dlv_done", 0);
        done.status = DeliveryStatus::Delivered;
        done.next_attempt_at = None;
        let pending = delivery("dlv_pending", 5);
        fan_out(&store, vec![done, pending]);
        assert_eq!(store.prune_bodies(Timestamp(1)).expect("prune"), 1);
        let done = delivery_in(&store, "dlv_done");
        assert!(done.body_pruned && done.request_body.is_empty());
        let pending = delivery_in(&store, "dlv_pending");
        assert_eq!(pending.request_body, "{}");
        assert_eq!(store.prune_bodies(Timestamp(1)).expect("prune"), 0);
    }
}
