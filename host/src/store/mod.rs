//! The storage seam: one [`Store`] trait, with sled as the embedded implementation.
//!
//! Only this module talks to sled. Calls are synchronous and short; on the async side
//! point reads on the hot path run in place (`App::quick`) and everything else through
//! `spawn_blocking` (`App::blocking`). Durability is explicit: writes become durable at
//! [`GroupCommit::flush`], which many concurrent writers share.

mod commit;
mod fresh;
mod journal;
mod lanes;
mod record;
mod sled_store;

use crate::domain::{
    ApiAccount, AuditEntry, Delivery, DeliveryStatus, Event, Receiver, Tenant, Timestamp, User,
};

pub use commit::GroupCommit;
pub use fresh::{FreshJob, FreshJobs, Scanned};
pub use journal::{Journal, recover};
pub use sled_store::SledStore;

/// What callers of the store branch on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A unique thing already exists (a tenant name, say).
    #[error("{0} already exists")]
    Conflict(String),
    /// The embedded database failed.
    #[error("storage failure: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A stored value could not be decoded.
    #[error("stored data is corrupt: {0}")]
    Corrupt(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Result of the store.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An issued access token, stored under the hash of the token.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AccessToken {
    /// The tenant it is bound to.
    pub tenant: String,
    /// The API account it was issued to.
    pub account: String,
    /// The user it acts for, when issued by impersonation.
    #[serde(default)]
    pub acting_for: Option<String>,
    /// When it was issued.
    pub issued_at: Timestamp,
    /// When it stops working.
    pub expires_at: Timestamp,
}

/// A logged-in admin UI user, stored under the SHA-256 of the session id (the id itself
/// lives only in the browser's cookie).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UiSession {
    /// The tenant it is bound to.
    pub tenant: String,
    /// The user's id.
    pub user: String,
    /// The user's login name.
    pub name: String,
    /// The token every form of this session carries.
    pub csrf: String,
    /// When it stops working.
    pub expires_at: Timestamp,
}

/// What an interactive login remembers between attempts: the last TOTP step accepted (so
/// a code works once) and the failures that lock the login.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LoginGuard {
    /// The last TOTP time step accepted.
    #[serde(default)]
    pub last_totp_step: u64,
    /// Failed logins since the last good one.
    #[serde(default)]
    pub failed_logins: u32,
    /// Logins are refused until then after too many failures.
    #[serde(default)]
    pub locked_until: Option<Timestamp>,
}

/// Which deliveries to list.
#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery {
    /// Only this receiver's.
    pub receiver: Option<String>,
    /// Only this topic's.
    pub topic: Option<String>,
    /// Only those with this status.
    pub status: Option<DeliveryStatus>,
    /// Only those older than this delivery id (the cursor of the previous page).
    pub before: Option<String>,
    /// At most this many.
    pub limit: usize,
}

/// An event to publish.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Publication {
    /// The event.
    pub event: Event,
    /// Its idempotency key, as `(scope, key)`: a key is unique within its scope.
    pub idempotency: Option<(String, String)>,
}

/// The outcome of a publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// The event was stored.
    New(String),
    /// The idempotency key was seen before: this is the event it created.
    Duplicate(String),
}

/// A fan-out job: an event whose deliveries are still to be created or stored.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FanoutJob {
    /// The tenant.
    pub tenant: String,
    /// The event id.
    pub event: String,
}

/// A fan-out job done: the deliveries it stores now.
///
/// Deliveries the router hands straight to the worker are not among them: each is stored
/// once, when its first attempt ends ([`Store::finish_attempts`]), and the job stays
/// pending until the last of them is. After a crash the job runs again and makes the same
/// deliveries (same ids, same `Webhook-Id`), skipping those already stored.
#[derive(Debug, Clone)]
pub struct FanoutDone {
    /// The job.
    pub job: FanoutJob,
    /// Deliveries for the queue, and those that ended without an attempt.
    pub queued: Vec<Delivery>,
    /// Whether the job ends: no delivery of it went straight to the worker.
    pub ends: bool,
}

/// Attempts that ended, for [`Store::finish_attempts`].
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    /// Deliveries the queue handed out (marked in flight).
    pub claimed: Vec<Delivery>,
    /// Deliveries the router handed straight to the worker, stored for the first time.
    pub fresh: Vec<Delivery>,
    /// Fan-out jobs whose last fresh delivery is among `fresh`: they end.
    pub ended: Vec<FanoutJob>,
}

/// Everything the host stores. Implementations must make each method atomic, and each
/// write durable when it returns (a caller answers someone about it), except the event
/// path's: [`Store::publish`] is made durable by the publish journal, and the fan-out,
/// queue and attempt writes are made again from it after a crash (see
/// `docs/ARCHITECTURE.md`, "Crash safety").
pub trait Store: Send + Sync + 'static {
    /// Makes every write so far durable, the fan-out jobs set since the last flush
    /// included (see [`Store::publish`]).
    fn flush(&self) -> Result<()>;

    /// Creates a tenant with its first API account and user, or `Conflict`.
    fn create_tenant(&self, tenant: &Tenant, account: &ApiAccount, user: &User) -> Result<()>;
    /// The tenant with that name.
    fn tenant(&self, name: &str) -> Result<Option<Tenant>>;
    /// Every tenant.
    fn tenants(&self) -> Result<Vec<Tenant>>;

    /// Inserts or replaces an API account.
    fn put_api_account(&self, account: &ApiAccount) -> Result<()>;
    /// An API account of a tenant.
    fn api_account(&self, tenant: &str, id: &str) -> Result<Option<ApiAccount>>;
    /// An API account by id alone (for login, which does not know the tenant yet).
    fn find_api_account(&self, id: &str) -> Result<Option<ApiAccount>>;
    /// A tenant's API accounts.
    fn api_accounts(&self, tenant: &str) -> Result<Vec<ApiAccount>>;
    /// Changes an API account atomically: `change` sees the current value and returns
    /// whether to keep its edits. Returns the account as it ends up.
    fn update_api_account(
        &self,
        tenant: &str,
        id: &str,
        change: &mut dyn FnMut(&mut ApiAccount) -> bool,
    ) -> Result<Option<ApiAccount>>;
    /// Revokes every access token of an API account.
    fn revoke_sessions(&self, tenant: &str, account: &str) -> Result<usize>;
    /// Deletes an API account and its access tokens.
    fn delete_api_account(&self, tenant: &str, id: &str) -> Result<bool>;

    /// Inserts or replaces a user.
    fn put_user(&self, user: &User) -> Result<()>;
    /// A user of a tenant.
    fn user(&self, tenant: &str, id: &str) -> Result<Option<User>>;
    /// A tenant's users.
    fn users(&self, tenant: &str) -> Result<Vec<User>>;
    /// Deletes a user.
    fn delete_user(&self, tenant: &str, id: &str) -> Result<bool>;

    /// Stores an access token under its hash.
    fn put_access_token(&self, hash: &str, token: &AccessToken) -> Result<()>;
    /// The access token with that hash.
    fn access_token(&self, hash: &str) -> Result<Option<AccessToken>>;
    /// Forgets an access token.
    fn delete_access_token(&self, hash: &str) -> Result<bool>;

    /// Appends to the tenant's audit trail.
    fn append_audit(&self, entry: &AuditEntry) -> Result<()>;
    /// The tenant's audit trail, newest first.
    fn audit(&self, tenant: &str, limit: usize) -> Result<Vec<AuditEntry>>;

    /// Inserts or replaces a receiver.
    fn put_receiver(&self, receiver: &Receiver) -> Result<()>;
    /// A receiver of a tenant, removed ones included.
    fn receiver(&self, tenant: &str, id: &str) -> Result<Option<Receiver>>;
    /// A tenant's receivers, oldest first.
    fn receivers(&self, tenant: &str, include_deleted: bool) -> Result<Vec<Receiver>>;
    /// A number that changes with every write to any tenant's API accounts, users, access
    /// tokens or receivers: what was read of them after it was taken is current while it
    /// stays the same.
    fn directory_version(&self) -> u64;

    /// Stores events and sets their fan-out jobs. An event whose idempotency key its scope
    /// already used for another event (before or earlier in `batch`) is not stored: its
    /// outcome names the first event. Not atomic, and the jobs are made durable only by
    /// the next [`Store::flush`]: the caller journals `batch` and starts the journal over
    /// only after a flush, and after a crash calls this again with what the journal
    /// holds. An event already stored is written again as it is (events never change),
    /// and its fan-out job is set again, since it may have been lost with the rest of the
    /// round; a job that had run makes no delivery twice (see [`Store::has_delivery`]).
    fn publish(&self, batch: &[Publication]) -> Result<Vec<Published>>;
    /// An event of a tenant.
    fn event(&self, tenant: &str, id: &str) -> Result<Option<Event>>;
    /// Up to `limit` fan-out jobs not yet done and not to `skip`, oldest first.
    fn fanout_jobs(
        &self,
        limit: usize,
        skip: &dyn Fn(&FanoutJob) -> bool,
    ) -> Result<Vec<FanoutJob>>;
    /// Stores fanned-out events' deliveries, in one transaction (`queued` go on the queue:
    /// those with a `next_attempt_at`), then ends the jobs that end.
    fn complete_fanout(&self, done: &[FanoutDone]) -> Result<()>;

    /// A delivery of a tenant, whichever receiver's it is (one lookup per receiver the
    /// tenant has deliveries for).
    fn delivery(&self, tenant: &str, id: &str) -> Result<Option<Delivery>>;
    /// Whether a delivery of a tenant's receiver is stored.
    fn has_delivery(&self, tenant: &str, receiver: &str, id: &str) -> Result<bool>;
    /// A tenant's deliveries, newest first.
    fn deliveries(&self, tenant: &str, query: &DeliveryQuery) -> Result<Vec<Delivery>>;
    /// Takes up to `limit` deliveries due at `now` off the queue, at most `room(tenant,
    /// receiver)` for each receiver, and marks them in flight.
    fn claim_due(
        &self,
        now: Timestamp,
        limit: usize,
        room: &dyn Fn(&str, &str) -> usize,
    ) -> Result<Vec<Delivery>>;
    /// Puts claimed deliveries that were not attempted back on the queue as they were,
    /// no longer in flight, in one transaction.
    fn release_claimed(&self, deliveries: &[Delivery]) -> Result<()>;
    /// How many deliveries wait on the queue.
    fn queued(&self) -> Result<usize>;
    /// When the earliest delivery queued for a receiver with `room` is due (no later).
    fn next_due(&self, room: &dyn Fn(&str, &str) -> usize) -> Result<Option<Timestamp>>;
    /// Stores deliveries after their attempts and ends the jobs that ended: claimed ones
    /// are no longer in flight, and each is queued again when its `next_attempt_at` is
    /// set, atomically. A job ends only once its fresh deliveries are stored, and a
    /// failure leaves it pending.
    fn finish_attempts(&self, recorded: &Recorded) -> Result<()>;
    /// Puts a delivery back on the queue at its `next_attempt_at` (a manual resend).
    fn requeue(&self, delivery: &Delivery) -> Result<()>;
    /// Puts every delivery left in flight (by a crash) back on the queue, due at `now`.
    /// Returns how many.
    fn recover_in_flight(&self, now: Timestamp) -> Result<usize>;
    /// Queues again, due at `now`, the deliveries claimed before `claimed_before` and
    /// still in flight (their attempt died without an answer). Returns how many.
    fn recover_stuck(&self, claimed_before: Timestamp, now: Timestamp) -> Result<usize>;
    /// Empties the bodies of finished deliveries created before `before`. Returns how many.
    fn prune_bodies(&self, before: Timestamp) -> Result<usize>;
    /// Forgets access tokens that expired before `now`. Returns how many.
    fn purge_expired_tokens(&self, now: Timestamp) -> Result<usize>;

    /// Stores an admin UI session under the hash of its id.
    fn put_ui_session(&self, hash: &str, session: &UiSession) -> Result<()>;
    /// The admin UI session with that hash, expired or not.
    fn ui_session(&self, hash: &str) -> Result<Option<UiSession>>;
    /// Ends an admin UI session.
    fn delete_ui_session(&self, hash: &str) -> Result<bool>;
    /// Forgets admin UI sessions that expired before `now`. Returns how many.
    fn purge_expired_ui_sessions(&self, now: Timestamp) -> Result<usize>;
    /// Changes a user's login guard atomically, like [`Store::update_api_account`]:
    /// `change` sees the current value (the default when none is stored) and returns
    /// whether to keep its edits. Returns the guard as it ends up.
    fn update_login_guard(
        &self,
        tenant: &str,
        user: &str,
        change: &mut dyn FnMut(&mut LoginGuard) -> bool,
    ) -> Result<LoginGuard>;
}
