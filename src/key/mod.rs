//! Keys: the [`KeyFormat`], the non-secret [`KeyId`], the plaintext [`ApiKey`], the
//! [`KeyGenerator`] that makes keys and the [`KeyHasher`] that makes what stores keep.

pub(crate) mod api_key;
pub(crate) mod checksum;
pub(crate) mod format;
pub(crate) mod generate;
pub(crate) mod hash;
pub(crate) mod id;

pub use api_key::ApiKey;
pub use format::{KeyFormat, MalformedKey};
pub use generate::{GenerateError, KeyGenerator};
pub use hash::{InvalidKeyHash, KeyHash, KeyHasher, MIN_PEPPER_LEN};
pub use id::{InvalidKeyId, KeyId};
