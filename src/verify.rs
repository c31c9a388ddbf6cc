//! The decision after lookup: does the stored key accept the presented one, now?

use std::time::SystemTime;

use subtle::ConstantTimeEq;

use crate::hash::KeyHash;
use crate::identity::Identity;
use crate::reject::InvalidKey;
use crate::store::StoredKey;

/// Checks a presented hash against what the store returned.
///
/// The secret is checked before the key's state, so only a holder of the real secret can
/// learn (through audit) that a key is revoked or expired; to the client all look alike.
pub(crate) fn verify(
    stored: Option<StoredKey>,
    presented: &KeyHash,
    now: SystemTime,
) -> Result<Identity, InvalidKey> {
    let stored = stored.ok_or(InvalidKey::Unknown)?;
    if !bool::from(stored.hash.ct_eq(presented)) {
        return Err(InvalidKey::WrongSecret);
    }
    if stored.revoked {
        return Err(InvalidKey::Revoked);
    }
    if stored.expires_at.is_some_and(|at| now >= at) {
        return Err(InvalidKey::Expired);
    }
    Ok(stored.identity)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::key::KeyId;

    const NOW: Duration = Duration::from_secs(1_000_000);

    fn stored() -> StoredKey {
        let id = KeyId::parse("AbCdEfGh12345678").unwrap();
        StoredKey::new(KeyHash::from_bytes([1; 32]), Identity::new(id, "u"))
    }

    fn check(stored: Option<StoredKey>, presented: [u8; 32]) -> Result<Identity, InvalidKey> {
        verify(stored, &KeyHash::from_bytes(presented), UNIX_EPOCH + NOW)
    }

    #[test]
    fn matching_live_key_yields_its_identity() {
        assert_eq!(check(Some(stored()), [1; 32]).unwrap().user(), "u");
    }

    #[test]
    fn absent_key_is_unknown() {
        assert_eq!(check(None, [1; 32]), Err(InvalidKey::Unknown));
    }

    #[test]
    fn different_hash_is_wrong_secret_even_when_revoked() {
        let revoked = stored().with_revoked(true);
        assert_eq!(check(Some(revoked), [2; 32]), Err(InvalidKey::WrongSecret));
    }

    #[test]
    fn revoked_key_is_revoked() {
        let revoked = stored().with_revoked(true);
        assert_eq!(check(Some(revoked), [1; 32]), Err(InvalidKey::Revoked));
    }

    #[test]
    fn key_expires_at_its_deadline_not_after() {
        let at_now = stored().with_expires_at(UNIX_EPOCH + NOW);
        let later = stored().with_expires_at(UNIX_EPOCH + NOW + Duration::from_secs(1));
        assert_eq!(check(Some(at_now), [1; 32]), Err(InvalidKey::Expired));
        assert!(check(Some(later), [1; 32]).is_ok());
    }
}
