//! Types with no I/O: ids, tenants, accounts, receivers, events, deliveries.

mod account;
mod audit;
mod delivery;
mod event;
pub mod ids;
mod receiver;
mod tenant;
mod time;
pub mod topics;

pub use account::{ApiAccount, Authorizations, User, permissions};
pub use audit::AuditEntry;
pub use delivery::{Attempt, Delivery, DeliveryStatus};
pub use event::{Event, Subject};
pub use receiver::{PluginRef, Receiver};
pub use tenant::Tenant;
pub use time::Timestamp;
