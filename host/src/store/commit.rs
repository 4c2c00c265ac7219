//! Group commit: concurrent writers share one flush to disk.
//!
//! A writer makes its change, then awaits [`GroupCommit::flush`]. One background task
//! flushes in a loop; every writer that arrived while a flush was running is answered by
//! the next one, so N concurrent publishers cost one `fsync` instead of N.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::{Error, Result, Store};

type Waiter = oneshot::Sender<Result<(), String>>;

/// A handle to the flusher task.
#[derive(Clone, Debug)]
pub struct GroupCommit {
    requests: mpsc::UnboundedSender<Waiter>,
}

impl GroupCommit {
    /// Starts the flusher task for `store`.
    pub fn start(store: Arc<dyn Store>) -> Self {
        let (requests, mut rx) = mpsc::unbounded_channel::<Waiter>();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut waiters = vec![first];
                while let Ok(more) = rx.try_recv() {
                    waiters.push(more);
                }
                let store = store.clone();
                let result = tokio::task::spawn_blocking(move || store.flush())
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string()));
                for waiter in waiters {
                    // A writer that gave up waiting does not need the answer.
                    let _ = waiter.send(result.clone());
                }
            }
        });
        Self { requests }
    }

    /// Resolves once every write made before the call is on disk.
    pub async fn flush(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        let gone = || Error::Backend("the flusher stopped".into());
        self.requests.send(tx).map_err(|_| gone())?;
        rx.await
            .map_err(|_| gone())?
            .map_err(|e| Error::Backend(e.into()))
    }
}
