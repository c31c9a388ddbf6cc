//! [`KeyManager`]: create (plaintext once), list, regenerate, revoke, delete; and the same
//! on behalf of an [`Actor`], without gaining power.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::clock::{Clock, SystemClock};
use crate::generate::KeyGenerator;
use crate::hash::KeyHasher;
use crate::identity::Identity;
use crate::key::{ApiKey, KeyFormat, KeyId};
use crate::layer::ApiKeyLayer;
use crate::record::KeyRecord;
use crate::store::{KeyStoreWrite, Page, StoreError};

mod actor;
mod error;
mod new_key;
mod on_behalf;

pub use actor::Actor;
pub use error::ManageError;
pub use new_key::NewKey;

/// How many times `create` draws a new id when the drawn one is taken. With 95-bit ids a
/// second draw is already astronomically unlikely; the loop only keeps a broken RNG or a
/// store bug from turning into an endless one.
const ID_ATTEMPTS: usize = 3;

/// The longest grace period [`KeyManager::regenerate`] grants: a rollover window, not a
/// second key.
pub const MAX_GRACE: Duration = Duration::from_secs(30 * 24 * 3600);

/// The default cap on keys per user and per space
/// ([`KeyManager::with_max_keys_per_owner`]).
pub const DEFAULT_MAX_KEYS_PER_OWNER: usize = 100;

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
///
/// Each user and each space holds at most [`DEFAULT_MAX_KEYS_PER_OWNER`] keys (revoked
/// ones included, so that nobody can grow the store without bound); when an owner is full,
/// `create` deletes its oldest revoked key to make room, and with none revoked it refuses
/// with [`ManageError::TooManyKeys`]. Two creates racing for the last place can both get
/// it: the cap holds to within the number of concurrent creates.
#[derive(Clone)]
pub struct KeyManager {
    store: Arc<dyn KeyStoreWrite>,
    generator: KeyGenerator,
    hasher: KeyHasher,
    clock: Arc<dyn Clock>,
    max_keys: usize,
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
            max_keys: DEFAULT_MAX_KEYS_PER_OWNER,
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

    /// The most keys one user, and one space, may hold (default
    /// [`DEFAULT_MAX_KEYS_PER_OWNER`], at least 1). Listings return at most this many.
    pub fn with_max_keys_per_owner(mut self, max: usize) -> Self {
        self.max_keys = max.max(1);
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

    /// The cap on keys per user and per space.
    pub fn max_keys_per_owner(&self) -> usize {
        self.max_keys
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

    fn now(&self) -> SystemTime {
        self.clock.now()
    }

    /// Creates a key. The returned [`CreatedKey::key`] is the only copy of the plaintext.
    ///
    /// # Errors
    ///
    /// [`ManageError::Invalid`] for an empty or over-long name, user or space, or an expiry
    /// that is not in the future; [`ManageError::TooManyKeys`] when the user or the space
    /// is full; otherwise the store's or the generator's error.
    pub async fn create(&self, new: NewKey) -> Result<CreatedKey, ManageError> {
        new.validate()?;
        let now = self.now();
        let expires_at = new.expiry.map(|expiry| expiry.at(now)).transpose()?;
        if expires_at.is_some_and(|at| at <= now) {
            return Err(ManageError::Invalid("the expiry must lie in the future"));
        }
        self.make_room(Owner::User(&new.user)).await?;
        if let Some(space) = &new.space {
            self.make_room(Owner::Space(space)).await?;
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

    /// Keeps an owner under the cap: when it is full, deletes its oldest revoked key, or
    /// refuses.
    async fn make_room(&self, owner: Owner<'_>) -> Result<(), ManageError> {
        let keys = self.list_page(owner, Page::first(self.max_keys)).await?;
        if keys.len() < self.max_keys {
            return Ok(());
        }
        let oldest_revoked = keys.iter().find(|record| record.revoked_at.is_some());
        let Some(oldest_revoked) = oldest_revoked else {
            return Err(ManageError::TooManyKeys {
                limit: self.max_keys,
            });
        };
        match self.store.delete(&oldest_revoked.id()).await {
            // Another create made room with the same key.
            Ok(()) | Err(StoreError::NotFound) => {}
            Err(error) => return Err(error.into()),
        }
        tracing::info!(target: "keygate::manage", key_id = %oldest_revoked.id(), "revoked key deleted to make room");
        Ok(())
    }

    async fn list_page(&self, owner: Owner<'_>, page: Page) -> Result<Vec<KeyRecord>, StoreError> {
        match owner {
            Owner::User(user) => self.store.list_by_user(user, page).await,
            Owner::Space(space) => self.store.list_by_space(space, page).await,
        }
    }

    /// One key's record.
    ///
    /// # Errors
    ///
    /// [`ManageError::NotFound`], or the store's error.
    pub async fn get(&self, id: &KeyId) -> Result<KeyRecord, ManageError> {
        self.store.record(id).await?.ok_or(ManageError::NotFound)
    }

    /// The keys of `user`, revoked ones included, oldest first: at most the cap on keys
    /// per owner.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn list_by_user(&self, user: &str) -> Result<Vec<KeyRecord>, ManageError> {
        self.list_page_by_user(user, Page::first(self.max_keys))
            .await
    }

    /// The keys bound to `space`, revoked ones included, oldest first: at most the cap on
    /// keys per owner.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn list_by_space(&self, space: &str) -> Result<Vec<KeyRecord>, ManageError> {
        self.list_page_by_space(space, Page::first(self.max_keys))
            .await
    }

    /// One page of the keys of `user`; the page's limit is capped at the cap on keys per
    /// owner.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn list_page_by_user(
        &self,
        user: &str,
        page: Page,
    ) -> Result<Vec<KeyRecord>, ManageError> {
        let page = self.bounded(page);
        Ok(self.list_page(Owner::User(user), page).await?)
    }

    /// One page of the keys bound to `space`; the page's limit is capped at the cap on
    /// keys per owner.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn list_page_by_space(
        &self,
        space: &str,
        page: Page,
    ) -> Result<Vec<KeyRecord>, ManageError> {
        let page = self.bounded(page);
        Ok(self.list_page(Owner::Space(space), page).await?)
    }

    fn bounded(&self, mut page: Page) -> Page {
        page.limit = page.limit.min(self.max_keys);
        page
    }

    /// Issues a new secret for key `id`, keeping its id, name, owner, space, scopes and
    /// expiry. The old secret stops working on the next request, unless `grace` keeps it
    /// valid for that long (at most [`MAX_GRACE`], and never past the key's expiry).
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
        self.regenerate_record(record, grace).await
    }

    async fn regenerate_record(
        &self,
        mut record: KeyRecord,
        grace: Option<Duration>,
    ) -> Result<CreatedKey, ManageError> {
        let now = self.now();
        if record.revoked_at.is_some() {
            return Err(ManageError::Revoked);
        }
        if record.expires_at.is_some_and(|at| now >= at) {
            return Err(ManageError::Expired);
        }
        let keep_previous_until = match grace {
            Some(grace) if grace > MAX_GRACE => {
                return Err(ManageError::Invalid("a grace period is at most 30 days"));
            }
            Some(grace) => Some(now.checked_add(grace).ok_or(ManageError::Invalid(
                "the grace period lies beyond what the clock can represent",
            ))?),
            None => None,
        };
        let id = record.id();
        let key = self.generator.generate_for(id)?;
        let preview = self.format().preview(&key);
        self.store
            .replace_secret(&id, self.hasher.hash(&key), &preview, keep_previous_until)
            .await
            .map_err(not_found)?;
        tracing::info!(target: "keygate::manage", key_id = %id, grace_secs = grace.map(|g| g.as_secs()), "key regenerated");
        record.preview = preview;
        Ok(CreatedKey { key, record })
    }

    /// Revokes key `id`, at once and for good.
    ///
    /// # Errors
    ///
    /// [`ManageError::NotFound`], or the store's error.
    pub async fn revoke(&self, id: &KeyId) -> Result<(), ManageError> {
        self.store.revoke(id, self.now()).await.map_err(not_found)?;
        tracing::info!(target: "keygate::manage", key_id = %id, "key revoked");
        Ok(())
    }

    /// Deletes key `id` and its record: its lookups find nothing from then on (401, and
    /// `unknown` in the audit trail). Revoke first to keep the record.
    ///
    /// # Errors
    ///
    /// [`ManageError::NotFound`], or the store's error.
    pub async fn delete(&self, id: &KeyId) -> Result<(), ManageError> {
        self.store.delete(id).await.map_err(not_found)?;
        tracing::info!(target: "keygate::manage", key_id = %id, "key deleted");
        Ok(())
    }

    /// Revokes every live key of `user`; returns how many were revoked.
    ///
    /// # Errors
    ///
    /// The store's error; keys revoked before it stay revoked.
    pub async fn revoke_all_for_user(&self, user: &str) -> Result<usize, ManageError> {
        let mut revoked = 0;
        let mut page = Page::first(self.max_keys);
        loop {
            let keys = self.list_page(Owner::User(user), page).await?;
            for record in keys.iter().filter(|record| record.revoked_at.is_none()) {
                match self.revoke(&record.id()).await {
                    Ok(()) => revoked += 1,
                    Err(ManageError::NotFound) => {}
                    Err(error) => return Err(error),
                }
            }
            match keys.last() {
                Some(last) if keys.len() == page.limit => page = Page::after(last, page.limit),
                _ => break,
            }
        }
        tracing::info!(target: "keygate::manage", user, revoked, "all keys of a user revoked");
        Ok(revoked)
    }
}

/// Whose keys a cap or a listing is about.
#[derive(Clone, Copy)]
enum Owner<'a> {
    User(&'a str),
    Space(&'a str),
}

/// A store's `NotFound` as the manager's.
fn not_found(error: StoreError) -> ManageError {
    match error {
        StoreError::NotFound => ManageError::NotFound,
        error => error.into(),
    }
}

impl fmt::Debug for KeyManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyManager")
            .field("format", self.format())
            .field("hasher", &self.hasher)
            .field("max_keys_per_owner", &self.max_keys)
            .finish_non_exhaustive()
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
    async fn grace_longer_than_the_maximum_is_refused() {
        let (manager, _) = manager();
        let created = manager.create(NewKey::new("alice", "k")).await.unwrap();
        let grace = MAX_GRACE + Duration::from_secs(1);
        let result = manager.regenerate(&created.record.id(), Some(grace)).await;
        assert!(matches!(result, Err(ManageError::Invalid(_))));
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

    #[tokio::test]
    async fn a_full_user_is_refused_a_new_key() {
        let (manager, _) = manager();
        let manager = manager.with_max_keys_per_owner(3);
        for name in ["a", "b", "c"] {
            manager.create(NewKey::new("alice", name)).await.unwrap();
        }
        let result = manager.create(NewKey::new("alice", "d")).await;
        assert!(matches!(result, Err(ManageError::TooManyKeys { limit: 3 })));
        assert!(manager.create(NewKey::new("bob", "a")).await.is_ok());
    }

    #[tokio::test]
    async fn a_full_space_is_refused_a_new_key() {
        let (manager, _) = manager();
        let manager = manager.with_max_keys_per_owner(2);
        manager
            .create(NewKey::new("alice", "a").with_space("s"))
            .await
            .unwrap();
        manager
            .create(NewKey::new("bob", "b").with_space("s"))
            .await
            .unwrap();
        let result = manager
            .create(NewKey::new("carol", "c").with_space("s"))
            .await;
        assert!(matches!(result, Err(ManageError::TooManyKeys { limit: 2 })));
    }

    #[tokio::test]
    async fn a_full_user_makes_room_by_deleting_the_oldest_revoked_key() {
        let (manager, clock) = manager();
        let manager = manager.with_max_keys_per_owner(2);
        let old = manager.create(NewKey::new("alice", "old")).await.unwrap();
        clock.advance(Duration::from_secs(1));
        manager.create(NewKey::new("alice", "live")).await.unwrap();
        manager.revoke(&old.record.id()).await.unwrap();
        clock.advance(Duration::from_secs(1));
        manager.create(NewKey::new("alice", "new")).await.unwrap();
        let names: Vec<String> = manager
            .list_by_user("alice")
            .await
            .unwrap()
            .iter()
            .map(|record| record.identity.name().to_owned())
            .collect();
        assert_eq!(names, ["live", "new"]);
    }

    #[tokio::test]
    async fn listings_are_bounded_by_the_cap() {
        let (manager, _) = manager();
        for name in ["a", "b", "c"] {
            manager.create(NewKey::new("alice", name)).await.unwrap();
        }
        let manager = manager.with_max_keys_per_owner(2);
        assert_eq!(manager.list_by_user("alice").await.unwrap().len(), 2);
        let page = manager
            .list_page_by_user("alice", Page::first(50))
            .await
            .unwrap();
        assert_eq!(page.len(), 2);
    }

    #[tokio::test]
    async fn revoke_all_for_user_revokes_only_that_users_live_keys() {
        let (manager, _) = manager();
        let manager = manager.with_max_keys_per_owner(2);
        for name in ["a", "b", "c"] {
            let _ = manager.create(NewKey::new("alice", name)).await;
        }
        let bobs = manager.create(NewKey::new("bob", "b")).await.unwrap();
        assert_eq!(manager.revoke_all_for_user("alice").await.unwrap(), 2);
        assert!(
            manager
                .get(&bobs.record.id())
                .await
                .unwrap()
                .revoked_at
                .is_none()
        );
    }
}
