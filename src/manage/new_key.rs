//! [`NewKey`]: what to create.

use std::time::{Duration, SystemTime};

use unicode_normalization::char::is_combining_mark;

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
    let mut previous: Option<char> = None;
    let mut marks = 0;
    // Spaces at either end, and spaces other than U+0020, make a name look like another.
    value.trim() == value
        && !value.is_empty()
        && value.len() <= max
        && value.chars().all(|c| {
            let mark = is_combining_mark(c);
            marks = if mark { marks + 1 } else { 0 };
            let fits = if is_variation_selector(c) {
                // A variation selector picks how a symbol is drawn ("❤️"); after a letter,
                // a digit, ASCII punctuation, a space, a mark or nothing, it draws nothing.
                previous.is_some_and(|p| {
                    !p.is_ascii()
                        && !p.is_alphanumeric()
                        && !p.is_whitespace()
                        && !is_combining_mark(p)
                        && !is_variation_selector(p)
                })
            } else if mark {
                // Accents belong on a character, a few at a time: at the start or after a
                // space they stand on nothing, and stacked they hide what they cover.
                previous.is_some_and(|p| !p.is_whitespace()) && marks <= MAX_MARKS
            } else {
                !c.is_control() && !is_format(c) && (c == ' ' || !c.is_whitespace())
            };
            previous = Some(c);
            fits
        })
}

/// The most combining marks on one character ("ệ" takes two).
const MAX_MARKS: usize = 3;

fn is_variation_selector(c: char) -> bool {
    matches!(c, '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}')
}

/// Characters a name has no use for because they show as nothing, or could pass for a
/// plain name they are not: every Unicode format character (category Cf: zero-width and
/// joining characters, bidirectional controls, the soft hyphen, the byte-order mark, tag
/// characters, interlinear annotations), line and paragraph separators, the combining
/// grapheme joiner, and the blank fillers (Hangul, Khmer, Braille) that render as empty
/// space. Variation selectors are judged by [`is_text`], by what they follow.
fn is_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{2800}'
            | '\u{3164}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D159}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E00FF}'
            | '\u{E01F0}'..='\u{E0FFF}'
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
        for name in [
            "\u{202E}gnp.exe",
            "\u{200B}",
            "a\u{2066}b",
            "\u{FEFF}key",
            "\u{3164}",
            "\u{2800}",
            "\u{115F}",
            "a\u{FFF9}b",
            "a\u{2028}b",
            "a\u{FE0F}\u{FE0F}",
            "\u{FE0F}",
            "a \u{FE0F}",
            "quickstart admin\u{FE0F}",
            "quickstart admin   ",
            " admin",
            "quickstart\u{00A0}admin",
            "quickstart\u{2009}admin",
            "quickstart\u{202F}admin",
            "admin\u{FFF0}",
            "admin\u{1D159}",
            "\u{0301}",
            "\u{064B}",
            "quickstart \u{064B}admin",
            "\u{3099}",
            "ci-\u{FE0F}deploy",
            "keys:\u{FE00}write",
            "admin)\u{FE0F}",
            "quickstart admin\u{E0020}",
        ] {
            let new = NewKey::new("alice", name);
            assert!(
                matches!(new.validate(), Err(ManageError::Invalid(_))),
                "{name:?}"
            );
        }
        assert!(NewKey::new("alice", "ci déploiement 🚀").validate().is_ok());
        assert!(
            NewKey::new("alice", "deploy \u{2764}\u{FE0F}")
                .validate()
                .is_ok()
        );
        assert!(NewKey::new("alice", "cafe\u{0301} key").validate().is_ok());
        assert!(
            NewKey::new("alice", "te\u{0323}\u{0302}p")
                .validate()
                .is_ok()
        );
        let stacked = format!("a{}", "\u{0488}".repeat(60));
        assert!(NewKey::new("alice", stacked).validate().is_err());
    }

    #[test]
    fn spaces_with_invisible_characters_are_refused() {
        for space in [
            "\u{3164}",
            "one\u{E0020}",
            "\u{2800}",
            "one ",
            "one\u{FE0F}",
            "o\u{00A0}ne",
        ] {
            let new = NewKey::new("alice", "k").with_space(space);
            assert!(
                matches!(new.validate(), Err(ManageError::Invalid(_))),
                "{space:?}"
            );
        }
    }
}
