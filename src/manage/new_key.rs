//! [`NewKey`]: what to create.

use std::time::{Duration, SystemTime};

use crate::manage::error::ManageError;
use crate::scopes::Scopes;

/// What to create: owner, name, and optionally space, scopes and expiry.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub(super) user: String,
    pub(super) name: String,
    pub(super) space: Option<String>,
    pub(super) scopes: Scopes,
    pub(super) expiry: Option<Expiry>,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Expiry {
    In(Duration),
    At(SystemTime),
}

/// Seconds from the Unix epoch to the latest expiry a key may have: the end of year 9999,
/// the last instant every store (PostgreSQL's `TIMESTAMPTZ` included) keeps exactly.
const LATEST_EXPIRY_SECS: u64 = 253_402_300_799;

impl Expiry {
    /// The instant this expiry names, for a key created at `now`.
    pub(super) fn at(self, now: SystemTime) -> Result<SystemTime, ManageError> {
        let at = match self {
            Self::At(at) => at,
            Self::In(after) => now.checked_add(after).ok_or(TOO_LATE)?,
        };
        if at > SystemTime::UNIX_EPOCH + Duration::from_secs(LATEST_EXPIRY_SECS) {
            return Err(TOO_LATE);
        }
        Ok(at)
    }
}

const TOO_LATE: ManageError = ManageError::Invalid("an expiry is at most the end of year 9999");

const MAX_NAME_LEN: usize = 128;
const MAX_ID_LEN: usize = 256;

impl NewKey {
    /// A key for `user`, shown in listings as `name`: no space, no scopes, no expiry.
    pub fn new(user: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            user: user.into(),
            name: name.into(),
            space: None,
            scopes: Scopes::default(),
            expiry: None,
        }
    }

    /// Binds the key to one space.
    pub fn with_space(mut self, space: impl Into<String>) -> Self {
        self.space = Some(space.into());
        self
    }

    /// The key's scopes.
    pub fn with_scopes(mut self, scopes: Scopes) -> Self {
        self.scopes = scopes;
        self
    }

    /// The key expires this long after creation.
    pub fn expires_in(mut self, after: Duration) -> Self {
        self.expiry = Some(Expiry::In(after));
        self
    }

    /// The key expires at `at`.
    pub fn expires_at(mut self, at: SystemTime) -> Self {
        self.expiry = Some(Expiry::At(at));
        self
    }

    pub(super) fn validate(&self) -> Result<(), ManageError> {
        if !is_text(&self.name, MAX_NAME_LEN) {
            return Err(ManageError::Invalid(
                "a key name is 1 to 128 bytes of text without control characters",
            ));
        }
        if !is_text(&self.user, MAX_ID_LEN) {
            return Err(ManageError::Invalid(
                "a user id is 1 to 256 bytes of text without control characters",
            ));
        }
        if self
            .space
            .as_deref()
            .is_some_and(|space| !is_text(space, MAX_ID_LEN))
        {
            return Err(ManageError::Invalid(
                "a space id is 1 to 256 bytes of text without control characters",
            ));
        }
        Ok(())
    }
}

/// 1 to `max` bytes, not blank, no control characters, and nothing invisible or
/// direction-changing that would make a listing show other text than is stored.
pub(super) fn is_text(value: &str, max: usize) -> bool {
    !value.trim().is_empty()
        && value.len() <= max
        && !value.chars().any(|c| c.is_control() || is_format(c))
}

/// Unicode format characters a name has no use for: zero-width and joining characters,
/// bidirectional controls, the soft hyphen and the byte-order mark.
fn is_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expiry_after_year_9999_is_refused() {
        let now = SystemTime::UNIX_EPOCH;
        let far = Expiry::In(Duration::from_secs(400_000 * 365 * 86_400));
        assert!(matches!(far.at(now), Err(ManageError::Invalid(_))));
        let latest = now + Duration::from_secs(LATEST_EXPIRY_SECS);
        assert_eq!(Expiry::At(latest).at(now).unwrap(), latest);
    }

    #[test]
    fn names_with_bidi_or_invisible_characters_are_refused() {
        for name in ["\u{202E}gnp.exe", "\u{200B}", "a\u{2066}b", "\u{FEFF}key"] {
            let new = NewKey::new("alice", name);
            assert!(
                matches!(new.validate(), Err(ManageError::Invalid(_))),
                "{name:?}"
            );
        }
        assert!(NewKey::new("alice", "ci déploiement 🚀").validate().is_ok());
    }
}
