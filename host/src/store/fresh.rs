//! Fan-out jobs handed from the committer to the router in memory.
//!
//! Every published event's fan-out job is set in the store (kept in memory until the
//! store's next flush), where it stays until its deliveries are written. Finding those
//! jobs again means scanning the store's job list, which also holds every job whose
//! deliveries are with the worker, and reading each event back. So while nothing else
//! is pending, the committer hands each round's new jobs, with their events, to the
//! router through [`FreshJobs`] once the round is durable, and the router takes them
//! from here. Such a job has never run, so its deliveries need no check against the
//! store either.
//!
//! The router scans the store instead when a job may be pending that the feed will not
//! bring: at start-up (the journal's replay), after the feed filled up, after a failed
//! fan-out round, and when a job must run again because a delivery of it was not stored.
//! A full feed stops taking jobs and keeps what it holds for the router; the scans start
//! once that is taken. [`FreshJobs::stop`] switches the feed off and drops what it holds
//! (those jobs are in the store). A scan that finds every pending job switches it on
//! again. A scan and a round's writes to the store exclude each other, so every job is
//! either found by the scan or handed over by its round after it, never both; a round
//! that decided to hand its jobs over before the feed went off hands nothing (its jobs
//! were written before, so the scans after it find them).
//!
//! A scan tells whether the jobs it found may have run before ([`Scanned::may_have_run`]),
//! and so whether their deliveries must be looked up. From start-up, and from every stop,
//! until a scan has found every pending job, they may: a job pending at start-up may have
//! run before a crash, and a stop is how a job that ran is made pending again. After
//! such a scan, every job a scan can find was refused by a full feed and never ran.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use super::{FanoutJob, Result};
use crate::domain::Event;

/// Jobs the feed holds at most; a round that would pass this, or [`CAPACITY_BYTES`],
/// finds the feed full.
pub const CAPACITY: usize = 8192;

/// Journaled bytes of the events the feed holds, at most.
pub const CAPACITY_BYTES: usize = 8 << 20;

/// A job fresh from the committer, with its event.
#[derive(Debug, Clone)]
pub struct FreshJob {
    /// The job.
    pub job: FanoutJob,
    /// Its event, as stored.
    pub event: Arc<Event>,
}

impl FreshJob {
    /// The job of `event`.
    pub fn new(event: Event) -> Self {
        Self {
            job: FanoutJob {
                tenant: event.tenant.clone(),
                event: event.id.clone(),
            },
            event: Arc::new(event),
        }
    }
}

/// The feed of fresh jobs (see the module's documentation).
#[derive(Debug, Default)]
pub struct FreshJobs {
    /// Held by a round while it writes its jobs to the store, and by a scan.
    writes: Mutex<()>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Whether rounds hand their jobs over; off until the first scan found everything.
    on: bool,
    /// Counts the times the feed went off, so a round decided before hands nothing over
    /// after.
    epoch: u64,
    /// Whether every pending job a scan can find is known never to have run: set by a
    /// scan that found every pending job, cleared by a stop (see the module's
    /// documentation).
    unrun: bool,
    /// With each job's share of its round's journal record.
    jobs: VecDeque<(FreshJob, usize)>,
    /// The shares summed.
    bytes: usize,
}

/// Jobs a scan found.
#[derive(Debug)]
pub struct Scanned<T> {
    /// The jobs.
    pub jobs: Vec<T>,
    /// Whether any of them may have run before, so that some of its deliveries may be
    /// stored already.
    pub may_have_run: bool,
}

/// A round's right to hand its jobs over, taken while it wrote them.
#[derive(Debug)]
#[must_use]
pub struct Ticket(Option<u64>);

/// A round writing its jobs to the store.
pub struct Writing<'a> {
    feed: &'a FreshJobs,
    _held: MutexGuard<'a, ()>,
}

impl Writing<'_> {
    /// The jobs are written: whether they will be handed over.
    pub fn written(self) -> Ticket {
        let state = self.feed.state();
        Ticket(state.on.then_some(state.epoch))
    }
}

impl FreshJobs {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn hold_writes(&self) -> MutexGuard<'_, ()> {
        self.writes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The committer is about to write a round's jobs to the store.
    pub fn writing(&self) -> Writing<'_> {
        Writing {
            feed: self,
            _held: self.hold_writes(),
        }
    }

    /// The round of `ticket` is durable, journaled in `bytes`: its new jobs go to the
    /// router, unless the feed went off since the ticket was taken. When they do not fit,
    /// the feed goes off and keeps what it holds: the router takes that first, then scans
    /// for these jobs and the next rounds'.
    pub fn hand_over(&self, ticket: Ticket, jobs: Vec<FreshJob>, bytes: usize) {
        let mut state = self.state();
        if !state.on || ticket.0 != Some(state.epoch) || jobs.is_empty() {
            return;
        }
        if state.jobs.len() + jobs.len() > CAPACITY || state.bytes + bytes > CAPACITY_BYTES {
            state.switch_off();
            return;
        }
        let share = bytes.div_ceil(jobs.len());
        state.bytes += share * jobs.len();
        state.jobs.extend(jobs.into_iter().map(|job| (job, share)));
    }

    /// Up to `limit` fresh jobs, oldest first; `None` once the feed is off and empty:
    /// the router must scan the store.
    pub fn take(&self, limit: usize) -> Option<Vec<FreshJob>> {
        let mut state = self.state();
        if !state.on && state.jobs.is_empty() {
            return None;
        }
        let n = limit.min(state.jobs.len());
        let taken: Vec<_> = state.jobs.drain(..n).collect();
        state.bytes -= taken.iter().map(|(_, share)| share).sum::<usize>();
        Some(taken.into_iter().map(|(job, _)| job).collect())
    }

    /// Runs the router's `scan` for up to `limit` pending jobs, with no round writing
    /// meanwhile, and tells whether they may have run. When it finds fewer, it found
    /// every pending job, and the feed goes on, unless it was stopped meanwhile (a job it
    /// had passed over may be pending now).
    pub fn scan<T>(
        &self,
        limit: usize,
        scan: impl FnOnce() -> Result<Vec<T>>,
    ) -> Result<Scanned<T>> {
        let _held = self.hold_writes();
        let (epoch, unrun) = {
            let state = self.state();
            (state.epoch, state.unrun)
        };
        let jobs = scan()?;
        let mut state = self.state();
        let undisturbed = state.epoch == epoch;
        if jobs.len() < limit && undisturbed {
            state.on = true;
            state.unrun = true;
        }
        Ok(Scanned {
            jobs,
            may_have_run: !(unrun && undisturbed),
        })
    }

    /// A job may be pending in the store that the feed will not bring, and may have run:
    /// the router scans, looking its deliveries up, until it has found every one. What
    /// the feed holds is dropped (it is in the store). Called before such a job can be
    /// found, so that a scan running meanwhile knows.
    pub fn stop(&self) {
        let mut state = self.state();
        state.switch_off();
        state.unrun = false;
        state.jobs.clear();
        state.bytes = 0;
    }
}

impl State {
    /// Rounds hand nothing over from now on, nor do those whose tickets were taken before.
    fn switch_off(&mut self) {
        self.on = false;
        self.epoch += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Timestamp;

    fn fresh(id: &str) -> FreshJob {
        FreshJob::new(Event {
            id: id.into(),
            tenant: "t".into(),
            topic: "Cases.Update".into(),
            subject: None,
            payload: Event::payload_of(&serde_json::json!({})),
            occurred_at: Timestamp(0),
            published_by: "acc".into(),
        })
    }

    fn ids(jobs: Option<Vec<FreshJob>>) -> Option<Vec<String>> {
        jobs.map(|jobs| jobs.into_iter().map(|j| j.job.event).collect())
    }

    fn round(feed: &FreshJobs) -> Ticket {
        feed.writing().written()
    }

    /// A round that writes `jobs` and hands them over at once.
    fn publish(feed: &FreshJobs, jobs: Vec<FreshJob>, bytes: usize) {
        feed.hand_over(round(feed), jobs, bytes);
    }

    /// A scan that finds `found` jobs: whether they may have run.
    fn scan(feed: &FreshJobs, limit: usize, found: usize) -> bool {
        let scanned = feed.scan(limit, || Ok(vec![(); found])).expect("scan");
        assert_eq!(scanned.jobs.len(), found);
        scanned.may_have_run
    }

    #[test]
    fn the_feed_is_off_until_a_scan_found_every_pending_job() {
        let feed = FreshJobs::default();
        publish(&feed, vec![fresh("e1")], 100);
        assert!(feed.take(10).is_none(), "off at start: the router scans");
        scan(&feed, 4, 4);
        assert!(feed.take(10).is_none(), "the scan may have left some");
        scan(&feed, 4, 3);
        assert_eq!(ids(feed.take(10)), Some(vec![]), "on, and nothing in it");

        publish(&feed, vec![fresh("e2"), fresh("e3")], 100);
        assert_eq!(ids(feed.take(1)), Some(vec!["e2".into()]));
        assert_eq!(ids(feed.take(5)), Some(vec!["e3".into()]));
    }

    #[test]
    fn a_round_decided_before_a_stop_hands_nothing_over() {
        let feed = FreshJobs::default();
        scan(&feed, 4, 0);
        let ticket = round(&feed);
        feed.stop();
        scan(&feed, 4, 1);
        feed.hand_over(ticket, vec![fresh("e1")], 100);
        assert_eq!(
            ids(feed.take(10)),
            Some(vec![]),
            "the scan after the stop took it"
        );
    }

    #[test]
    fn a_stop_during_a_scan_keeps_the_feed_off() {
        let feed = FreshJobs::default();
        let found = feed
            .scan(4, || {
                feed.stop();
                Ok(Vec::<()>::new())
            })
            .expect("scan");
        assert!(found.jobs.is_empty());
        assert!(found.may_have_run);
        assert!(
            feed.take(10).is_none(),
            "a job it passed over may be pending"
        );
        assert!(scan(&feed, 4, 1), "it may have run");
        assert_eq!(ids(feed.take(10)), Some(vec![]));
    }

    #[test]
    fn a_stop_drops_what_the_feed_holds() {
        let feed = FreshJobs::default();
        scan(&feed, 4, 0);
        publish(&feed, vec![fresh("e1")], 100);
        feed.stop();
        assert!(feed.take(10).is_none());
        scan(&feed, 4, 1);
        publish(&feed, vec![fresh("e2")], 100);
        publish(
            &feed,
            (0..CAPACITY).map(|i| fresh(&format!("e{i}"))).collect(),
            100,
        );
        feed.stop();
        assert!(feed.take(10).is_none(), "a full feed's too");
        scan(&feed, 4, 1);
        assert_eq!(ids(feed.take(10)), Some(vec![]));
    }

    #[test]
    fn a_full_feed_hands_over_what_it_holds_then_the_router_scans() {
        let feed = FreshJobs::default();
        scan(&feed, 4, 0);
        publish(
            &feed,
            (0..CAPACITY - 1).map(|i| fresh(&format!("e{i}"))).collect(),
            100,
        );
        publish(&feed, vec![fresh("late1"), fresh("late2")], 100);
        publish(&feed, vec![fresh("later")], 100);
        let held = feed.take(CAPACITY).expect("what it held");
        assert_eq!(
            held.len(),
            CAPACITY - 1,
            "the rounds that fit, and no later one"
        );
        assert_eq!(held[0].job.event, "e0");
        assert!(feed.take(1).is_none(), "emptied: the router scans");
        assert!(!scan(&feed, 4, 4), "refused by the feed: never ran");
        assert!(!scan(&feed, 4, 0));

        publish(&feed, vec![fresh("e1"), fresh("e2")], CAPACITY_BYTES);
        assert_eq!(ids(feed.take(1)), Some(vec!["e1".into()]));
        publish(&feed, vec![fresh("e3")], CAPACITY_BYTES / 2 + 1);
        assert_eq!(ids(feed.take(5)), Some(vec!["e2".into()]), "too large");
        assert!(feed.take(1).is_none());

        scan(&feed, 4, 0);
        publish(&feed, vec![fresh("e4")], CAPACITY_BYTES);
        assert_eq!(ids(feed.take(1)), Some(vec!["e4".into()]));
        publish(&feed, vec![fresh("e5")], CAPACITY_BYTES);
        assert_eq!(
            ids(feed.take(1)),
            Some(vec!["e5".into()]),
            "what the router took no longer counts"
        );
    }

    #[test]
    fn jobs_may_have_run_until_a_scan_found_every_one_after_the_start_or_a_stop() {
        let feed = FreshJobs::default();
        assert!(
            scan(&feed, 4, 4),
            "pending at start: may have run before a crash"
        );
        assert!(scan(&feed, 4, 2), "the scan that finds the last of them");
        assert!(!scan(&feed, 4, 0));
        feed.stop();
        assert!(
            scan(&feed, 4, 4),
            "a stop makes a job that ran pending again"
        );
        assert!(scan(&feed, 4, 1));
    }

    #[test]
    fn a_scan_and_a_round_writing_exclude_each_other() {
        let feed = Arc::new(FreshJobs::default());
        let writing = feed.writing();
        let scanning = std::thread::spawn({
            let feed = feed.clone();
            move || scan(&feed, 4, 0)
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!scanning.is_finished(), "the scan waits for the round");
        let ticket = writing.written();
        scanning.join().expect("scan");
        feed.hand_over(ticket, vec![fresh("e1")], 100);
        assert_eq!(
            ids(feed.take(10)),
            Some(vec![]),
            "decided while off: the scan's business"
        );
    }
}
