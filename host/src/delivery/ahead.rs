//! Deliveries claimed ahead of their slot. While a receiver's backlog drains, a slot that
//! goes back would stay idle until the worker's next claim, about a millisecond of store
//! work; measured, the claims then bound the drain, not the CPU. So the worker also
//! claims successors for attempts already running: a successor waits behind one of its
//! receiver's attempts and starts on that attempt's slot as soon as it ends, without a
//! claim in between.
//!
//! Two promises hold. A successor is marked in flight in the store while it waits, and
//! the stuck-delivery check queues again what stays in flight too long, so its wait is
//! bounded: a receiver holds at most as many successors as it has attempts running, and
//! each attempt that ends starts the first one waiting, so each waits for one attempt at
//! most (the worker claims successors only when `jobs.stuck_after` is at least two
//! attempts long). And a slot kept this way is never one that a delivery to another
//! receiver could have had: the worker claims successors only while some slots are
//! free, so with every slot taken the chains end within an attempt, and the slots go
//! back to be shared as before.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::dispatch::Parties;
use crate::domain::Delivery;

/// A claimed delivery and its parties (`None`: they could not be read, and the
/// stuck-delivery check queues it again).
pub type Claimed = (Delivery, Option<Parties>);

/// The successors waiting behind each receiver's running attempts.
#[derive(Debug, Default)]
pub struct Ahead {
    lanes: Mutex<HashMap<String, Lane>>,
    /// Set at shutdown: no successor starts any more.
    closed: AtomicBool,
}

/// One receiver's (`tenant/receiver`) running attempts and the successors behind them.
#[derive(Debug)]
struct Lane {
    running: usize,
    waiting: VecDeque<Claimed>,
}

impl Ahead {
    /// An attempt of `lane` starts; when it ends, [`Self::ended`] must be called.
    pub fn started(&self, lane: &str) {
        let mut lanes = self.lanes();
        match lanes.get_mut(lane) {
            Some(entry) => entry.running += 1,
            None => {
                let entry = Lane {
                    running: 1,
                    waiting: VecDeque::new(),
                };
                lanes.insert(lane.to_owned(), entry);
            }
        }
    }

    /// An attempt of `lane` ended: the successor to run on its slot, if one waits;
    /// otherwise the attempt no longer counts, and its slot should go back.
    pub fn ended(&self, lane: &str) -> Option<Claimed> {
        let mut lanes = self.lanes();
        let entry = lanes.get_mut(lane)?;
        if !self.closed.load(Ordering::SeqCst)
            && let Some(next) = entry.waiting.pop_front()
        {
            return Some(next);
        }
        entry.running -= 1;
        if entry.running == 0 && entry.waiting.is_empty() {
            lanes.remove(lane);
        }
        None
    }

    /// Puts `claimed` behind a running attempt of `lane`; gives it back when each of them
    /// has a successor already (or none runs, or the worker is stopping).
    pub fn wait(&self, lane: &str, claimed: Claimed) -> Option<Claimed> {
        let mut lanes = self.lanes();
        match lanes.get_mut(lane) {
            Some(entry)
                if entry.waiting.len() < entry.running && !self.closed.load(Ordering::SeqCst) =>
            {
                entry.waiting.push_back(claimed);
                None
            }
            _ => Some(claimed),
        }
    }

    /// How many more successors each receiver with running attempts can take.
    pub fn room(&self) -> HashMap<String, usize> {
        self.lanes()
            .iter()
            .map(|(lane, entry)| {
                (
                    lane.clone(),
                    entry.running.saturating_sub(entry.waiting.len()),
                )
            })
            .filter(|(_, room)| *room > 0)
            .collect()
    }

    /// Starts no successor from now on. Those still waiting stay in flight in the store,
    /// and are queued again at the next start. Returns how many.
    pub fn close(&self) -> usize {
        self.closed.store(true, Ordering::SeqCst);
        self.lanes().values().map(|l| l.waiting.len()).sum()
    }

    fn lanes(&self) -> MutexGuard<'_, HashMap<String, Lane>> {
        self.lanes.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The lane of a tenant's receiver: how [`Ahead`] and the slots name it.
pub fn lane(tenant: &str, receiver: &str) -> String {
    format!("{tenant}/{receiver}")
}

/// The lane of `delivery`'s receiver.
pub fn lane_of(delivery: &Delivery) -> String {
    lane(&delivery.tenant, &delivery.receiver)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{DeliveryStatus, Timestamp};

    fn claimed(id: &str) -> Claimed {
        let delivery = Delivery {
            id: id.into(),
            tenant: "t".into(),
            receiver: "r".into(),
            event: "evt_1".into(),
            topic: "Cases.Update".into(),
            status: DeliveryStatus::Pending,
            status_code: None,
            attempts: vec![],
            next_attempt_at: Some(Timestamp(1)),
            request_body: "{}".into(),
            content_type: "application/json".into(),
            error: None,
            created_at: Timestamp(1),
            body_pruned: false,
            body_is_payload: false,
        };
        (delivery, None)
    }

    fn id(next: Option<Claimed>) -> Option<String> {
        next.map(|(d, _)| d.id)
    }

    #[test]
    fn a_successor_waits_behind_one_running_attempt_and_takes_its_place() {
        let ahead = Ahead::default();
        assert!(ahead.wait("t/r", claimed("d1")).is_some(), "nothing runs");
        ahead.started("t/r");
        ahead.started("t/r");
        assert_eq!(ahead.room().get("t/r"), Some(&2));
        assert!(ahead.wait("t/r", claimed("d1")).is_none());
        assert!(ahead.wait("t/r", claimed("d2")).is_none());
        assert!(
            ahead.wait("t/r", claimed("d3")).is_some(),
            "one successor per running attempt"
        );
        assert!(ahead.room().is_empty());
        assert!(ahead.wait("t/other", claimed("d3")).is_some());

        assert_eq!(
            id(ahead.ended("t/r")),
            Some("d1".into()),
            "first come first"
        );
        assert_eq!(ahead.room().get("t/r"), Some(&1), "still two running");
        assert_eq!(id(ahead.ended("t/r")), Some("d2".into()));
        assert_eq!(id(ahead.ended("t/r")), None, "its slot goes back");
        assert_eq!(ahead.room().get("t/r"), Some(&1));
        assert_eq!(id(ahead.ended("t/r")), None);
        assert!(ahead.room().is_empty());
        assert!(ahead.lanes().is_empty(), "no lane left behind");
    }

    #[test]
    fn once_closed_no_successor_starts_or_waits() {
        let ahead = Ahead::default();
        ahead.started("t/r");
        ahead.started("t/r");
        assert!(ahead.wait("t/r", claimed("d1")).is_none());
        assert_eq!(ahead.close(), 1, "one left in flight");
        assert!(ahead.wait("t/r", claimed("d2")).is_some());
        assert_eq!(id(ahead.ended("t/r")), None);
        assert_eq!(id(ahead.ended("t/r")), None);
        assert_eq!(ahead.room().get("t/r"), None);
    }
}
