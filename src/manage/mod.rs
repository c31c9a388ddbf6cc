//! Key management: [`KeyManager`] creates (plaintext once), lists, regenerates, revokes
//! and deletes keys; its `*_as` methods do the same on behalf of an [`Actor`], without
//! gaining power.

pub(crate) mod actor;
pub(crate) mod error;
pub(crate) mod manager;
pub(crate) mod new_key;
mod on_behalf;

pub use actor::Actor;
pub use error::ManageError;
pub use manager::{CreatedKey, DEFAULT_MAX_KEYS_PER_OWNER, KeyManager, MAX_GRACE};
pub use new_key::NewKey;
