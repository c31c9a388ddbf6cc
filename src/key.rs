//! The key format: [`KeyFormat`], the non-secret [`KeyId`], and the plaintext [`ApiKey`].
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

use zeroize::Zeroizing;

use crate::error::ConfigError;

/// Length of the [`KeyId`] part of a key, in characters.
pub const KEY_ID_LEN: usize = 16;
/// Length of the secret part of a key, in characters (62 symbols each: about 285 bits).
pub const SECRET_LEN: usize = 48;
/// Length of the checksum part of a key, in characters.
pub const CHECKSUM_LEN: usize = 6;
/// Longest prefix a [`KeyFormat`] accepts.
pub const MAX_PREFIX_LEN: usize = 32;

const BODY_LEN: usize = KEY_ID_LEN + SECRET_LEN + CHECKSUM_LEN;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

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
    head: Box<str>,
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
        if decode_checksum(checksum) != Some(crc32fast::hash(signed)) {
            return Err(MalformedKey::Checksum);
        }
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&body[..KEY_ID_LEN]);
        Ok(KeyId(id))
    }

    /// Assembles a key from its id and secret, appending the checksum.
    pub(crate) fn assemble(&self, id: &KeyId, secret: &[u8; SECRET_LEN]) -> ApiKey {
        let mut text = Zeroizing::new(String::with_capacity(self.key_len()));
        text.push_str(&self.head);
        text.push_str(id.as_str());
        // The secret is alphanumeric ASCII by construction, so every byte is one char.
        text.extend(secret.iter().map(|&b| char::from(b)));
        let checksum = encode_checksum(crc32fast::hash(text.as_bytes()));
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

/// Whether every byte is an ASCII letter or digit.
///
/// Branch-free and without early exit, so the compiler vectorizes it: this runs on every
/// request that carries a key.
fn all_alphanumeric(bytes: &[u8]) -> bool {
    let mut outside = 0u8;
    for &b in bytes {
        let digit = b.wrapping_sub(b'0') < 10;
        let letter = (b | 0x20).wrapping_sub(b'a') < 26;
        outside |= u8::from(!(digit | letter));
    }
    outside == 0
}

/// The value of each base62 digit, or `0xFF` for bytes that are not one.
const BASE62_VALUE: [u8; 256] = {
    let mut table = [0xFF; 256];
    let mut digit = 0;
    while digit < 62 {
        table[BASE62[digit] as usize] = digit as u8;
        digit += 1;
    }
    table
};

/// Reads six base62 digits back into a CRC32; `None` when they are not base62 or name a
/// value above `u32::MAX` (no encoder writes those).
fn decode_checksum(digits: &[u8]) -> Option<u32> {
    let mut value: u64 = 0;
    for &digit in digits {
        let digit = BASE62_VALUE[usize::from(digit)];
        if digit == 0xFF {
            return None;
        }
        value = value * 62 + u64::from(digit);
    }
    u32::try_from(value).ok()
}

fn encode_checksum(mut crc: u32) -> [u8; CHECKSUM_LEN] {
    // 62^6 > 2^32, so six base62 digits hold every CRC32 value.
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(crc % 62) as usize];
        crc /= 62;
    }
    out
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
    fn other_prefix_is_rejected_as_prefix() {
        let live = KeyFormat::with_prefix("kg_live").unwrap();
        let test = KeyFormat::with_prefix("kg_test").unwrap();
        assert_eq!(
            live.check(key(&test).expose_secret()),
            Err(MalformedKey::Prefix)
        );
    }

    #[test]
    fn truncated_key_is_rejected_as_length() {
        let format = KeyFormat::new();
        let key = key(&format);
        let text = key.expose_secret();
        assert_eq!(
            format.check(&text[..text.len() - 1]),
            Err(MalformedKey::Length)
        );
    }

    #[test]
    fn non_alphanumeric_body_is_rejected_as_charset() {
        let format = KeyFormat::new();
        let mut text = key(&format).expose_secret().to_owned();
        text.replace_range(10..11, "-");
        assert_eq!(format.check(&text), Err(MalformedKey::Charset));
    }

    #[test]
    fn single_character_typo_is_rejected_as_checksum() {
        let format = KeyFormat::new();
        let mut text = key(&format).expose_secret().to_owned();
        text.replace_range(30..31, "y");
        assert_eq!(format.check(&text), Err(MalformedKey::Checksum));
    }

    #[test]
    fn checksum_encoding_covers_the_full_u32_range() {
        assert_eq!(&encode_checksum(0), b"000000");
        let max = encode_checksum(u32::MAX);
        assert_eq!(&max, b"4gfFC3");
    }

    #[test]
    fn checksum_decoding_inverts_encoding() {
        for crc in [0, 1, 61, 62, 0xDEAD_BEEF, u32::MAX] {
            assert_eq!(decode_checksum(&encode_checksum(crc)), Some(crc));
        }
        assert_eq!(decode_checksum(b"zzzzzz"), None, "above u32::MAX");
        assert_eq!(decode_checksum(b"00000-"), None);
    }

    #[test]
    fn alphanumeric_check_rejects_every_other_byte() {
        for b in 0..=255u8 {
            assert_eq!(
                all_alphanumeric(&[b'a', b, b'0']),
                b.is_ascii_alphanumeric(),
                "{b}"
            );
        }
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

    #[test]
    fn api_key_debug_does_not_show_the_secret() {
        let key = key(&KeyFormat::new());
        let debug = format!("{key:?}");
        assert!(!debug.contains(&key.expose_secret()[19..]));
        assert!(debug.contains("<redacted>"));
    }

    #[test]
    fn key_id_parse_accepts_only_sixteen_alphanumerics() {
        assert!(KeyId::parse("AbCdEfGh12345678").is_ok());
        assert_eq!(KeyId::parse("AbCdEfGh1234567"), Err(InvalidKeyId));
        assert_eq!(KeyId::parse("AbCdEfGh1234567_"), Err(InvalidKeyId));
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
