//! Fan-out jobs whose fresh deliveries are with the worker and not stored yet.
//!
//! A delivery the router hands straight to the worker is stored once, when its first
//! attempt ends, together with the rest of that attempt's record. Its fan-out job stays
//! pending in the store until the last such delivery is stored, so a crash runs the job
//! again and makes the same deliveries, skipping those already stored. Meanwhile the
//! router must not run it again: [`OpenJobs`] tells it which jobs wait for the worker.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use crate::store::FanoutJob;

/// The fan-out jobs waiting for their deliveries to be stored.
#[derive(Debug, Default)]
pub struct OpenJobs {
    jobs: Mutex<HashMap<FanoutJob, Open>>,
}

#[derive(Debug)]
struct Open {
    /// Deliveries not yet recorded.
    left: usize,
    /// Storing one of them failed: the job must run again instead of ending.
    lost: bool,
}

impl OpenJobs {
    fn jobs(&self) -> MutexGuard<'_, HashMap<FanoutJob, Open>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `job` handed `deliveries` to the worker.
    pub fn open(&self, job: FanoutJob, deliveries: usize) {
        if deliveries > 0 {
            self.jobs().insert(
                job,
                Open {
                    left: deliveries,
                    lost: false,
                },
            );
        }
    }

    /// Whether `job` waits for the worker.
    pub fn is_open(&self, job: &FanoutJob) -> bool {
        self.jobs().contains_key(job)
    }

    /// One delivery of `job` is about to be stored: true when it is the last, so the job
    /// ends in the same transaction. The job stays open until [`Self::settle`].
    pub fn recorded(&self, job: &FanoutJob) -> bool {
        match self.jobs().get_mut(job) {
            Some(open) => {
                open.left = open.left.saturating_sub(1);
                open.left == 0 && !open.lost
            }
            None => false,
        }
    }

    /// The transaction storing deliveries of `jobs` committed (`stored`) or failed. A job
    /// with nothing left closes: ended if it was stored, and otherwise pending for the
    /// router to run again. A job with deliveries left that lost one runs again once they
    /// are stored. Before the first job closes pending, `rerun` is called (with the jobs
    /// locked): from then on the router can find it, and must know that it ran. True when
    /// a job closed pending.
    pub fn settle(&self, jobs: &[FanoutJob], stored: bool, rerun: impl FnOnce()) -> bool {
        let mut open = self.jobs();
        let mut rerun = Some(rerun);
        for job in jobs {
            let Some(entry) = open.get_mut(job) else {
                continue;
            };
            if entry.left == 0 {
                if (entry.lost || !stored)
                    && let Some(rerun) = rerun.take()
                {
                    rerun();
                }
                open.remove(job);
            } else if !stored {
                entry.lost = true;
            }
        }
        rerun.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(event: &str) -> FanoutJob {
        FanoutJob {
            tenant: "t".into(),
            event: event.into(),
        }
    }

    /// Settles `job`: whether it closed pending, which `rerun` must have been told.
    fn settle(jobs: &OpenJobs, job: FanoutJob, stored: bool) -> bool {
        let mut reruns = 0;
        let again = jobs.settle(&[job], stored, || reruns += 1);
        assert_eq!(reruns, usize::from(again));
        again
    }

    #[test]
    fn a_job_ends_with_its_last_delivery_and_stays_open_until_then() {
        let jobs = OpenJobs::default();
        jobs.open(job("e1"), 2);
        jobs.open(job("e2"), 0);
        assert!(jobs.is_open(&job("e1")));
        assert!(!jobs.is_open(&job("e2")), "nothing handed over");
        assert!(!jobs.recorded(&job("e1")));
        assert!(!settle(&jobs, job("e1"), true));
        assert!(jobs.is_open(&job("e1")), "one delivery is still out");
        assert!(jobs.recorded(&job("e1")), "the last one ends the job");
        assert!(jobs.is_open(&job("e1")), "until its transaction settles");
        assert!(!settle(&jobs, job("e1"), true), "it ended");
        assert!(!jobs.is_open(&job("e1")));
        assert!(!jobs.recorded(&job("e3")), "an unknown job never ends");
    }

    #[test]
    fn a_job_whose_delivery_was_not_stored_runs_again_instead_of_ending() {
        let jobs = OpenJobs::default();
        jobs.open(job("e1"), 2);
        assert!(!jobs.recorded(&job("e1")));
        assert!(!settle(&jobs, job("e1"), false), "not closed yet");
        assert!(jobs.is_open(&job("e1")), "the other delivery is still out");
        assert!(!jobs.recorded(&job("e1")), "it must not end");
        assert!(settle(&jobs, job("e1"), true), "pending again");
        assert!(
            !jobs.is_open(&job("e1")),
            "closed: the router runs it again"
        );

        jobs.open(job("e2"), 1);
        assert!(jobs.recorded(&job("e2")));
        assert!(settle(&jobs, job("e2"), false), "pending again");
        assert!(!jobs.is_open(&job("e2")), "its ending was not stored");
    }
}
