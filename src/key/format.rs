//! [`KeyFormat`]: the shape of a key, and the check a presented key must pass.
//!
//! A key reads `<prefix>_<id><secret><checksum>`, for example
//! `kg_3hTq9ZkB1xWcN0aR` + 48 secret characters + 6 checksum characters.
//!
//! - `prefix` is configurable (`kg` by default), so a leaked key can be recognised by secret
//!   scanners and by people.
//! - `id` is 16 random alphanumeric characters. It is not secret: stores look keys up by it,
//!   and listings show it.
//! - `secret` is 48 alphanumeric characters from a CSPRNG (about 285 bits).
//! - `checksum` is the CRC32 of everything before it, in 6 base62 characters. It lets a
//!   mistyped or forged-shape key be rejected without a store call. It is not a MAC: it
//!   protects against typos, not against attackers, whom the secret's entropy stops.
//!
//! The body after the prefix is purely alphanumeric, so it selects with a double click and
//! needs no escaping in URLs, shells or JSON.

use std::fmt;

use crate::error::ConfigError;
use crate::key::checksum::{CHECKSUM_LEN, all_alphanumeric, crc32, decode_checksum};
use crate::key::id::{KEY_ID_LEN, KeyId};

/// Length of the secret part of a key, in characters (62 symbols each: about 285 bits).
pub const SECRET_LEN: usize = 48;
/// Longest prefix a [`KeyFormat`] accepts.
pub const MAX_PREFIX_LEN: usize = 32;

pub(crate) const BODY_LEN: usize = KEY_ID_LEN + SECRET_LEN + CHECKSUM_LEN;

/// The shape every key of one deployment has: its prefix and the fixed layout after it.
///
/// The same format must be used to generate keys ([`KeyGenerator`](crate::KeyGenerator))
/// and to accept them ([`ApiKeyLayer`](crate::ApiKeyLayer)).
///
/// ```
/// use keygate::KeyFormat;
///
/// let format = KeyFormat::with_prefix("acme_live")?;
/// assert_eq!(format.prefix(), "acme_live");
/// assert!(format.check("acme_live_not-a-key").is_err());
/// # Ok::<(), keygate::ConfigError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct KeyFormat {
    /// The prefix followed by `_`, kept joined because every check needs it that way.
    pub(super) head: Box<str>,
}

impl KeyFormat {
    /// The default format, with prefix `kg`.
    pub fn new() -> Self {
        Self { head: "kg_".into() }
    }

    /// A format with the given prefix.
    ///
    /// The prefix is 1 to 32 ASCII letters, digits or `_`, and starts with a letter.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidPrefix`] when the prefix breaks those rules.
    pub fn with_prefix(prefix: &str) -> Result<Self, ConfigError> {
        let valid_len = (1..=MAX_PREFIX_LEN).contains(&prefix.len());
        let starts_with_letter = prefix
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic());
        let valid_chars = prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !(valid_len && starts_with_letter && valid_chars) {
            return Err(ConfigError::InvalidPrefix);
        }
        Ok(Self {
            head: format!("{prefix}_").into(),
        })
    }

    /// The prefix, without the `_` that separates it from the body.
    pub fn prefix(&self) -> &str {
        &self.head[..self.head.len() - 1]
    }

    /// The length of every key of this format, in bytes (all keys are ASCII).
    pub fn key_len(&self) -> usize {
        self.head.len() + BODY_LEN
    }

    /// Checks that `text` is a well-formed key of this format and returns its id.
    ///
    /// Checks run in order: prefix, length, characters, checksum. None of them looks at
    /// a store, so a malformed key costs no I/O. The work done does not depend on the
    /// secret beyond its length and charset, which are public.
    ///
    /// # Errors
    ///
    /// A [`MalformedKey`] naming the first check that failed.
    pub fn check(&self, text: &str) -> Result<KeyId, MalformedKey> {
        self.check_bytes(text.as_bytes())
    }

    /// As [`KeyFormat::check`], on raw header bytes: a value that is not ASCII fails the
    /// prefix, length or charset check, so no UTF-8 decoding is needed first.
    pub(crate) fn check_bytes(&self, bytes: &[u8]) -> Result<KeyId, MalformedKey> {
        if !bytes.starts_with(self.head.as_bytes()) {
            return Err(MalformedKey::Prefix);
        }
        if bytes.len() != self.key_len() {
            return Err(MalformedKey::Length);
        }
        let body = &bytes[self.head.len()..];
        if !all_alphanumeric(body) {
            return Err(MalformedKey::Charset);
        }
        let (signed, checksum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
        if decode_checksum(checksum) != Some(crc32(signed)) {
            return Err(MalformedKey::Checksum);
        }
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&body[..KEY_ID_LEN]);
        Ok(KeyId::from_alphanumeric(id))
    }

    /// The prefix of `bytes` when they are a well-formed key of *another* format: a valid
    /// prefix, `_`, an alphanumeric body of the right length and a matching checksum. A
    /// typo or a random string is not one; a key made with another prefix is.
    pub(crate) fn foreign_prefix(bytes: &[u8]) -> Option<&str> {
        let head_len = bytes.len().checked_sub(BODY_LEN)?;
        let (head, body) = bytes.split_at(head_len);
        let prefix = std::str::from_utf8(head.strip_suffix(b"_")?).ok()?;
        Self::with_prefix(prefix).ok()?;
        let (signed, checksum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
        let well_formed =
            all_alphanumeric(body) && decode_checksum(checksum) == Some(crc32(signed));
        well_formed.then_some(prefix)
    }
}

impl Default for KeyFormat {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for KeyFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyFormat")
            .field("prefix", &self.prefix())
            .finish()
    }
}

/// Why a presented key was rejected before any store lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum MalformedKey {
    /// The key does not start with the configured prefix and `_`.
    #[error("the key does not start with the expected prefix")]
    Prefix,
    /// The key is not the length this format requires.
    #[error("the key has the wrong length")]
    Length,
    /// The body holds a character other than an ASCII letter or digit.
    #[error("the key holds a character outside [A-Za-z0-9]")]
    Charset,
    /// The checksum does not match: a typo, a truncation or a forged shape.
    #[error("the key's checksum does not match")]
    Checksum,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(format: &KeyFormat) -> String {
        crate::key::generate::KeyGenerator::new(format.clone())
            .generate()
            .unwrap()
            .expose_secret()
            .to_owned()
    }

    #[test]
    fn other_prefix_is_rejected_as_prefix() {
        let live = KeyFormat::with_prefix("kg_live").unwrap();
        let test = KeyFormat::with_prefix("kg_test").unwrap();
        assert_eq!(live.check(&key(&test)), Err(MalformedKey::Prefix));
    }

    #[test]
    fn truncated_key_is_rejected_as_length() {
        let format = KeyFormat::new();
        let text = key(&format);
        assert_eq!(
            format.check(&text[..text.len() - 1]),
            Err(MalformedKey::Length)
        );
    }

    #[test]
    fn non_alphanumeric_body_is_rejected_as_charset() {
        let format = KeyFormat::new();
        let mut text = key(&format);
        text.replace_range(10..11, "-");
        assert_eq!(format.check(&text), Err(MalformedKey::Charset));
    }

    #[test]
    fn single_character_typo_is_rejected_as_checksum() {
        let format = KeyFormat::new();
        let mut text = key(&format);
        let typo = if &text[30..31] == "y" { "z" } else { "y" };
        text.replace_range(30..31, typo);
        assert_eq!(format.check(&text), Err(MalformedKey::Checksum));
    }

    #[test]
    fn a_key_of_another_format_is_recognised_with_its_prefix() {
        let other = key(&KeyFormat::with_prefix("acme_live").unwrap());
        assert_eq!(
            KeyFormat::foreign_prefix(other.as_bytes()),
            Some("acme_live")
        );
    }

    #[test]
    fn a_typo_or_a_random_string_has_no_foreign_prefix() {
        let mut typo = key(&KeyFormat::with_prefix("acme").unwrap());
        let changed = if &typo[20..21] == "y" { "z" } else { "y" };
        typo.replace_range(20..21, changed);
        assert_eq!(KeyFormat::foreign_prefix(typo.as_bytes()), None);
        assert_eq!(KeyFormat::foreign_prefix(b"Bearer"), None);
        assert_eq!(KeyFormat::foreign_prefix(&[b'x'; 90]), None);
    }

    #[test]
    fn prefix_rules_are_enforced() {
        for bad in ["", "1kg", "kg-live", "kg live", "ключ", &"k".repeat(33)] {
            assert_eq!(
                KeyFormat::with_prefix(bad),
                Err(ConfigError::InvalidPrefix),
                "{bad:?}"
            );
        }
        assert_eq!(
            KeyFormat::with_prefix("kg_live").unwrap().prefix(),
            "kg_live"
        );
    }
}
