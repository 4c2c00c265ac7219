//! Sending webhooks: the worker, the retry schedule, the HTTP client and its SSRF guard.

mod ahead;
mod client;
mod dispatch;
pub mod guard;
mod open_jobs;
pub mod retry;
mod worker;

pub use ahead::Ahead;
pub use client::{Answer, HttpClient};
pub use dispatch::{Dispatch, Handoff, Held, Parties, Slot};
pub use open_jobs::OpenJobs;
pub use worker::run;
