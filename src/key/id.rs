//! [`KeyId`]: the non-secret identifier inside every key.

use std::fmt;

/// Length of the [`KeyId`] part of a key, in characters.
pub const KEY_ID_LEN: usize = 16;

/// The non-secret identifier inside every key, used to look the key up.
///
/// Safe to log, to show in listings and to use as a database primary key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId([u8; KEY_ID_LEN]);

impl KeyId {
    /// Parses an id as shown by [`KeyId::as_str`]: 16 ASCII letters or digits.
    ///
    /// # Errors
    ///
    /// [`InvalidKeyId`] when the text is not exactly that.
    pub fn parse(text: &str) -> Result<Self, InvalidKeyId> {
        let bytes = text.as_bytes();
        if bytes.len() != KEY_ID_LEN || !bytes.iter().all(u8::is_ascii_alphanumeric) {
            return Err(InvalidKeyId);
        }
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(bytes);
        Ok(Self(id))
    }

    pub(crate) fn from_alphanumeric(id: [u8; KEY_ID_LEN]) -> Self {
        debug_assert!(id.iter().all(u8::is_ascii_alphanumeric));
        Self(id)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Every constructor admits only ASCII alphanumerics, so this never falls back.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("KeyId").field(&self.as_str()).finish()
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for KeyId {
    type Err = InvalidKeyId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The text given to [`KeyId::parse`] is not a key id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a key id is exactly 16 ASCII letters or digits")]
pub struct InvalidKeyId;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_id_parse_accepts_only_sixteen_alphanumerics() {
        assert!(KeyId::parse("AbCdEfGh12345678").is_ok());
        assert_eq!(KeyId::parse("AbCdEfGh1234567"), Err(InvalidKeyId));
        assert_eq!(KeyId::parse("AbCdEfGh1234567_"), Err(InvalidKeyId));
    }
}
