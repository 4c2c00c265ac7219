//! The delivery queue on sled, in lanes: one per receiver, so the worker can take due
//! deliveries only for receivers with a free slot and never has to step over a slow
//! receiver's backlog.
//!
//! Three trees, always changed together in one transaction:
//! - `queue`: `tenant/receiver/` ‖ due ms (8 bytes, big-endian) ‖ delivery id: a lane's
//!   deliveries in due order (a prefix scan);
//! - `lanes`: due ms ‖ `tenant/receiver`: every lane with something queued, at a time no
//!   later than its earliest delivery (a range scan finds the lanes with work due);
//! - `lane_due`: `tenant/receiver` → the due ms its `lanes` entry has.
//!
//! Dequeuing may leave a lane's `lanes` entry earlier than its first delivery; the next
//! claim on that lane sets it right. An entry is never later than the lane's first
//! delivery, so nothing queued is ever skipped.

use sled::transaction::{ConflictableTransactionError, TransactionalTree};

use crate::domain::{Delivery, Timestamp};

pub(super) type TxResult<T> = std::result::Result<T, ConflictableTransactionError<super::Error>>;

/// The lane of a receiver: `tenant/receiver`.
pub fn lane(tenant: &str, receiver: &str) -> String {
    format!("{tenant}/{receiver}")
}

/// The `queue` key prefix of a lane.
pub fn prefix(lane: &str) -> Vec<u8> {
    format!("{lane}/").into_bytes()
}

/// The `queue` key of a delivery due at `due`.
pub fn queue_key(delivery: &Delivery, due: Timestamp) -> Vec<u8> {
    let mut k = prefix(&lane(&delivery.tenant, &delivery.receiver));
    k.extend_from_slice(&due.ms().to_be_bytes());
    k.extend_from_slice(delivery.id.as_bytes());
    k
}

/// The `lanes` key of a lane due at `due`.
pub fn lanes_key(due: u64, lane: &str) -> Vec<u8> {
    let mut k = due.to_be_bytes().to_vec();
    k.extend_from_slice(lane.as_bytes());
    k
}

/// The lane a `lanes` key names.
pub fn lane_of(lanes_key: &[u8]) -> Option<&str> {
    std::str::from_utf8(lanes_key.get(8..)?).ok()
}

/// Reads 8 big-endian bytes at `at`, if there are that many.
pub fn ms_at(bytes: &[u8], at: usize) -> Option<u64> {
    let raw = bytes.get(at..at + 8)?;
    Some(u64::from_be_bytes(raw.try_into().ok()?))
}

/// The three queue trees inside a transaction.
pub struct LanesTx<'a> {
    /// `queue`.
    pub queue: &'a TransactionalTree,
    /// `lanes`.
    pub lanes: &'a TransactionalTree,
    /// `lane_due`.
    pub lane_due: &'a TransactionalTree,
}

impl LanesTx<'_> {
    /// Queues `delivery` at its `next_attempt_at`, if it has one.
    pub fn enqueue(&self, delivery: &Delivery) -> TxResult<()> {
        let Some(due) = delivery.next_attempt_at else {
            return Ok(());
        };
        self.queue.insert(queue_key(delivery, due), &[])?;
        let lane = lane(&delivery.tenant, &delivery.receiver);
        let current = self
            .lane_due
            .get(lane.as_bytes())?
            .and_then(|v| ms_at(&v, 0));
        if current.is_none_or(|c| due.ms() < c) {
            self.set_due(&lane, current, Some(due.ms()))?;
        }
        Ok(())
    }

    /// Takes `delivery` off the queue if it is queued at its `next_attempt_at`.
    pub fn dequeue(&self, delivery: &Delivery) -> TxResult<()> {
        if let Some(due) = delivery.next_attempt_at {
            self.queue.remove(queue_key(delivery, due))?;
        }
        Ok(())
    }

    /// Moves a lane's `lanes` entry from `from` to `to` (`None`: no entry).
    pub fn set_due(&self, lane: &str, from: Option<u64>, to: Option<u64>) -> TxResult<()> {
        if let Some(from) = from {
            self.lanes.remove(lanes_key(from, lane))?;
        }
        match to {
            Some(to) => {
                self.lanes.insert(lanes_key(to, lane), &[])?;
                self.lane_due.insert(lane.as_bytes(), &to.to_be_bytes())?;
            }
            None => {
                self.lane_due.remove(lane.as_bytes())?;
            }
        }
        Ok(())
    }
}
