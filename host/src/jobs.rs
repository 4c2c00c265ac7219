//! Scheduled maintenance (cron schedules from the config): log retention, expired access
//! tokens and admin UI sessions, and deliveries stuck in flight after an attempt died
//! without an answer.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::app::App;
use crate::domain::Timestamp;

/// When the jobs run and what they keep.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    /// Cron schedule (seconds first) of the retention job.
    pub retention_schedule: String,
    /// Bodies of finished deliveries older than this are pruned; the log rows stay.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// Cron schedule of the purge of expired access tokens and admin UI sessions.
    pub tokens_schedule: String,
    /// Cron schedule of the stuck-delivery check.
    pub stuck_schedule: String,
    /// A delivery in flight for longer than this is queued again.
    #[serde(with = "humantime_serde")]
    pub stuck_after: Duration,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            retention_schedule: "0 30 3 * * *".into(),
            retention: Duration::from_secs(30 * 24 * 3600),
            tokens_schedule: "0 */10 * * * *".into(),
            stuck_schedule: "0 * * * * *".into(),
            stuck_after: Duration::from_secs(10 * 60),
        }
    }
}

/// The maintenance jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// Prune old delivery bodies.
    Retention,
    /// Forget expired access tokens and admin UI sessions.
    ExpiredTokens,
    /// Requeue deliveries stuck in flight.
    StuckDeliveries,
}

impl Job {
    fn schedule(self, config: &JobsConfig) -> &str {
        match self {
            Self::Retention => &config.retention_schedule,
            Self::ExpiredTokens => &config.tokens_schedule,
            Self::StuckDeliveries => &config.stuck_schedule,
        }
    }
}

/// Checks every schedule parses.
pub fn validate(config: &JobsConfig) -> Result<(), String> {
    for job in [Job::Retention, Job::ExpiredTokens, Job::StuckDeliveries] {
        cron::Schedule::from_str(job.schedule(config))
            .map_err(|e| format!("jobs: bad cron schedule {:?}: {e}", job.schedule(config)))?;
    }
    Ok(())
}

/// Runs one job now; returns how many things it changed.
pub async fn run_once(app: &App, job: Job) -> Result<usize, crate::store::Error> {
    let now = app.now();
    let config = app.config.jobs.clone();
    let before = Timestamp(now.ms().saturating_sub(config.retention.as_millis() as u64));
    let stuck = Timestamp(
        now.ms()
            .saturating_sub(config.stuck_after.as_millis() as u64),
    );
    let changed = app
        .blocking(move |s| match job {
            Job::Retention => s.prune_bodies(before),
            Job::ExpiredTokens => {
                Ok(s.purge_expired_tokens(now)? + s.purge_expired_ui_sessions(now)?)
            }
            Job::StuckDeliveries => s.recover_stuck(stuck, now),
        })
        .await?;
    if job == Job::StuckDeliveries && changed > 0 {
        app.deliveries_ready.notify_one();
    }
    Ok(changed)
}

/// Runs every job on its schedule until `shutdown` turns true.
pub async fn run(app: App, shutdown: watch::Receiver<bool>) {
    let mut tasks = tokio::task::JoinSet::new();
    for job in [Job::Retention, Job::ExpiredTokens, Job::StuckDeliveries] {
        let Ok(schedule) = cron::Schedule::from_str(job.schedule(&app.config.jobs)) else {
            tracing::error!(?job, "invalid schedule; job disabled");
            continue;
        };
        let (app, mut shutdown) = (app.clone(), shutdown.clone());
        tasks.spawn(async move {
            loop {
                let now = DateTime::<Utc>::from_timestamp_millis(app.clock.now_ms() as i64)
                    .unwrap_or_default();
                let Some(next) = schedule.after(&now).next() else {
                    return;
                };
                tokio::select! {
                    () = app.clock.sleep_until(next.timestamp_millis() as u64) => {}
                    _ = shutdown.changed() => return,
                }
                match run_once(&app, job).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(?job, changed = n, "maintenance job ran"),
                    Err(e) => tracing::error!(?job, error = %e, "maintenance job failed"),
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}
