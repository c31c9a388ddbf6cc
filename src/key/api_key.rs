//! [`ApiKey`]: the plaintext key, assembled once and shown once.

use std::fmt;

use zeroize::Zeroizing;

use crate::key::checksum::{crc32, encode_checksum};
use crate::key::format::{KeyFormat, MalformedKey, SECRET_LEN};
use crate::key::id::KeyId;

/// A plaintext API key: the secret a client presents.
///
/// It exists in your process only when a key is generated, to be shown once, or when
/// you parse one yourself. `Debug` redacts it, there is no `Display`, and its memory is
/// zeroized on drop. Read it with [`ApiKey::expose_secret`], whose name makes each use
/// visible in review.
///
/// ```
/// use keygate::{ApiKey, KeyFormat, KeyGenerator};
///
/// let key = KeyGenerator::new(KeyFormat::new()).generate()?;
/// assert!(!format!("{key:?}").contains(key.expose_secret()));
///
/// let parsed = ApiKey::parse(key.expose_secret(), &KeyFormat::new())?;
/// assert_eq!(parsed.id(), key.id());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ApiKey {
    text: Zeroizing<String>,
    id: KeyId,
}

impl ApiKey {
    /// Checks `text` against `format` and keeps a zeroizing copy of it.
    ///
    /// # Errors
    ///
    /// A [`MalformedKey`] as from [`KeyFormat::check`].
    pub fn parse(text: &str, format: &KeyFormat) -> Result<Self, MalformedKey> {
        let id = format.check(text)?;
        Ok(Self {
            text: Zeroizing::new(text.to_owned()),
            id,
        })
    }

    /// The key's non-secret id.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The whole key as the client must send it.
    pub fn expose_secret(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Assembling and previewing keys: the part of a format that handles plaintext.
impl KeyFormat {
    /// Assembles a key from its id and secret, appending the checksum.
    pub(crate) fn assemble(&self, id: &KeyId, secret: &[u8; SECRET_LEN]) -> ApiKey {
        let mut text = Zeroizing::new(String::with_capacity(self.key_len()));
        text.push_str(&self.head);
        text.push_str(id.as_str());
        // The secret is alphanumeric ASCII by construction, so every byte is one char.
        text.extend(secret.iter().map(|&b| char::from(b)));
        let checksum = encode_checksum(crc32(text.as_bytes()));
        text.extend(checksum.iter().map(|&b| char::from(b)));
        ApiKey { text, id: *id }
    }

    /// The preview shown in listings: the prefix and the key's last four characters.
    ///
    /// The last characters belong to the checksum, so the preview reveals nothing of the
    /// secret beyond what the checksum already implies.
    pub fn preview(&self, key: &ApiKey) -> String {
        let text = key.expose_secret();
        format!("{}...{}", self.head, &text[text.len() - 4..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(format: &KeyFormat) -> ApiKey {
        format.assemble(
            &KeyId::parse("AbCdEfGh12345678").unwrap(),
            &[b'x'; SECRET_LEN],
        )
    }

    #[test]
    fn assembled_key_passes_its_own_check() {
        let format = KeyFormat::new();
        let key = key(&format);
        assert_eq!(format.check(key.expose_secret()), Ok(key.id()));
    }

    #[test]
    fn key_has_documented_length_and_alphanumeric_body() {
        let format = KeyFormat::with_prefix("kg_live").unwrap();
        let key = key(&format);
        let text = key.expose_secret();
        assert_eq!(text.len(), "kg_live_".len() + 16 + 48 + 6);
        assert!(
            text["kg_live_".len()..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric())
        );
    }

    #[test]
    fn api_key_debug_does_not_show_the_secret() {
        let key = key(&KeyFormat::new());
        let debug = format!("{key:?}");
        assert!(!debug.contains(&key.expose_secret()[19..]));
        assert!(debug.contains("<redacted>"));
    }

    #[test]
    fn preview_shows_prefix_and_last_four_characters() {
        let format = KeyFormat::new();
        let key = key(&format);
        let text = key.expose_secret();
        assert_eq!(
            format.preview(&key),
            format!("kg_...{}", &text[text.len() - 4..])
        );
    }
}
