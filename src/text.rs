//! [`Text`]: an immutable string that keeps short values inline.
//!
//! User ids are short (an integer, a slug) and every stored key holds one: kept inline, a
//! million keys need no million small allocations, and cloning one (on every lookup) is a
//! copy rather than a reference count.

use std::fmt;
use std::sync::Arc;

/// The longest value kept inline, in bytes.
const INLINE: usize = 22;

/// An immutable string: inline up to 22 bytes, shared beyond.
#[derive(Clone)]
pub(crate) enum Text {
    Inline { len: u8, bytes: [u8; INLINE] },
    Shared(Arc<str>),
}

impl Text {
    pub(crate) fn new(text: &str) -> Self {
        match u8::try_from(text.len()) {
            Ok(len) if text.len() <= INLINE => {
                let mut bytes = [0; INLINE];
                bytes[..text.len()].copy_from_slice(text.as_bytes());
                Self::Inline { len, bytes }
            }
            _ => Self::Shared(text.into()),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            // The bytes were copied from a `str` up to a char boundary (its end), so they are
            // UTF-8; the check cannot fail, and an empty string would be the safe answer.
            Self::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            Self::Shared(text) => text,
        }
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Text {}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_inline_and_long_text_shared() {
        assert!(matches!(Text::new("user-00000001"), Text::Inline { .. }));
        assert!(matches!(Text::new(&"u".repeat(23)), Text::Shared(_)));
    }

    #[test]
    fn text_reads_back_as_given_at_every_length() {
        for len in [0, 1, 21, 22, 23, 300] {
            let text: String = "é".repeat(len / 2) + &"x".repeat(len % 2);
            assert_eq!(Text::new(&text).as_str(), text);
        }
    }

    #[test]
    fn equality_ignores_where_the_text_lives() {
        let long = "a".repeat(30);
        assert_eq!(Text::new(&long), Text::Shared(long.as_str().into()));
    }

    #[test]
    fn text_is_three_words() {
        assert_eq!(std::mem::size_of::<Text>(), 24);
    }
}
