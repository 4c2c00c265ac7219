//! Group commit: concurrent writers share one round of writes and one sync to disk.
//!
//! A publisher hands its event to [`GroupCommit::publish`]; a writer that made its change
//! itself awaits [`GroupCommit::flush`]. One background task works in a loop: every
//! request that arrived while it was busy is served by its next round, which writes all
//! waiting events to the store and appends them to the [`Journal`] with one sync, so N
//! concurrent publishers cost one `fdatasync` instead of N. A round with flush requests,
//! or one that finds the journal grown past [`CHECKPOINT_BYTES`], flushes the store and
//! starts the journal over. A durable round hands its new fan-out jobs to the router
//! through [`FreshJobs`].

use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use super::fresh::{FreshJob, FreshJobs};
use super::{Error, Journal, Publication, Published, Result, Store};

type Answer<T> = oneshot::Sender<Result<T, String>>;

enum Request {
    Flush(Answer<()>),
    Publish(Box<Publication>, Answer<Published>),
}

/// A handle to the committer task.
#[derive(Clone, Debug)]
pub struct GroupCommit {
    requests: mpsc::UnboundedSender<Request>,
    fresh: Arc<FreshJobs>,
}

/// Requests served by one round, at most.
const ROUND: usize = 1024;

/// Journal size at which a round flushes the store and empties the journal.
pub const CHECKPOINT_BYTES: u64 = 16 << 20;

impl GroupCommit {
    /// Starts the committer task for `store`, which writes `journal` (opened by
    /// [`super::recover`]).
    pub fn start(store: Arc<dyn Store>, journal: Journal) -> Self {
        let journal = Arc::new(Mutex::new(journal));
        let fresh = Arc::new(FreshJobs::default());
        let (requests, mut rx) = mpsc::unbounded_channel::<Request>();
        let feed = fresh.clone();
        tokio::spawn(async move {
            let mut round = Vec::new();
            while rx.recv_many(&mut round, ROUND).await > 0 {
                let (mut publications, mut publishers, mut flushers) =
                    (Vec::new(), Vec::new(), Vec::new());
                for request in round.drain(..) {
                    match request {
                        Request::Flush(answer) => flushers.push(answer),
                        Request::Publish(publication, answer) => {
                            publications.push(*publication);
                            publishers.push(answer);
                        }
                    }
                }
                let (store, journal, feed, flush) = (
                    store.clone(),
                    journal.clone(),
                    feed.clone(),
                    !flushers.is_empty(),
                );
                let outcome = tokio::task::spawn_blocking(move || {
                    commit_round(store.as_ref(), &journal, &feed, publications, flush)
                })
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()));
                // A writer that gave up waiting does not need the answer.
                match outcome {
                    Ok(published) => {
                        for (answer, outcome) in publishers.into_iter().zip(published) {
                            let _ = answer.send(Ok(outcome));
                        }
                        for answer in flushers {
                            let _ = answer.send(Ok(()));
                        }
                    }
                    Err(e) => {
                        for answer in publishers {
                            let _ = answer.send(Err(e.clone()));
                        }
                        for answer in flushers {
                            let _ = answer.send(Err(e.clone()));
                        }
                    }
                }
            }
        });
        Self { requests, fresh }
    }

    /// The fan-out jobs of durable rounds, for the router.
    pub fn fresh(&self) -> &FreshJobs {
        &self.fresh
    }

    /// Stores `publication`'s event and its fan-out job; resolves once they are on disk
    /// (in the journal).
    pub async fn publish(&self, publication: Publication) -> Result<Published> {
        self.ask(|answer| Request::Publish(Box::new(publication), answer))
            .await
    }

    /// Resolves once every write made before the call is on disk.
    pub async fn flush(&self) -> Result<()> {
        self.ask(Request::Flush).await
    }

    async fn ask<T>(&self, request: impl FnOnce(Answer<T>) -> Request) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        let gone = || Error::Backend("the committer stopped".into());
        self.requests.send(request(tx)).map_err(|_| gone())?;
        rx.await
            .map_err(|_| gone())?
            .map_err(|e| Error::Backend(e.into()))
    }
}

/// One round: stores `publications`, journals them, and flushes the store when asked to
/// or when the journal is due for a checkpoint (the store then holds everything it
/// journaled, so the journal can start over).
fn commit_round(
    store: &dyn Store,
    journal: &Mutex<Journal>,
    fresh: &FreshJobs,
    publications: Vec<Publication>,
    flush: bool,
) -> Result<Vec<Published>> {
    let mut journal = journal.lock().unwrap_or_else(|p| p.into_inner());
    let published = if publications.is_empty() {
        Vec::new()
    } else {
        publish(store, &mut journal, fresh, publications)?
    };
    if flush || journal.len() >= CHECKPOINT_BYTES {
        store.flush()?;
        journal.reset()?;
    }
    Ok(published)
}

/// Stores and journals a round's publications; once they are durable, the new events'
/// jobs go to `fresh`. If the round fails, whatever part of it the store kept is left to
/// the router's scan.
fn publish(
    store: &dyn Store,
    journal: &mut Journal,
    fresh: &FreshJobs,
    publications: Vec<Publication>,
) -> Result<Vec<Published>> {
    let writing = fresh.writing();
    let stored = store.publish(&publications);
    let ticket = writing.written();
    let (published, bytes) = stored
        .and_then(|published| Ok((published, journal.append(&publications)?)))
        .inspect_err(|_| fresh.stop())?;
    let new = publications
        .into_iter()
        .zip(&published)
        .filter(|(_, outcome)| matches!(outcome, Published::New(_)))
        .map(|(p, _)| FreshJob::new(p.event))
        .collect();
    fresh.hand_over(ticket, new, bytes);
    Ok(published)
}
