//! [`KeyManager`]: create (plaintext once), list, regenerate, revoke.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::clock::{Clock, SystemClock};
use crate::generate::{GenerateError, KeyGenerator};
use crate::hash::KeyHasher;
use crate::identity::{Identity, Scopes};
use crate::key::{ApiKey, KeyFormat, KeyId};
use crate::layer::ApiKeyLayer;
use crate::record::KeyRecord;
use crate::store::{KeyStoreWrite, StoreError};

/// How many times `create` draws a new id when the drawn one is taken. With 95-bit ids a
/// second draw is already astronomically unlikely; the loop only keeps a broken RNG or a
/// store bug from turning into an endless one.
const ID_ATTEMPTS: usize = 3;

/// The longest grace period [`KeyManager::regenerate`] grants: a rollover window, not a
/// second key.
pub const MAX_GRACE: Duration = Duration::from_secs(30 * 24 * 3600);

/// The key lifecycle over a [`KeyStoreWrite`].
///
/// The manager and the layer must agree on format, hasher and clock: build the layer
/// with [`KeyManager::layer`] and they do.
///
/// ```
/// use keygate::{KeyManager, MemoryStore, NewKey, Scopes};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = KeyManager::new(MemoryStore::new());
/// let created = manager
///     .create(NewKey::new("user-42", "ci deploy").with_scopes(Scopes::new(["deploy"])?))
///     .await?;
/// println!("shown once: {}", created.key.expose_secret());
///
/// let listed = manager.list_by_user("user-42").await?;
/// assert_eq!(listed[0].preview, created.record.preview);
///
/// let rotated = manager.regenerate(&created.record.id(), None).await?;
/// assert_ne!(rotated.key.expose_secret(), created.key.expose_secret());
/// manager.revoke(&created.record.id()).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct KeyManager {
    store: Arc<dyn KeyStoreWrite>,
    generator: KeyGenerator,
    hasher: KeyHasher,
    clock: Arc<dyn Clock>,
}

impl KeyManager {
    /// A manager over `store`, with the default format (prefix `kg`), SHA-256 and the
    /// system clock.
    pub fn new(store: impl KeyStoreWrite) -> Self {
        Self::from_shared_store(Arc::new(store))
    }

    /// As [`KeyManager::new`], for a store already behind an `Arc`.
    pub fn from_shared_store(store: Arc<dyn KeyStoreWrite>) -> Self {
        Self {
            store,
            generator: KeyGenerator::default(),
            hasher: KeyHasher::sha256(),
            clock: Arc::new(SystemClock),
        }
    }

    /// The format of new keys.
    pub fn with_format(mut self, format: KeyFormat) -> Self {
        self.generator = KeyGenerator::new(format);
        self
    }

    /// The hasher for new keys.
    pub fn with_hasher(mut self, hasher: KeyHasher) -> Self {
        self.hasher = hasher;
        self
    }

    /// The clock for creation times, expiry and grace periods.
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The format of the keys this manager makes.
    pub fn format(&self) -> &KeyFormat {
        self.generator.format()
    }

    /// The store this manager writes to.
    pub fn store(&self) -> &Arc<dyn KeyStoreWrite> {
        &self.store
    }

    /// A layer that accepts this manager's keys: same store, format, hasher and clock,
    /// with last-used tracking written back to the store every 30 seconds.
    pub fn layer(&self) -> ApiKeyLayer {
        ApiKeyLayer::from_shared_store(self.store.clone())
            .with_format(self.format().clone())
            .with_hasher(self.hasher.clone())
            .with_clock(self.clock.clone())
            .with_default_usage_tracking(self.store.clone())
    }

    /// Creates a key. The returned [`CreatedKey::key`] is the only copy of the plaintext.
    ///
    /// # Errors
    ///
    /// [`ManageError::Invalid`] for an empty or over-long name, user or space, or an expiry
    /// that is not in the future; otherwise the store's or the generator's error.
    pub async fn create(&self, new: NewKey) -> Result<CreatedKey, ManageError> {
        new.validate()?;
        let now = self.clock.now();
        let expires_at = match new.expiry {
            None => None,
            Some(Expiry::At(at)) => Some(at),
            Some(Expiry::In(after)) => Some(now.checked_add(after).ok_or(ManageError::Invalid(
                "the expiry lies beyond what the clock can represent",
            ))?),
        };
        if expires_at.is_some_and(|at| at <= now) {
            return Err(ManageError::Invalid("the expiry must lie in the future"));
        }
        for _ in 0..ID_ATTEMPTS {
            let key = self.generator.generate()?;
            let mut identity = Identity::new(key.id(), new.user.as_str())
                .with_name(new.name.as_str())
                .with_scopes(new.scopes.clone());
            if let Some(space) = &new.space {
                identity = identity.with_space(space.as_str());
            }
            let record = KeyRecord::new(identity, self.format().preview(&key), now)
                .with_expires_at(expires_at);
            match self.store.insert(&record, self.hasher.hash(&key)).await {
                Ok(()) => {
                    tracing::info!(target: "keygate::manage", key_id = %record.id(), user = %new.user, "key created");
                    return Ok(CreatedKey { key, record });
                }
                Err(StoreError::Conflict) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(StoreError::Conflict.into())
    }

    /// One key's record.
    ///
    /// # Errors
    ///
    /// [`ManageError::NotFound`], or the store's error.
    pub async fn get(&self, id: &KeyId) -> Result<KeyRecord, ManageError> {
        self.store.record(id).await?.ok_or(ManageError::NotFound)
    }

    /// Every key of `user`, revoked ones included, oldest first.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn list_by_user(&self, user: &str) -> Result<Vec<KeyRecord>, ManageError> {
        Ok(self.store.list_by_user(user).await?)
    }

    /// Every key bound to `space`, revoked ones included, oldest first.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn list_by_space(&self, space: &str) -> Result<Vec<KeyRecord>, ManageError> {
        Ok(self.store.list_by_space(space).await?)
    }

    /// Issues a new secret for key `id`, keeping its id, name, owner, space, scopes and
    /// expiry. The old secret stops working on the next request, unless `grace` keeps it
    /// valid for that long.
    ///
    /// # Errors
    ///
    /// [`ManageError::NotFound`], [`ManageError::Revoked`] or [`ManageError::Expired`], or
    /// the store's or the generator's error.
    pub async fn regenerate(
        &self,
        id: &KeyId,
        grace: Option<Duration>,
    ) -> Result<CreatedKey, ManageError> {
        let record = self.get(id).await?;
        let now = self.clock.now();
        if record.revoked_at.is_some() {
            return Err(ManageError::Revoked);
        }
        if record.expires_at.is_some_and(|at| now >= at) {
            return Err(ManageError::Expired);
        }
        let key = self.generator.generate_for(*id)?;
        let preview = self.format().preview(&key);
        let keep_previous_until = match grace {
            Some(grace) if grace > MAX_GRACE => {
                return Err(ManageError::Invalid("a grace period is at most 30 days"));
            }
            Some(grace) => Some(now.checked_add(grace).ok_or(ManageError::Invalid(
                "the grace period lies beyond what the clock can represent",
            ))?),
            None => None,
        };
        self.store
            .replace_secret(id, self.hasher.hash(&key), &preview, keep_previous_until)
            .await?;
        tracing::info!(target: "keygate::manage", key_id = %id, grace_secs = grace.map(|g| g.as_secs()), "key regenerated");
        let mut record = record;
        record.preview = preview;
        Ok(CreatedKey { key, record })
    }

    /// Revokes key `id`, at once and for good.
    ///
    /// # Errors
    ///
    /// [`ManageError::NotFound`], or the store's error.
    pub async fn revoke(&self, id: &KeyId) -> Result<(), ManageError> {
        self.store
            .revoke(id, self.clock.now())
            .await
            .map_err(|error| match error {
                StoreError::NotFound => ManageError::NotFound,
                error => error.into(),
            })?;
        tracing::info!(target: "keygate::manage", key_id = %id, "key revoked");
        Ok(())
    }

    /// [`KeyManager::create`] on behalf of the key `caller`: the new key belongs to the
    /// caller's user, holds no scope the caller lacks, expires no later than the caller,
    /// and is bound to the caller's space when the caller is (a key request without a space
    /// gets the caller's).
    ///
    /// A user-wide caller may bind the new key to any space: whether its user belongs to
    /// that space is your application's to check before calling this.
    ///
    /// # Errors
    ///
    /// [`ManageError::ScopeEscalation`], [`ManageError::SpaceEscalation`], or as
    /// [`KeyManager::create`].
    pub async fn create_as(
        &self,
        caller: &Identity,
        mut new: NewKey,
    ) -> Result<CreatedKey, ManageError> {
        new.user = caller.user().to_owned();
        check_scopes(caller, &new.scopes)?;
        match (caller.space(), &new.space) {
            (Some(bound), None) => new.space = Some(bound.to_owned()),
            (Some(bound), Some(asked)) if bound != asked => {
                return Err(ManageError::SpaceEscalation);
            }
            _ => {}
        }
        // A short-lived key must not mint a longer-lived one.
        let caller_expiry = self
            .store
            .record(&caller.key_id())
            .await?
            .and_then(|record| record.expires_at);
        if let Some(cap) = caller_expiry {
            let asked = match new.expiry {
                None => cap,
                Some(Expiry::At(at)) => at,
                Some(Expiry::In(after)) => self.clock.now().checked_add(after).unwrap_or(cap),
            };
            new.expiry = Some(Expiry::At(asked.min(cap)));
        }
        self.create(new).await
    }

    /// The keys `caller` may see: its user's keys, and only those of its space when the
    /// caller is bound to one.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn list_as(&self, caller: &Identity) -> Result<Vec<KeyRecord>, ManageError> {
        let mut records = match caller.space() {
            Some(space) => self.list_by_space(space).await?,
            None => self.list_by_user(caller.user()).await?,
        };
        records.retain(|record| visible_to(caller, record));
        Ok(records)
    }

    /// [`KeyManager::regenerate`] on behalf of `caller`, for a key it may see and whose
    /// scopes it holds.
    ///
    /// # Errors
    ///
    /// [`ManageError::NotFound`] for a key the caller may not see (its existence is not
    /// revealed), [`ManageError::ScopeEscalation`], or as [`KeyManager::regenerate`].
    pub async fn regenerate_as(
        &self,
        caller: &Identity,
        id: &KeyId,
        grace: Option<Duration>,
    ) -> Result<CreatedKey, ManageError> {
        let record = self.visible_record(caller, id).await?;
        check_scopes(caller, record.identity.scopes())?;
        self.regenerate(id, grace).await
    }

    /// [`KeyManager::revoke`] on behalf of `caller`, for a key it may see.
    ///
    /// # Errors
    ///
    /// [`ManageError::NotFound`] for a key the caller may not see, or as
    /// [`KeyManager::revoke`].
    pub async fn revoke_as(&self, caller: &Identity, id: &KeyId) -> Result<(), ManageError> {
        self.visible_record(caller, id).await?;
        self.revoke(id).await
    }

    async fn visible_record(
        &self,
        caller: &Identity,
        id: &KeyId,
    ) -> Result<KeyRecord, ManageError> {
        let record = self.get(id).await?;
        if visible_to(caller, &record) {
            Ok(record)
        } else {
            Err(ManageError::NotFound)
        }
    }
}

fn visible_to(caller: &Identity, record: &KeyRecord) -> bool {
    record.identity.user() == caller.user()
        && caller
            .space()
            .is_none_or(|space| record.identity.space() == Some(space))
}

fn check_scopes(caller: &Identity, wanted: &Scopes) -> Result<(), ManageError> {
    match wanted.iter().find(|scope| !caller.scopes().contains(scope)) {
        Some(missing) => Err(ManageError::ScopeEscalation(missing.to_owned())),
        None => Ok(()),
    }
}

impl fmt::Debug for KeyManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyManager")
            .field("format", self.format())
            .field("hasher", &self.hasher)
            .finish_non_exhaustive()
    }
}

/// What to create: owner, name, and optionally space, scopes and expiry.
#[derive(Debug, Clone)]
pub struct NewKey {
    user: String,
    name: String,
    space: Option<String>,
    scopes: Scopes,
    expiry: Option<Expiry>,
}

#[derive(Debug, Clone, Copy)]
enum Expiry {
    In(Duration),
    At(SystemTime),
}

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

    fn validate(&self) -> Result<(), ManageError> {
        let text = |value: &str, max: usize| {
            !value.trim().is_empty() && value.len() <= max && !value.chars().any(char::is_control)
        };
        if !text(&self.name, MAX_NAME_LEN) {
            return Err(ManageError::Invalid(
                "a key name is 1 to 128 bytes of text without control characters",
            ));
        }
        if !text(&self.user, MAX_ID_LEN) {
            return Err(ManageError::Invalid(
                "a user id is 1 to 256 bytes of text without control characters",
            ));
        }
        if self
            .space
            .as_deref()
            .is_some_and(|space| !text(space, MAX_ID_LEN))
        {
            return Err(ManageError::Invalid(
                "a space id is 1 to 256 bytes of text without control characters",
            ));
        }
        Ok(())
    }
}

/// A key just created or regenerated: the plaintext, shown once, and its record.
#[derive(Debug)]
#[non_exhaustive]
pub struct CreatedKey {
    /// The plaintext key. Hand it to its owner and drop it: it is not stored anywhere.
    pub key: ApiKey,
    /// What listings will show of it.
    pub record: KeyRecord,
}

/// A lifecycle operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManageError {
    /// The request itself is invalid; the text says how.
    #[error("invalid key request: {0}")]
    Invalid(&'static str),
    /// No such key (or, for the `_as` methods, none the caller may see).
    #[error("no such key")]
    NotFound,
    /// The key is revoked; it cannot be regenerated.
    #[error("the key is revoked")]
    Revoked,
    /// The key has expired; it cannot be regenerated.
    #[error("the key has expired")]
    Expired,
    /// The caller would grant a scope it does not hold.
    #[error("a key cannot grant scope {0:?}, which it does not hold")]
    ScopeEscalation(String),
    /// A space-bound caller asked for a key of another space.
    #[error("a key bound to a space can only create keys for that space")]
    SpaceEscalation,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The operating system's randomness failed.
    #[error(transparent)]
    Generate(#[from] GenerateError),
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;
    use crate::{ManualClock, MemoryStore};

    fn manager() -> (KeyManager, ManualClock) {
        let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        (
            KeyManager::new(MemoryStore::new()).with_clock(clock.clone()),
            clock,
        )
    }

    fn caller(space: Option<&str>, scopes: &[&str]) -> Identity {
        let identity = Identity::new(KeyId::parse("CALLERCALLER0000").unwrap(), "alice")
            .with_scopes(Scopes::new(scopes).unwrap());
        match space {
            Some(space) => identity.with_space(space),
            None => identity,
        }
    }

    #[tokio::test]
    async fn create_rejects_an_empty_name() {
        let (manager, _) = manager();
        let result = manager.create(NewKey::new("alice", " ")).await;
        assert!(matches!(result, Err(ManageError::Invalid(_))));
    }

    #[tokio::test]
    async fn create_rejects_an_expiry_in_the_past() {
        let (manager, _) = manager();
        let result = manager
            .create(NewKey::new("alice", "k").expires_at(UNIX_EPOCH))
            .await;
        assert!(matches!(result, Err(ManageError::Invalid(_))));
    }

    #[tokio::test]
    async fn record_preview_is_prefix_and_last_four_characters() {
        let (manager, _) = manager();
        let created = manager.create(NewKey::new("alice", "k")).await.unwrap();
        let text = created.key.expose_secret();
        assert_eq!(
            created.record.preview,
            format!("kg_...{}", &text[text.len() - 4..])
        );
    }

    #[tokio::test]
    async fn regenerate_keeps_the_id_and_changes_the_secret() {
        let (manager, _) = manager();
        let created = manager.create(NewKey::new("alice", "k")).await.unwrap();
        let rotated = manager
            .regenerate(&created.record.id(), None)
            .await
            .unwrap();
        assert_eq!(rotated.key.id(), created.key.id());
        assert_ne!(rotated.key.expose_secret(), created.key.expose_secret());
    }

    #[tokio::test]
    async fn regenerate_of_a_revoked_key_is_refused() {
        let (manager, _) = manager();
        let created = manager.create(NewKey::new("alice", "k")).await.unwrap();
        manager.revoke(&created.record.id()).await.unwrap();
        let result = manager.regenerate(&created.record.id(), None).await;
        assert!(matches!(result, Err(ManageError::Revoked)));
    }

    #[tokio::test]
    async fn revoke_of_an_unknown_key_is_not_found() {
        let (manager, _) = manager();
        let id = KeyId::parse("AAAAAAAAAAAAAAAA").unwrap();
        assert!(matches!(
            manager.revoke(&id).await,
            Err(ManageError::NotFound)
        ));
    }

    #[tokio::test]
    async fn create_as_refuses_a_scope_the_caller_lacks() {
        let (manager, _) = manager();
        let new = NewKey::new("x", "k").with_scopes(Scopes::new(["admin"]).unwrap());
        let result = manager.create_as(&caller(None, &["keys:write"]), new).await;
        assert!(matches!(result, Err(ManageError::ScopeEscalation(scope)) if scope == "admin"));
    }

    #[tokio::test]
    async fn create_as_refuses_another_space_for_a_space_bound_caller() {
        let (manager, _) = manager();
        let new = NewKey::new("x", "k").with_space("s2");
        let result = manager.create_as(&caller(Some("s1"), &[]), new).await;
        assert!(matches!(result, Err(ManageError::SpaceEscalation)));
    }

    #[tokio::test]
    async fn create_as_binds_to_the_callers_space_and_user() {
        let (manager, _) = manager();
        let created = manager
            .create_as(&caller(Some("s1"), &[]), NewKey::new("mallory", "k"))
            .await
            .unwrap();
        assert_eq!(created.record.identity.space(), Some("s1"));
        assert_eq!(created.record.identity.user(), "alice");
    }

    #[tokio::test]
    async fn create_as_caps_expiry_at_the_callers() {
        let (manager, clock) = manager();
        let parent = manager
            .create(NewKey::new("alice", "short").expires_in(Duration::from_secs(60)))
            .await
            .unwrap();
        let child = manager
            .create_as(&parent.record.identity, NewKey::new("", "forever"))
            .await
            .unwrap();
        assert_eq!(
            child.record.expires_at,
            Some(clock.now() + Duration::from_secs(60))
        );
    }

    #[tokio::test]
    async fn grace_longer_than_the_maximum_is_refused() {
        let (manager, _) = manager();
        let created = manager.create(NewKey::new("alice", "k")).await.unwrap();
        let grace = MAX_GRACE + Duration::from_secs(1);
        let result = manager.regenerate(&created.record.id(), Some(grace)).await;
        assert!(matches!(result, Err(ManageError::Invalid(_))));
    }

    #[tokio::test]
    async fn revoke_as_hides_keys_of_another_user() {
        let (manager, _) = manager();
        let bobs = manager.create(NewKey::new("bob", "k")).await.unwrap();
        let result = manager
            .revoke_as(&caller(None, &[]), &bobs.record.id())
            .await;
        assert!(matches!(result, Err(ManageError::NotFound)));
    }

    #[tokio::test]
    async fn list_as_a_space_caller_shows_only_that_space() {
        let (manager, _) = manager();
        let user_wide = caller(None, &[]);
        manager
            .create_as(&user_wide, NewKey::new("", "a").with_space("s1"))
            .await
            .unwrap();
        manager
            .create_as(&user_wide, NewKey::new("", "b").with_space("s2"))
            .await
            .unwrap();
        manager
            .create_as(&user_wide, NewKey::new("", "c"))
            .await
            .unwrap();
        let listed = manager.list_as(&caller(Some("s1"), &[])).await.unwrap();
        let names: Vec<_> = listed.iter().map(|r| r.identity.name()).collect();
        assert_eq!(names, ["a"]);
        assert_eq!(manager.list_as(&user_wide).await.unwrap().len(), 3);
    }

    #[tokio::test]
    async fn expires_in_is_measured_from_the_clock() {
        let (manager, clock) = manager();
        let created = manager
            .create(NewKey::new("alice", "k").expires_in(Duration::from_secs(60)))
            .await
            .unwrap();
        assert_eq!(
            created.record.expires_at,
            Some(clock.now() + Duration::from_secs(60))
        );
    }
}
