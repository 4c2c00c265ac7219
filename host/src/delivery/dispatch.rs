//! Slots for attempts: at most `delivery.concurrency` in flight, and at most
//! `per_receiver_concurrency` per receiver, so one slow receiver cannot take every slot.
//!
//! Deliveries reach the worker two ways. The router hands a fresh delivery over directly
//! when a slot is free at once ([`Dispatch::reserve`], [`Dispatch::hand_off`]); it is not
//! stored until its attempt ends, its fan-out job stays open meanwhile
//! ([`Dispatch::open_jobs`]), a lookup by its id answers from a copy kept until then
//! ([`Dispatch::unlogged`]), and it comes with its receiver, API account and event, so
//! the attempt starts without touching the store. Everything else waits in
//! the store's queue, which hands out only what each receiver has room for
//! ([`Dispatch::room`]). The router fans out only while slots are free
//! ([`Dispatch::free`], [`Dispatch::freed`]): a delivery made while every slot is taken
//! could only wait in the queue, and be read back from it, where the event waiting for
//! fan-out costs nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};

use super::ahead::{lane, lane_of};
use super::{Ahead, OpenJobs};
use crate::config::DeliveryConfig;
use crate::domain::{ApiAccount, Delivery, Event, Receiver};
use crate::store::FanoutJob;

/// What an attempt needs besides the delivery, shared with the other deliveries of the
/// same batch.
#[derive(Debug)]
pub struct Parties {
    /// The receiver, removed ones included (`None`: gone from the store).
    pub receiver: Option<Arc<Receiver>>,
    /// The receiver's API account.
    pub account: Option<Arc<ApiAccount>>,
    /// The event.
    pub event: Option<Arc<Event>>,
}

/// A fresh delivery handed from the router to the worker, with its slot.
#[derive(Debug)]
pub struct Handoff {
    /// The delivery, not stored yet.
    pub delivery: Delivery,
    /// The fan-out job that made it, open until the delivery is stored.
    pub job: FanoutJob,
    /// Its receiver, API account and event as the router read them.
    pub parties: Parties,
    /// Its slot.
    pub slot: Slot,
}

/// An attempt's hold on a global slot and on its receiver's share; released on drop.
#[derive(Debug)]
pub struct Slot {
    permit: Option<OwnedSemaphorePermit>,
    lanes: Arc<Lanes>,
    lane: String,
}

impl Slot {
    /// The receiver it is for, as `tenant/receiver`.
    pub fn lane(&self) -> &str {
        &self.lane
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut busy = self.lanes.busy();
        if let Some(count) = busy.get_mut(&self.lane) {
            *count -= 1;
            if *count == 0 {
                busy.remove(&self.lane);
            }
        }
        drop(busy);
        self.lanes.released.fetch_add(1, Ordering::SeqCst);
        // The permit goes back before the router hears of it.
        drop(self.permit.take());
        self.lanes.freed.notify_one();
    }
}

/// Global slots held for a claim ([`Dispatch::hold_free`]); those not taken go back on
/// drop, and the router hears of it.
#[derive(Debug)]
pub struct Held {
    permits: Vec<OwnedSemaphorePermit>,
    lanes: Arc<Lanes>,
}

impl Held {
    /// How many are held.
    pub fn len(&self) -> usize {
        self.permits.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.permits.is_empty()
    }

    /// One held slot's permit, for [`Dispatch::slot`].
    pub fn take(&mut self) -> Option<OwnedSemaphorePermit> {
        self.permits.pop()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if !self.permits.is_empty() {
            self.permits.clear();
            self.lanes.freed.notify_one();
        }
    }
}

/// Attempts in flight per receiver (`tenant/receiver`).
#[derive(Debug, Default)]
struct Lanes {
    busy: Mutex<HashMap<String, usize>>,
    /// Signalled whenever a slot goes back.
    freed: Notify,
    /// How many slots went back so far (see [`Room::outdated`]).
    released: AtomicU64,
}

impl Lanes {
    fn busy(&self) -> MutexGuard<'_, HashMap<String, usize>> {
        self.busy.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The slots, shared by the router and the worker.
#[derive(Debug)]
pub struct Dispatch {
    sending: Arc<Semaphore>,
    capacity: usize,
    per_receiver: usize,
    lanes: Arc<Lanes>,
    handoffs: mpsc::UnboundedSender<Handoff>,
    /// Set when due work may have been left queued for want of a slot: a freed slot
    /// should then wake the worker to claim again.
    starved: Arc<AtomicBool>,
    open_jobs: OpenJobs,
    ahead: Ahead,
    /// Fresh deliveries handed to the worker and not stored yet, by id, as they were
    /// handed over, so the log can answer for them meanwhile.
    unlogged: Mutex<HashMap<String, Delivery>>,
}

impl Dispatch {
    /// The slots for `config`, and the worker's end of the hand-over.
    pub fn new(config: &DeliveryConfig) -> (Self, mpsc::UnboundedReceiver<Handoff>) {
        let (handoffs, received) = mpsc::unbounded_channel();
        let dispatch = Self {
            sending: Arc::new(Semaphore::new(config.concurrency)),
            capacity: config.concurrency,
            per_receiver: config.per_receiver_concurrency,
            lanes: Arc::default(),
            handoffs,
            starved: Arc::default(),
            open_jobs: OpenJobs::default(),
            ahead: Ahead::default(),
            unlogged: Mutex::default(),
        };
        (dispatch, received)
    }

    /// A slot for a delivery to `receiver` of `tenant`, if one is free right now.
    pub fn reserve(&self, tenant: &str, receiver: &str) -> Option<Slot> {
        let lane = lane(tenant, receiver);
        let mut busy = self.lanes.busy();
        let count = match busy.get_mut(&lane) {
            Some(count) => count,
            None => busy.entry(lane.clone()).or_default(),
        };
        let permit = (*count < self.per_receiver)
            .then(|| self.sending.clone().try_acquire_owned().ok())
            .flatten();
        let Some(permit) = permit else {
            if *count == 0 {
                busy.remove(&lane);
            }
            return None;
        };
        *count += 1;
        drop(busy);
        Some(Slot {
            permit: Some(permit),
            lanes: self.lanes.clone(),
            lane,
        })
    }

    /// Every global slot free now, held for a claim (so the router cannot take them
    /// meanwhile); those left unused go back when dropped.
    pub fn hold_free(&self) -> Held {
        let permits: Vec<_> =
            std::iter::from_fn(|| self.sending.clone().try_acquire_owned().ok()).collect();
        if permits.is_empty() {
            self.starved.store(true, Ordering::Release);
        }
        Held {
            permits,
            lanes: self.lanes.clone(),
        }
    }

    /// Global slots free now.
    pub fn free(&self) -> usize {
        self.sending.available_permits()
    }

    /// Every global slot, free or taken.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Resolves once a slot went back (since the last call, or now).
    pub async fn freed(&self) {
        self.lanes.freed.notified().await;
    }

    /// The slot of a delivery the queue handed out within [`Self::room`], on a permit
    /// from [`Held::take`].
    pub fn slot(&self, permit: OwnedSemaphorePermit, delivery: &Delivery) -> Slot {
        let lane = lane_of(delivery);
        *self.lanes.busy().entry(lane.clone()).or_default() += 1;
        Slot {
            permit: Some(permit),
            lanes: self.lanes.clone(),
            lane,
        }
    }

    /// Gives a fresh delivery to the worker; its job must be open. Until the delivery is
    /// stored ([`Self::logged`]), [`Self::unlogged`] shows it as it was handed over.
    pub fn hand_off(&self, handoff: Handoff) {
        let id = handoff.delivery.id.clone();
        self.unlogged_deliveries()
            .insert(id.clone(), handoff.delivery.clone());
        // The worker is gone only at shutdown: the job stays pending in the store and
        // runs again at the next start.
        if self.handoffs.send(handoff).is_err() {
            self.unlogged_deliveries().remove(&id);
        }
    }

    /// A fresh delivery of `tenant` that is with the worker and not stored yet, as it
    /// was handed over (pending, no attempt yet).
    pub fn unlogged(&self, tenant: &str, id: &str) -> Option<Delivery> {
        self.unlogged_deliveries()
            .get(id)
            .filter(|d| d.tenant == tenant)
            .cloned()
    }

    /// Fresh deliveries whose record was written, or failed to be (their job runs again
    /// and hands them over again).
    pub fn logged(&self, deliveries: &[Delivery]) {
        let mut unlogged = self.unlogged_deliveries();
        for delivery in deliveries {
            unlogged.remove(&delivery.id);
        }
    }

    fn unlogged_deliveries(&self) -> MutexGuard<'_, HashMap<String, Delivery>> {
        self.unlogged.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The fan-out jobs whose handed-off deliveries are not stored yet.
    pub fn open_jobs(&self) -> &OpenJobs {
        &self.open_jobs
    }

    /// The deliveries claimed ahead of their slots.
    pub fn ahead(&self) -> &Ahead {
        &self.ahead
    }

    /// How much room each receiver has now, as the store's claim asks it.
    pub fn room(&self) -> Room {
        let released = self.lanes.released.load(Ordering::SeqCst);
        Room {
            limit: self.per_receiver,
            busy: self.lanes.busy().clone(),
            released,
            lanes: self.lanes.clone(),
            starved: self.starved.clone(),
            found_full: AtomicBool::new(false),
        }
    }

    /// Notes that a claim may have left due work queued (it took all it could).
    pub fn mark_starved(&self) {
        self.starved.store(true, Ordering::SeqCst);
    }

    /// Whether a freed slot should wake the worker; clears the mark.
    pub fn take_starved(&self) -> bool {
        self.starved.swap(false, Ordering::SeqCst)
    }
}

/// Each receiver's room as it was when taken ([`Dispatch::room`]). A receiver found full
/// marks the queue starved, so that the next slot to go back wakes the worker.
#[derive(Debug)]
pub struct Room {
    limit: usize,
    busy: HashMap<String, usize>,
    released: u64,
    lanes: Arc<Lanes>,
    starved: Arc<AtomicBool>,
    found_full: AtomicBool,
}

impl Room {
    /// The room of `receiver` of `tenant`.
    pub fn of(&self, tenant: &str, receiver: &str) -> usize {
        let taken = self.busy.get(&lane(tenant, receiver)).copied();
        let room = self.limit.saturating_sub(taken.unwrap_or(0));
        if room == 0 {
            self.starved.store(true, Ordering::SeqCst);
            self.found_full.store(true, Ordering::SeqCst);
        }
        room
    }

    /// Whether a receiver was found full and a slot went back since the snapshot: that
    /// slot may have gone back before the queue was marked starved, so that nobody was
    /// woken for it, and what waits for it must be claimed again rather than waited for.
    /// (A slot that went back after the mark wakes the worker.)
    pub fn outdated(&self) -> bool {
        self.found_full.load(Ordering::SeqCst)
            && self.lanes.released.load(Ordering::SeqCst) != self.released
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dispatch(concurrency: usize, per_receiver: usize) -> Dispatch {
        let config = DeliveryConfig {
            concurrency,
            per_receiver_concurrency: per_receiver,
            ..DeliveryConfig::default()
        };
        Dispatch::new(&config).0
    }

    #[tokio::test]
    async fn the_router_hears_of_every_slot_that_goes_back() {
        use std::time::Duration;
        let d = dispatch(2, 2);
        let heard = |wait_ms| tokio::time::timeout(Duration::from_millis(wait_ms), d.freed());
        let slot = d.reserve("t", "a").expect("free");
        let mut held = d.hold_free();
        let none = d.hold_free();
        assert!(none.is_empty());
        assert_eq!((held.len(), d.free()), (1, 0));
        drop(none);
        assert!(heard(50).await.is_err(), "nothing went back");
        drop(slot);
        assert!(heard(5_000).await.is_ok(), "an ended attempt's slot");
        assert!(held.take().is_some());
        assert!(held.is_empty());
        drop(held);
        assert!(
            heard(50).await.is_err(),
            "a taken permit is not given back by the hold"
        );
        let held = d.hold_free();
        drop(held);
        assert!(
            heard(5_000).await.is_ok(),
            "slots a claim held and did not use"
        );
        assert_eq!(d.free(), 2);
    }

    #[test]
    fn a_full_receiver_whose_slots_went_back_before_it_was_seen_full_is_claimed_again() {
        let d = dispatch(4, 2);
        let a = [d.reserve("t", "a"), d.reserve("t", "a")];
        let room = d.room();
        // Every attempt ends after the snapshot and before the receiver is found full:
        // the queue is not starved yet, so no ending wakes the worker.
        drop(a);
        assert!(!d.take_starved());
        assert_eq!(room.of("t", "a"), 0, "full as the snapshot saw it");
        assert!(
            room.outdated(),
            "claim again: nothing else will wake the worker"
        );

        let room = d.room();
        assert_eq!(room.of("t", "a"), 2);
        assert!(!room.outdated(), "no receiver was found full");
        let b = [d.reserve("t", "b"), d.reserve("t", "b")];
        let room = d.room();
        assert_eq!(room.of("t", "b"), 0);
        assert!(!room.outdated(), "nothing went back since");
        assert!(
            d.take_starved(),
            "the next slot to go back wakes the worker"
        );
        drop(b);
    }

    #[test]
    fn slots_are_shared_fairly_and_come_back_on_drop() {
        let d = dispatch(3, 2);
        let a1 = d.reserve("t", "a").expect("free");
        let a2 = d.reserve("t", "a").expect("free");
        assert!(d.reserve("t", "a").is_none(), "a's share is taken");
        assert_eq!(d.room().of("t", "a"), 0);
        assert_eq!(d.room().of("t", "b"), 2);
        assert!(d.take_starved(), "a full receiver was seen");
        let b1 = d.reserve("t", "b").expect("one global slot left");
        assert!(d.reserve("t", "c").is_none(), "no global slot left");
        assert!(d.hold_free().is_empty());
        drop(a1);
        assert_eq!(d.room().of("t", "a"), 1);
        let a3 = d.reserve("t", "a").expect("freed");
        drop((a2, a3, b1));
        let held = d.hold_free();
        assert_eq!(held.len(), 3);
        assert!(d.reserve("t", "a").is_none(), "held for a claim");
        drop(held);
        assert!(d.lanes.busy().is_empty(), "no lane left behind");
    }
}
