//! [`KeyHash`] and [`KeyHasher`]: what stores keep instead of keys.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ConfigError;
use crate::key::api_key::ApiKey;

/// Minimum length of an HMAC pepper, in bytes.
pub const MIN_PEPPER_LEN: usize = 32;

/// The SHA-256 (or HMAC-SHA256) digest of a key: what a store keeps.
///
/// Equality is constant-time (`subtle`), so `==` on two hashes leaks no timing.
/// `Debug` does not print the bytes: a hash is not a secret, but there is no reason to put
/// one in a log.
#[derive(Clone, Copy)]
pub struct KeyHash([u8; 32]);

impl KeyHash {
    /// Wraps 32 bytes read back from a store.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw digest, to write to a store (for example a `BYTEA` or `BLOB` column).
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The digest as unpadded standard base64 (43 characters), for text columns.
    pub fn to_base64(&self) -> String {
        STANDARD_NO_PAD.encode(self.0)
    }

    /// Reads a digest written by [`KeyHash::to_base64`].
    ///
    /// # Errors
    ///
    /// [`InvalidKeyHash`] when the text is not 32 bytes of unpadded base64.
    pub fn from_base64(text: &str) -> Result<Self, InvalidKeyHash> {
        let mut bytes = [0u8; 32];
        match STANDARD_NO_PAD.decode_slice(text, &mut bytes) {
            Ok(32) => Ok(Self(bytes)),
            _ => Err(InvalidKeyHash),
        }
    }
}

impl ConstantTimeEq for KeyHash {
    /// Folds the XOR of the two digests into one word without branching, then lets
    /// `subtle` compare that word with zero: constant-time, and a few instructions
    /// instead of a barrier per byte.
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        let mut diff = 0u64;
        for (a, b) in self.0.chunks_exact(8).zip(other.0.chunks_exact(8)) {
            let a = u64::from_ne_bytes(a.try_into().unwrap_or_default());
            let b = u64::from_ne_bytes(b.try_into().unwrap_or_default());
            diff |= a ^ b;
        }
        diff.ct_eq(&0)
    }
}

impl PartialEq for KeyHash {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for KeyHash {}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyHash(..)")
    }
}

/// The text given to [`KeyHash::from_base64`] is not a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a key hash is 32 bytes of unpadded base64")]
pub struct InvalidKeyHash;

/// Turns a presented key into the [`KeyHash`] a store is compared against.
///
/// Keys carry at least 285 bits of entropy, so a fast hash is the right tool: a slow
/// password hash would cost every request and protect nothing that entropy does not.
/// With a pepper (HMAC-SHA256 keyed by a server-side secret), a stolen table of hashes
/// cannot even be used to confirm a key without the pepper too.
///
/// The hash covers the whole key text (prefix, id and secret), which binds each hash to
/// its id: a hash copied onto another row in the store matches nothing.
#[derive(Clone, Default)]
pub struct KeyHasher {
    /// The HMAC state after absorbing the pepper; cloned per key so the pepper's block is
    /// not rehashed on every request. Built with the `zeroize` features of `hmac` and
    /// `sha2`, so this state and every clone of it are wiped on drop.
    hmac: Option<Hmac<Sha256>>,
}

impl KeyHasher {
    /// Plain SHA-256.
    pub fn sha256() -> Self {
        Self { hmac: None }
    }

    /// HMAC-SHA256 keyed by `pepper`, a server-side secret of at least 32 bytes.
    ///
    /// Every instance that verifies keys must use the same pepper, and changing it
    /// invalidates every stored hash.
    ///
    /// # Errors
    ///
    /// [`ConfigError::PepperTooShort`] for a pepper under 32 bytes.
    pub fn hmac_sha256(pepper: &[u8]) -> Result<Self, ConfigError> {
        if pepper.len() < MIN_PEPPER_LEN {
            return Err(ConfigError::PepperTooShort);
        }
        let mac =
            Hmac::<Sha256>::new_from_slice(pepper).map_err(|_| ConfigError::PepperTooShort)?;
        Ok(Self { hmac: Some(mac) })
    }

    /// Hashes a key.
    pub fn hash(&self, key: &ApiKey) -> KeyHash {
        self.hash_bytes(key.expose_secret().as_bytes())
    }

    /// Hashes key bytes as presented, without copying them.
    pub(crate) fn hash_bytes(&self, bytes: &[u8]) -> KeyHash {
        match &self.hmac {
            None => KeyHash(Sha256::digest(bytes).into()),
            Some(mac) => {
                let mut mac = mac.clone();
                mac.update(bytes);
                KeyHash(mac.finalize().into_bytes().into())
            }
        }
    }
}

impl fmt::Debug for KeyHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let algorithm = if self.hmac.is_some() {
            "hmac-sha256"
        } else {
            "sha256"
        };
        f.debug_struct("KeyHasher")
            .field("algorithm", &algorithm)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_the_published_test_vector() {
        let hash = KeyHasher::sha256().hash_bytes(b"abc");
        assert_eq!(
            hash.to_base64(),
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0"
        );
    }

    #[test]
    fn hmac_differs_from_plain_sha256_and_between_peppers() {
        let plain = KeyHasher::sha256().hash_bytes(b"kg_key");
        let a = KeyHasher::hmac_sha256(&[1; 32])
            .unwrap()
            .hash_bytes(b"kg_key");
        let b = KeyHasher::hmac_sha256(&[2; 32])
            .unwrap()
            .hash_bytes(b"kg_key");
        assert_ne!(plain, a);
        assert_ne!(a, b);
        assert_eq!(
            a,
            KeyHasher::hmac_sha256(&[1; 32])
                .unwrap()
                .hash_bytes(b"kg_key")
        );
    }

    #[test]
    fn hashes_differing_in_any_single_byte_are_unequal() {
        let base = [0x5Au8; 32];
        for position in 0..32 {
            let mut other = base;
            other[position] ^= 1;
            assert_ne!(
                KeyHash::from_bytes(base),
                KeyHash::from_bytes(other),
                "{position}"
            );
        }
        assert_eq!(KeyHash::from_bytes(base), KeyHash::from_bytes(base));
    }

    #[test]
    fn hmac_state_derived_from_the_pepper_is_zeroized_on_drop() {
        // The state after absorbing the pepper is as good as the pepper. `Hmac<Sha256>`
        // holds it as two SHA-256 cores (inner and outer pad); with the `zeroize` feature
        // of `sha2` each core wipes itself on drop, in the hasher and in every per-request
        // clone of it.
        fn zeroized_on_drop<T: zeroize::ZeroizeOnDrop>() {}
        zeroized_on_drop::<<Sha256 as hmac::digest::block_api::EagerHash>::Core>();
    }

    #[test]
    fn short_pepper_is_rejected() {
        assert_eq!(
            KeyHasher::hmac_sha256(&[0; 31]).err(),
            Some(ConfigError::PepperTooShort)
        );
    }

    #[test]
    fn base64_round_trips_and_rejects_other_lengths() {
        let hash = KeyHasher::sha256().hash_bytes(b"x");
        assert_eq!(KeyHash::from_base64(&hash.to_base64()), Ok(hash));
        assert_eq!(KeyHash::from_base64("AAAA"), Err(InvalidKeyHash));
        assert_eq!(KeyHash::from_base64("not base64!"), Err(InvalidKeyHash));
    }

    #[test]
    fn debug_never_prints_digest_or_pepper() {
        let hasher = KeyHasher::hmac_sha256(b"0123456789abcdef0123456789abcdef").unwrap();
        assert!(!format!("{hasher:?}").contains("0123456789"));
        assert_eq!(format!("{:?}", hasher.hash_bytes(b"x")), "KeyHash(..)");
    }
}
