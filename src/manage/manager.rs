//! [`KeyManager`]: create (plaintext once), list, regenerate, revoke, delete.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::clock::Clock;
use crate::identity::Identity;
use crate::key::api_key::ApiKey;
use crate::key::format::KeyFormat;
use crate::key::generate::KeyGenerator;
use crate::key::hash::KeyHasher;
use crate::key::id::KeyId;
use crate::manage::error::ManageError;
use crate::manage::new_key::{Expiry, NewKey};
use crate::record::KeyRecord;
use crate::store::edit::KeyEdit;
use crate::store::error::StoreError;
use crate::store::page::Page;
use crate::store::write::KeyStoreWrite;

/// How many times `create` draws a new id when the drawn one is taken. With 95-bit ids a
/// second draw is already astronomically unlikely; the loop only keeps a broken RNG or a
/// store bug from turning into an endless one.
const ID_ATTEMPTS: usize = 3;

/// The longest grace period [`KeyManager::regenerate`] grants: a rollover window, not a
/// second key.
pub const MAX_GRACE: Duration = Duration::from_secs(30 * 24 * 3600);

/// The default cap on keys per user and per space
/// ([`Keygate::with_max_keys_per_owner`](crate::Keygate::with_max_keys_per_owner)).
pub const DEFAULT_MAX_KEYS_PER_OWNER: usize = 100;

/// The key lifecycle over a [`KeyStoreWrite`], made by
/// [`Keygate::manager`](crate::Keygate::manager) so that it agrees with the layer on key
/// format, hasher and clock.
///
/// ```
/// use keygate::{Keygate, MemoryStore, NewKey, Scopes};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = Keygate::new(MemoryStore::new()).manager();
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
/// Each user and each space holds at most [`DEFAULT_MAX_KEYS_PER_OWNER`] keys, revoked
/// and expired ones included, so that nobody can grow the store (or a listing) without
/// bound. When an owner is full, `create` deletes the requesting user's oldest dead key
/// (revoked, or expired) there to make room, and with none it refuses with
/// [`ManageError::TooManyKeys`]. [`KeyManager::create_as`] reclaims only a dead key the
/// actor could itself delete ([`KeyManager::delete_as`]). A space's cap is shared by every
/// user who makes keys in it. The cap holds under concurrent
/// creates, on one instance or many: a create that finds its owner over the cap once its
/// key is stored takes the key back out and refuses.
#[derive(Clone)]
pub struct KeyManager {
    pub(crate) store: Arc<dyn KeyStoreWrite>,
    generator: KeyGenerator,
    hasher: KeyHasher,
    clock: Arc<dyn Clock>,
    max_keys: usize,
}

/// Whose keys a cap or a listing is about.
#[derive(Clone, Copy)]
pub(crate) enum Owner<'a> {
    User(&'a str),
    Space(&'a str),
}

impl KeyManager {
    pub(crate) fn new(
        store: Arc<dyn KeyStoreWrite>,
        generator: KeyGenerator,
        hasher: KeyHasher,
        clock: Arc<dyn Clock>,
        max_keys: usize,
    ) -> Self {
        Self {
            store,
            generator,
            hasher,
            clock,
            max_keys: max_keys.max(1),
        }
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

    /// The time by the configuration's clock: what expiries are measured against.
    pub fn now(&self) -> SystemTime {
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
        self.create_reclaiming(new, |_| true).await
    }

    /// [`KeyManager::create`], making room under the cap only by deleting a dead key for
    /// which `may_reclaim` holds.
    pub(super) async fn create_reclaiming(
        &self,
        new: NewKey,
        may_reclaim: impl Fn(&KeyRecord) -> bool,
    ) -> Result<CreatedKey, ManageError> {
        new.validate()?;
        let now = self.now();
        let expires_at = new.expiry.map(|expiry| expiry.at(now)).transpose()?;
        if expires_at.is_some_and(|at| at <= now) {
            return Err(ManageError::Invalid("the expiry must lie in the future"));
        }
        let owners = owners(&new);
        for owner in &owners {
            self.make_room(*owner, &new.user, now, &may_reclaim).await?;
        }
        let created = self.insert(&new, now, expires_at).await?;
        // Creates racing for the last place all insert; each then counts, and one that
        // finds its owner over the cap takes its key back out. Counting after the write
        // keeps the cap whatever the store and however many instances write to it.
        for owner in &owners {
            if self.count(*owner).await? > self.max_keys {
                self.store
                    .delete(&created.record.id())
                    .await
                    .map_err(not_found)?;
                return Err(ManageError::TooManyKeys {
                    limit: self.max_keys,
                });
            }
        }
        tracing::info!(target: "keygate::manage", key_id = %created.record.id(), user = %new.user, "key created");
        Ok(created)
    }

    async fn insert(
        &self,
        new: &NewKey,
        now: SystemTime,
        expires_at: Option<SystemTime>,
    ) -> Result<CreatedKey, ManageError> {
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
                Ok(()) => return Ok(CreatedKey { key, record }),
                Err(StoreError::Conflict) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(StoreError::Conflict.into())
    }

    /// How many keys `owner` holds, counted up to one past the cap.
    async fn count(&self, owner: Owner<'_>) -> Result<usize, ManageError> {
        Ok(self
            .list_page(owner, Page::first(self.max_keys + 1))
            .await?
            .len())
    }

    /// Keeps an owner under the cap: when it is full, deletes `user`'s oldest dead key
    /// (revoked or expired) of that owner that `may_reclaim` allows, or refuses. Another
    /// user's keys are never touched, nor a live one.
    async fn make_room(
        &self,
        owner: Owner<'_>,
        user: &str,
        now: SystemTime,
        may_reclaim: &impl Fn(&KeyRecord) -> bool,
    ) -> Result<(), ManageError> {
        let keys = self
            .list_page(owner, Page::first(self.max_keys + 1))
            .await?;
        if keys.len() < self.max_keys {
            return Ok(());
        }
        let oldest_revoked = keys.iter().find(|record| {
            record.is_dead(now) && record.identity.user() == user && may_reclaim(record)
        });
        let Some(oldest_revoked) = oldest_revoked else {
            return Err(ManageError::TooManyKeys {
                limit: self.max_keys,
            });
        };
        match self.store.delete(&oldest_revoked.id()).await {
            // Another create made room with the same key; the count after the insert
            // decides whether there was room for both.
            Ok(()) | Err(StoreError::NotFound) => {}
            Err(error) => return Err(error.into()),
        }
        tracing::info!(target: "keygate::manage", key_id = %oldest_revoked.id(), "dead key deleted to make room");
        Ok(())
    }

    pub(crate) async fn list_page(
        &self,
        owner: Owner<'_>,
        page: Page,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        match owner {
            Owner::User(user) => self.store.list_by_user(user, page).await,
            Owner::Space(space) => self.store.list_by_space(space, page).await,
        }
    }

    /// Every key of `owner`, page after page, for `keep`. Bounded by what the owner holds,
    /// which the cap bounds.
    pub(crate) async fn list_all(
        &self,
        owner: Owner<'_>,
        mut keep: impl FnMut(&KeyRecord) -> bool,
    ) -> Result<Vec<KeyRecord>, ManageError> {
        let mut all = Vec::new();
        let mut page = Page::first(self.max_keys);
        loop {
            let records = self.list_page(owner, page).await?;
            let full = records.len() == page.limit;
            if let Some(last) = records.last() {
                page = Page::after(last, page.limit);
            }
            all.extend(records.into_iter().filter(|record| keep(record)));
            if !full {
                return Ok(all);
            }
        }
    }

    /// One page of the keys of `owner` that `keep` accepts: read on past the keys it
    /// drops, so that a page is short only at the end of the listing (a short page that
    /// was not the end would hide keys, and would tell how many keys of others sit in it).
    pub(crate) async fn filtered_page(
        &self,
        owner: Owner<'_>,
        page: Page,
        mut keep: impl FnMut(&KeyRecord) -> bool,
    ) -> Result<Vec<KeyRecord>, ManageError> {
        let wanted = self.bounded(page);
        let mut kept = Vec::new();
        let mut read = wanted;
        loop {
            let records = self.list_page(owner, read).await?;
            let full = records.len() == read.limit;
            if let Some(last) = records.last() {
                read = Page::after(last, read.limit);
            }
            for record in records {
                if keep(&record) {
                    kept.push(record);
                    if kept.len() == wanted.limit {
                        return Ok(kept);
                    }
                }
            }
            if !full {
                return Ok(kept);
            }
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

    /// Every key of `user`, revoked ones included, oldest first.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn list_by_user(&self, user: &str) -> Result<Vec<KeyRecord>, ManageError> {
        self.list_all(Owner::User(user), |_| true).await
    }

    /// Every key bound to `space`, revoked ones included, oldest first.
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn list_by_space(&self, space: &str) -> Result<Vec<KeyRecord>, ManageError> {
        self.list_all(Owner::Space(space), |_| true).await
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
        Ok(self
            .list_page(Owner::User(user), self.bounded(page))
            .await?)
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
        Ok(self
            .list_page(Owner::Space(space), self.bounded(page))
            .await?)
    }

    pub(crate) fn bounded(&self, mut page: Page) -> Page {
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

    pub(crate) async fn regenerate_record(
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

    /// Edits key `id`: renames it, sets or takes away its expiry, changes its scopes,
    /// pauses or resumes it, sets its rate limit or quota ([`KeyEdit`]). The change is
    /// seen by the next request on this instance, and through a [`CachedStore`]'s
    /// invalidation (the PostgreSQL listener) on the others. Returns the edited record.
    ///
    /// A revoked or expired key cannot be edited: both are for good.
    ///
    /// [`CachedStore`]: crate::CachedStore
    ///
    /// # Errors
    ///
    /// [`ManageError::Invalid`] for a name that is not 1 to 128 bytes of visible text or
    /// an expiry that is not in the future (or past year 9999); [`ManageError::NotFound`];
    /// [`ManageError::Revoked`]; [`ManageError::Expired`]; or the store's error.
    pub async fn edit(&self, id: &KeyId, edit: KeyEdit) -> Result<KeyRecord, ManageError> {
        let record = self.get(id).await?;
        self.edit_record(&record, edit).await
    }

    /// [`KeyManager::edit`] of a record already read.
    pub(super) async fn edit_record(
        &self,
        record: &KeyRecord,
        edit: KeyEdit,
    ) -> Result<KeyRecord, ManageError> {
        if record.revoked_at.is_some() {
            return Err(ManageError::Revoked);
        }
        // An expired key is dead like a revoked one: bringing it back would revive a
        // secret its holders were told had stopped working. Make a new key instead.
        if record.expires_at.is_some_and(|at| at <= self.now()) {
            return Err(ManageError::Expired);
        }
        validate_edit(&edit, self.now())?;
        let id = record.id();
        if !edit.is_empty() {
            self.store.edit(&id, &edit).await.map_err(not_found)?;
            tracing::info!(target: "keygate::manage", key_id = %id, "key edited");
        }
        self.get(&id).await
    }

    /// Deletes key `id` and its record: its lookups find nothing from then on (401, and
    /// `unknown` in the audit trail). Revoke instead to keep the record.
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
        let live = self
            .list_all(Owner::User(user), |record| record.revoked_at.is_none())
            .await?;
        let mut revoked = 0;
        for record in &live {
            match self.revoke(&record.id()).await {
                Ok(()) => revoked += 1,
                Err(ManageError::NotFound) => {}
                Err(error) => return Err(error),
            }
        }
        tracing::info!(target: "keygate::manage", user, revoked, "all keys of a user revoked");
        Ok(revoked)
    }
}

/// The owners a new key counts against: its user, and its space when it has one.
fn owners(new: &NewKey) -> Vec<Owner<'_>> {
    let mut owners = vec![Owner::User(&new.user)];
    if let Some(space) = &new.space {
        owners.push(Owner::Space(space));
    }
    owners
}

/// A store's `NotFound` as the manager's.
/// What an edit may set: a name as [`NewKey`] takes one, an expiry in the future.
fn validate_edit(edit: &KeyEdit, now: SystemTime) -> Result<(), ManageError> {
    if let Some(name) = &edit.name {
        NewKey::new("user", name.as_str()).validate()?;
    }
    if let Some(Some(at)) = edit.expires_at
        && Expiry::At(at).at(now)? <= now
    {
        return Err(ManageError::Invalid("the expiry must lie in the future"));
    }
    Ok(())
}

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
    use crate::clock::{Clock, ManualClock};
    use crate::config::Keygate;
    use crate::scopes::Scopes;
    use crate::store::memory::MemoryStore;

    fn keygate() -> (Keygate<MemoryStore>, ManualClock) {
        let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        (
            Keygate::new(MemoryStore::new()).with_clock(clock.clone()),
            clock,
        )
    }

    fn manager() -> (KeyManager, ManualClock) {
        let (keygate, clock) = keygate();
        (keygate.manager(), clock)
    }

    fn capped(max: usize) -> (KeyManager, ManualClock) {
        let (keygate, clock) = keygate();
        (keygate.with_max_keys_per_owner(max).manager(), clock)
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
        let (manager, _) = capped(3);
        for name in ["a", "b", "c"] {
            manager.create(NewKey::new("alice", name)).await.unwrap();
        }
        let result = manager.create(NewKey::new("alice", "d")).await;
        assert!(matches!(result, Err(ManageError::TooManyKeys { limit: 3 })));
        assert!(manager.create(NewKey::new("bob", "a")).await.is_ok());
    }

    #[tokio::test]
    async fn a_full_space_is_refused_a_new_key() {
        let (manager, _) = capped(2);
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
        let (manager, clock) = capped(2);
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
    async fn pages_are_bounded_by_the_cap() {
        let (keygate, _) = keygate();
        for name in ["a", "b", "c"] {
            keygate
                .manager()
                .create(NewKey::new("alice", name))
                .await
                .unwrap();
        }
        let manager = keygate.with_max_keys_per_owner(2).manager();
        let page = manager
            .list_page_by_user("alice", Page::first(50))
            .await
            .unwrap();
        assert_eq!(page.len(), 2);
        assert_eq!(manager.list_by_user("alice").await.unwrap().len(), 3);
    }

    #[tokio::test]
    async fn a_full_space_never_makes_room_with_another_users_revoked_key() {
        let (manager, _) = capped(2);
        let alices = manager
            .create(NewKey::new("alice", "a").with_space("s"))
            .await
            .unwrap();
        manager.revoke(&alices.record.id()).await.unwrap();
        manager
            .create(NewKey::new("bob", "b").with_space("s"))
            .await
            .unwrap();
        let result = manager
            .create(NewKey::new("bob", "c").with_space("s"))
            .await;
        assert!(matches!(result, Err(ManageError::TooManyKeys { limit: 2 })));
        assert!(manager.get(&alices.record.id()).await.is_ok());
    }

    #[tokio::test]
    async fn concurrent_creates_never_leave_an_owner_over_the_cap() {
        let (manager, _) = capped(5);
        let mut creates = tokio::task::JoinSet::new();
        for n in 0..40 {
            let manager = manager.clone();
            creates.spawn(async move {
                tokio::task::yield_now().await;
                manager.create(NewKey::new("alice", format!("k{n}"))).await
            });
        }
        while let Some(result) = creates.join_next().await {
            let _ = result.unwrap();
        }
        assert!(manager.list_by_user("alice").await.unwrap().len() <= 5);
    }

    #[tokio::test]
    async fn revoke_all_for_user_revokes_only_that_users_live_keys() {
        let (manager, _) = capped(2);
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

    #[tokio::test]
    async fn a_revoked_key_cannot_be_edited_back_to_life() {
        let (manager, _) = manager();
        let created = manager.create(NewKey::new("alice", "k")).await.unwrap();
        manager.revoke(&created.record.id()).await.unwrap();
        let result = manager
            .edit(&created.record.id(), KeyEdit::new().enable())
            .await;
        assert!(matches!(result, Err(ManageError::Revoked)));
    }

    #[tokio::test]
    async fn edit_refuses_an_invisible_name_and_a_past_expiry() {
        let (manager, clock) = manager();
        let id = manager
            .create(NewKey::new("alice", "k"))
            .await
            .unwrap()
            .record
            .id();
        let blank = manager.edit(&id, KeyEdit::new().rename("\u{3164}")).await;
        assert!(matches!(blank, Err(ManageError::Invalid(_))));
        let past = manager
            .edit(&id, KeyEdit::new().expires_at(Some(clock.now())))
            .await;
        assert!(matches!(past, Err(ManageError::Invalid(_))));
        assert_eq!(manager.get(&id).await.unwrap().identity.name(), "k");
    }

    #[tokio::test]
    async fn edit_returns_the_edited_record() {
        let (manager, _) = manager();
        let id = manager
            .create(NewKey::new("alice", "k"))
            .await
            .unwrap()
            .record
            .id();
        let edited = manager
            .edit(&id, KeyEdit::new().rename("renamed").disable())
            .await
            .unwrap();
        assert_eq!(edited.identity.name(), "renamed");
        assert!(edited.disabled);
    }

    #[tokio::test]
    async fn regenerate_grace_and_revoke_keep_working_on_an_edited_key() {
        let (manager, clock) = manager();
        let id = manager
            .create(NewKey::new("alice", "k").with_scopes(Scopes::new(["a", "b"]).unwrap()))
            .await
            .unwrap()
            .record
            .id();
        let narrow = KeyEdit::new()
            .rename("edited")
            .scopes(Scopes::new(["a"]).unwrap());
        manager.edit(&id, narrow).await.unwrap();
        let rotated = manager
            .regenerate(&id, Some(Duration::from_secs(60)))
            .await
            .unwrap();
        assert_eq!(rotated.record.identity.name(), "edited");
        assert_eq!(
            rotated.record.identity.scopes(),
            &Scopes::new(["a"]).unwrap()
        );
        let stored = manager.store.find(&id).await.unwrap().unwrap();
        let previous = stored.previous.expect("the old secret in its grace period");
        assert_eq!(previous.valid_until, clock.now() + Duration::from_secs(60));
        manager.revoke(&id).await.unwrap();
        assert!(manager.store.find(&id).await.unwrap().unwrap().revoked);
    }

    #[tokio::test]
    async fn an_expired_key_cannot_be_edited_back_to_life() {
        let (manager, clock) = manager();
        let id = manager
            .create(NewKey::new("alice", "k").expires_in(Duration::from_secs(2)))
            .await
            .unwrap()
            .record
            .id();
        clock.advance(Duration::from_secs(3));
        let result = manager.edit(&id, KeyEdit::new().expires_at(None)).await;
        assert!(matches!(result, Err(ManageError::Expired)), "{result:?}");
    }
}
