//! The decision after lookup: does the stored key accept the presented one, now?

use std::time::SystemTime;

use subtle::ConstantTimeEq;

use crate::identity::Identity;
use crate::key::hash::KeyHash;
use crate::limit::{Quota, RateLimit};
use crate::reject::rejection::InvalidKey;
use crate::store::stored::StoredKey;

/// Checks a presented hash against what the store returned.
///
/// The secret is checked before the key's state, so only a holder of the real secret can
/// learn (through audit) that a key is revoked or expired; to the client all look alike.
///
/// A replaced secret still inside its grace period is accepted, and reported as such.
///
/// `now` is asked only when the key has an expiry or a grace secret: reading the clock
/// is a measurable part of a request that needs neither.
pub(crate) fn verify(
    stored: &StoredKey,
    presented: &KeyHash,
    now: impl Fn() -> SystemTime,
) -> Result<Verified, InvalidKey> {
    let current = bool::from(stored.hash.ct_eq(presented));
    // Both comparisons always run, so timing does not tell which secret matched.
    let previous = stored.previous.as_ref().is_some_and(|previous| {
        bool::from(previous.hash.ct_eq(presented)) & (now() < previous.valid_until)
    });
    if !(current | previous) {
        return Err(InvalidKey::WrongSecret);
    }
    if stored.revoked {
        return Err(InvalidKey::Revoked);
    }
    if stored.disabled {
        return Err(InvalidKey::Disabled);
    }
    if stored.expires_at.is_some_and(|at| now() >= at) {
        return Err(InvalidKey::Expired);
    }
    Ok(Verified {
        identity: stored
            .identity
            .clone()
            .by_previous_secret(!current)
            .proven_by(presented),
        rate_limit: stored.rate_limit,
        quota: stored.quota,
    })
}

/// A key that passed verification: its identity, marked when the replaced secret of a
/// regenerated key matched inside its grace period.
#[derive(Debug)]
pub(crate) struct Verified {
    pub(crate) identity: Identity,
    /// The key's own rate limit and quota, for the limiter.
    pub(crate) rate_limit: Option<RateLimit>,
    pub(crate) quota: Option<Quota>,
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::key::id::KeyId;
    use crate::store::stored::PreviousSecret;

    const NOW: Duration = Duration::from_secs(1_000_000);

    fn stored() -> StoredKey {
        let id = KeyId::parse("AbCdEfGh12345678").unwrap();
        StoredKey::new(KeyHash::from_bytes([1; 32]), Identity::new(id, "u"))
    }

    fn check(stored: StoredKey, presented: [u8; 32]) -> Result<Identity, InvalidKey> {
        verify(&stored, &KeyHash::from_bytes(presented), || {
            UNIX_EPOCH + NOW
        })
        .map(|v| v.identity)
    }

    fn with_previous(valid_until: Duration) -> StoredKey {
        stored().with_previous(PreviousSecret {
            hash: KeyHash::from_bytes([9; 32]),
            valid_until: UNIX_EPOCH + valid_until,
        })
    }

    #[test]
    fn matching_live_key_yields_its_identity() {
        assert_eq!(check(stored(), [1; 32]).unwrap().user(), "u");
    }

    #[test]
    fn previous_secret_works_until_its_deadline() {
        let presented = KeyHash::from_bytes([9; 32]);
        let open = with_previous(NOW + Duration::from_secs(1));
        let verified = verify(&open, &presented, || UNIX_EPOCH + NOW).unwrap();
        assert!(verified.identity.is_previous_secret());
        let closed = with_previous(NOW);
        assert_eq!(check(closed, [9; 32]), Err(InvalidKey::WrongSecret));
    }

    #[test]
    fn current_secret_is_not_reported_as_previous() {
        let stored = with_previous(NOW + Duration::from_secs(1));
        let verified = verify(&stored, &KeyHash::from_bytes([1; 32]), || UNIX_EPOCH + NOW).unwrap();
        assert!(!verified.identity.is_previous_secret());
    }

    #[test]
    fn different_hash_is_wrong_secret_even_when_revoked() {
        let revoked = stored().with_revoked(true);
        assert_eq!(check(revoked, [2; 32]), Err(InvalidKey::WrongSecret));
    }

    #[test]
    fn revoked_key_is_revoked() {
        let revoked = stored().with_revoked(true);
        assert_eq!(check(revoked, [1; 32]), Err(InvalidKey::Revoked));
    }

    #[test]
    fn key_expires_at_its_deadline_not_after() {
        let at_now = stored().with_expires_at(UNIX_EPOCH + NOW);
        let later = stored().with_expires_at(UNIX_EPOCH + NOW + Duration::from_secs(1));
        assert_eq!(check(at_now, [1; 32]), Err(InvalidKey::Expired));
        assert!(check(later, [1; 32]).is_ok());
    }
}
