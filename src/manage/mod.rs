//! Key management: [`KeyManager`] creates (plaintext once), lists, regenerates, revokes
//! and deletes keys; its `*_as` methods do the same on behalf of an [`Actor`], without
//! gaining power.

pub(crate) mod actor;
pub(crate) mod error;
#[cfg(feature = "serde")]
pub(crate) mod json;
pub(crate) mod manager;
pub(crate) mod new_key;
mod on_behalf;
#[cfg(feature = "page")]
mod page;
#[cfg(feature = "page")]
pub use page::is_same_origin;
#[cfg(feature = "router")]
pub(crate) mod problem;
#[cfg(feature = "router")]
pub(crate) mod resolver;
#[cfg(feature = "router")]
mod router;

pub use actor::Actor;
pub use error::ManageError;
#[cfg(feature = "serde")]
pub use json::{
    CreateKeyRequest, CreatedKeyJson, EditKeyRequest, KeyPageJson, KeyRecordJson,
    RegenerateRequest, RevokedJson,
};
pub use manager::{CreatedKey, DEFAULT_MAX_KEYS_PER_OWNER, KeyManager, MAX_GRACE};
pub use new_key::NewKey;
#[cfg(feature = "router")]
pub use problem::Problem;
#[cfg(feature = "router")]
pub use resolver::{ActorResolver, FromFn, KeyWithScope, from_fn as manage_from_fn};
