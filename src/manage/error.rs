//! [`ManageError`]: why a lifecycle operation was refused or failed.

use crate::key::generate::GenerateError;
use crate::store::error::StoreError;

/// A lifecycle operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManageError {
    /// The request itself is invalid; the text says how.
    #[error("invalid key request: {0}")]
    Invalid(&'static str),
    /// No such key (or, for the `*_as` methods, none the actor may see).
    #[error("no such key")]
    NotFound,
    /// The key is revoked; it cannot be regenerated.
    #[error("the key is revoked")]
    Revoked,
    /// The key has expired; it cannot be regenerated.
    #[error("the key has expired")]
    Expired,
    /// The actor would grant or touch a scope it does not hold.
    #[error("a key cannot grant or touch scope {0:?}, which the actor does not hold")]
    ScopeEscalation(String),
    /// A space-bound key asked for a key of another space.
    #[error("a key bound to a space can only create keys for that space")]
    SpaceEscalation,
    /// The acting key expires before the key it would regenerate or revoke.
    #[error("the acting key expires before the key it would regenerate or revoke")]
    LifetimeEscalation,
    /// The acting key was verified by the replaced secret of a regenerated key, inside its
    /// grace period: such a secret authenticates requests but manages nothing.
    #[error("a replaced secret in its grace period cannot manage keys")]
    PreviousSecret,
    /// The acting key is revoked, paused, expired or gone, or has changed since it was
    /// verified: its secret replaced, or its scopes narrowed.
    #[error("the acting key is no longer valid")]
    InactiveActor,
    /// A person asked for a key bound to a space it does not administer.
    #[error("only an admin of that space may create keys bound to it")]
    NotSpaceAdmin,
    /// Only an app admin may do this.
    #[error("only an app admin may act on other users' keys")]
    NotAdmin,
    /// The owner (a user or a space) already holds the most keys allowed, none of them
    /// revoked: revoke or delete one first.
    #[error("at most {limit} keys per user and per space; revoke or delete one first")]
    TooManyKeys {
        /// The configured cap.
        limit: usize,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The operating system's randomness failed.
    #[error(transparent)]
    Generate(#[from] GenerateError),
}

impl ManageError {
    /// Whether the actor was refused for lack of power (an HTTP API answers 403), as
    /// opposed to a missing key, an invalid request or a failure.
    pub fn is_forbidden(&self) -> bool {
        matches!(
            self,
            Self::ScopeEscalation(_)
                | Self::SpaceEscalation
                | Self::LifetimeEscalation
                | Self::PreviousSecret
                | Self::InactiveActor
                | Self::NotAdmin
                | Self::NotSpaceAdmin
        )
    }
}
