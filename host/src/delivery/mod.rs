//! Sending webhooks: the worker, the retry schedule, the HTTP client and its SSRF guard.

mod client;
pub mod guard;
pub mod retry;
mod worker;

pub use client::{Answer, HttpClient};
pub use worker::run;
