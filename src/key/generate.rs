//! [`KeyGenerator`]: new keys from the operating system's randomness.

use rand::SeedableRng;
use rand::distr::{Alphanumeric, Distribution};
use rand::rngs::{StdRng, SysRng};

use crate::key::api_key::ApiKey;
use crate::key::format::{KeyFormat, SECRET_LEN};
use crate::key::id::{KEY_ID_LEN, KeyId};

/// Makes new keys of one [`KeyFormat`].
///
/// Each call seeds a fresh ChaCha-based CSPRNG from the operating system and samples the
/// id and the secret uniformly from `[A-Za-z0-9]`. The plaintext is returned exactly once,
/// as an [`ApiKey`]; keep only its hash
/// ([`KeyHasher::hash`](crate::KeyHasher::hash)).
///
/// ```
/// use keygate::{KeyFormat, KeyGenerator};
///
/// let generator = KeyGenerator::new(KeyFormat::with_prefix("kg_live")?);
/// let key = generator.generate()?;
/// assert!(key.expose_secret().starts_with("kg_live_"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct KeyGenerator {
    format: KeyFormat,
}

impl KeyGenerator {
    /// A generator for keys of `format`.
    pub fn new(format: KeyFormat) -> Self {
        Self { format }
    }

    /// The format of the keys this generator makes.
    pub fn format(&self) -> &KeyFormat {
        &self.format
    }

    /// Generates a new key.
    ///
    /// # Errors
    ///
    /// [`GenerateError`] when the operating system cannot supply randomness. No key is
    /// produced from weaker randomness in that case.
    pub fn generate(&self) -> Result<ApiKey, GenerateError> {
        let mut rng = StdRng::try_from_rng(&mut SysRng).map_err(|_| GenerateError)?;
        let mut id = [0u8; KEY_ID_LEN];
        for (slot, byte) in id.iter_mut().zip(Alphanumeric.sample_iter(&mut rng)) {
            *slot = byte;
        }
        Ok(self.with_secret(KeyId::from_alphanumeric(id), &mut rng))
    }

    /// Generates a new secret for an existing key id: what regeneration hands out.
    ///
    /// # Errors
    ///
    /// [`GenerateError`] when the operating system cannot supply randomness.
    pub fn generate_for(&self, id: KeyId) -> Result<ApiKey, GenerateError> {
        let mut rng = StdRng::try_from_rng(&mut SysRng).map_err(|_| GenerateError)?;
        Ok(self.with_secret(id, &mut rng))
    }

    fn with_secret(&self, id: KeyId, rng: &mut StdRng) -> ApiKey {
        let mut secret = zeroize::Zeroizing::new([0u8; SECRET_LEN]);
        for (slot, byte) in secret.iter_mut().zip(Alphanumeric.sample_iter(rng)) {
            *slot = byte;
        }
        self.format.assemble(&id, &secret)
    }
}

/// The operating system's random number generator failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the operating system's random number generator is unavailable")]
pub struct GenerateError;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn generated_key_passes_the_format_check() {
        let generator = KeyGenerator::default();
        let key = generator.generate().unwrap();
        assert_eq!(generator.format().check(key.expose_secret()), Ok(key.id()));
    }

    #[test]
    fn generated_keys_and_ids_are_distinct() {
        let generator = KeyGenerator::default();
        let keys: Vec<_> = (0..1000).map(|_| generator.generate().unwrap()).collect();
        let texts: HashSet<_> = keys.iter().map(|k| k.expose_secret().to_owned()).collect();
        let ids: HashSet<_> = keys.iter().map(ApiKey::id).collect();
        assert_eq!(texts.len(), 1000);
        assert_eq!(ids.len(), 1000);
    }

    #[test]
    fn generate_for_keeps_the_id_with_a_new_secret() {
        let generator = KeyGenerator::default();
        let first = generator.generate().unwrap();
        let second = generator.generate_for(first.id()).unwrap();
        assert_eq!(second.id(), first.id());
        assert_ne!(second.expose_secret(), first.expose_secret());
        assert!(generator.format().check(second.expose_secret()).is_ok());
    }

    #[test]
    fn secret_characters_cover_the_whole_alphabet() {
        // With 48 * 200 samples over 62 symbols, a missing symbol means a biased sampler.
        let generator = KeyGenerator::default();
        let mut seen = HashSet::new();
        for _ in 0..200 {
            let key = generator.generate().unwrap();
            seen.extend(
                key.expose_secret()
                    .bytes()
                    .skip(3 + KEY_ID_LEN)
                    .take(SECRET_LEN),
            );
        }
        assert_eq!(seen.len(), 62);
    }
}
