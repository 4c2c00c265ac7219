//! Domain services: the rules behind every API call, shared by the API and the admin UI.

pub mod accounts;
pub mod api_accounts;
pub mod deliveries;
pub mod events;
pub mod input;
pub mod receivers;
pub mod tenants;

use crate::{plugins, store};

/// What services refuse, and why.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such thing in this tenant.
    #[error("{0} not found")]
    NotFound(String),
    /// The input breaks a rule; the message says which.
    #[error("{0}")]
    Invalid(String),
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// It conflicts with what exists.
    #[error("{0}")]
    Conflict(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] store::Error),
}

impl From<plugins::Error> for Error {
    fn from(e: plugins::Error) -> Self {
        Self::Invalid(e.to_string())
    }
}

/// Result of a service call.
pub type Result<T, E = Error> = std::result::Result<T, E>;
