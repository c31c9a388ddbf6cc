//! The `*_as` methods of [`KeyManager`]: the lifecycle on behalf of an [`Actor`], under
//! the rules [`Actor`] documents.

use std::time::Duration;

use crate::key::id::KeyId;
use crate::manage::actor::{Actor, Standing};
use crate::manage::error::ManageError;
use crate::manage::manager::{CreatedKey, KeyManager, Owner};
use crate::manage::new_key::{Expiry, NewKey};
use crate::record::KeyRecord;
use crate::store::edit::KeyEdit;
use crate::store::page::Page;

impl KeyManager {
    /// What the store says about `actor` now: a key actor must still be valid, and must
    /// not be a replaced secret in its grace period.
    async fn standing(&self, actor: &Actor) -> Result<Standing, ManageError> {
        if actor.is_previous_secret() {
            return Err(ManageError::PreviousSecret);
        }
        let Some(identity) = actor.identity() else {
            return Ok(Standing { expires_at: None });
        };
        // An identity the layer verified is verified again, now: a request may wait long
        // between its headers (verified) and its body (read before acting), and a key
        // regenerated or narrowed in between must not act with its old secret or scopes.
        if identity.is_proven() {
            let stored = self
                .store
                .find(&identity.key_id())
                .await?
                .ok_or(ManageError::InactiveActor)?;
            if !identity.proven_with(&stored.hash) {
                let in_grace = stored.previous.is_some_and(|previous| {
                    identity.proven_with(&previous.hash) && self.now() < previous.valid_until
                });
                return Err(if in_grace {
                    ManageError::PreviousSecret
                } else {
                    ManageError::InactiveActor
                });
            }
            if !stored.identity.scopes().contains_all(identity.scopes()) {
                return Err(ManageError::InactiveActor);
            }
        }
        // The identity was verified on this request; the record is read again so that a
        // key revoked or shortened since, or an identity that never came from a store,
        // gets nothing.
        let record = self
            .store
            .record(&identity.key_id())
            .await?
            .filter(|record| record.identity.user() == identity.user())
            // Narrowed or moved since the identity was made: it acts with nothing.
            .filter(|record| record.identity.scopes().contains_all(identity.scopes()))
            .filter(|record| record.identity.space() == identity.space())
            .filter(|record| record.is_active(self.now()))
            .ok_or(ManageError::InactiveActor)?;
        Ok(Standing {
            expires_at: record.expires_at,
        })
    }

    /// A key `actor` may see, or `NotFound` (the key's existence is not revealed).
    async fn visible(&self, actor: &Actor, id: &KeyId) -> Result<KeyRecord, ManageError> {
        let record = self.get(id).await?;
        if actor.sees(&record) {
            Ok(record)
        } else {
            Err(ManageError::NotFound)
        }
    }

    /// [`KeyManager::create`] on behalf of `actor`: the new key belongs to the actor's
    /// user, holds no scope the actor lacks, expires no later than the actor's key, and is
    /// bound to the actor's space when the actor is a key bound to one (a request without
    /// a space gets the actor's).
    ///
    /// A person binds a key to a space only when it administers that space (or the app):
    /// a space token opens that space, so being signed in is not enough. A key not bound
    /// to a space acts for its user as that user's own key, and may bind the new key to
    /// any space: whether its user belongs to that space is your application's to check.
    ///
    /// # Errors
    ///
    /// [`ManageError::PreviousSecret`], [`ManageError::InactiveActor`],
    /// [`ManageError::ScopeEscalation`], [`ManageError::SpaceEscalation`],
    /// [`ManageError::NotSpaceAdmin`], or as
    /// [`KeyManager::create`].
    pub async fn create_as(
        &self,
        actor: &Actor,
        mut new: NewKey,
    ) -> Result<CreatedKey, ManageError> {
        let standing = self.standing(actor).await?;
        new.user = actor.user().to_owned();
        actor.check_scopes(&new.scopes)?;
        match (actor.space(), &new.space) {
            (Some(bound), None) => new.space = Some(bound.to_owned()),
            (Some(bound), Some(asked)) if bound != asked => {
                return Err(ManageError::SpaceEscalation);
            }
            (None, Some(asked))
                if actor.identity().is_none()
                    && !actor.is_app_admin()
                    && !actor.administers(asked) =>
            {
                return Err(ManageError::NotSpaceAdmin);
            }
            _ => {}
        }
        // A short-lived key must not mint a longer-lived one.
        if let Some(cap) = standing.expires_at {
            let asked = match new.expiry {
                None => cap,
                // An expiry no store can keep is refused as `create` refuses it, not
                // quietly replaced by the cap.
                Some(expiry) => expiry.at(self.now())?,
            };
            new.expiry = Some(Expiry::At(asked.min(cap)));
        }
        // A full owner makes room only with a dead key this actor could delete itself.
        self.create_reclaiming(new, |record| {
            actor.sees(record) && may_touch(actor, &standing, record).is_ok()
        })
        .await
    }

    /// The keys `actor` owns: its user's keys, and only those of its space when it is a key
    /// bound to one, every page of them.
    ///
    /// # Errors
    ///
    /// [`ManageError::PreviousSecret`], [`ManageError::InactiveActor`], or the store's
    /// error.
    pub async fn list_as(&self, actor: &Actor) -> Result<Vec<KeyRecord>, ManageError> {
        self.standing(actor).await?;
        // Every page: an owner must always see every key it could revoke.
        let owner = match actor.space() {
            Some(space) => Owner::Space(space),
            None => Owner::User(actor.user()),
        };
        self.list_all(owner, |record| actor.owns(record)).await
    }

    /// One page of the keys of `user`, for `actor`: its own (within its space, for a key
    /// bound to one), or any user's for an app admin.
    ///
    /// # Errors
    ///
    /// [`ManageError::NotAdmin`] for another user's keys without being an app admin, or as
    /// [`KeyManager::list_as`].
    pub async fn list_user_as(
        &self,
        actor: &Actor,
        user: &str,
        page: Page,
    ) -> Result<Vec<KeyRecord>, ManageError> {
        self.standing(actor).await?;
        if user != actor.user() && !actor.is_app_admin() {
            return Err(ManageError::NotAdmin);
        }
        self.filtered_page(Owner::User(user), page, |record| actor.sees(record))
            .await
    }

    /// One page of the keys bound to `space`, for `actor`: all of them when it administers
    /// the space (or the app), otherwise only its own.
    ///
    /// # Errors
    ///
    /// As [`KeyManager::list_as`].
    pub async fn list_space_as(
        &self,
        actor: &Actor,
        space: &str,
        page: Page,
    ) -> Result<Vec<KeyRecord>, ManageError> {
        self.standing(actor).await?;
        if actor.space().is_some_and(|bound| bound != space) {
            return Ok(Vec::new());
        }
        self.filtered_page(Owner::Space(space), page, |record| actor.sees(record))
            .await
    }

    /// One key's record, if `actor` may see it.
    ///
    /// # Errors
    ///
    /// [`ManageError::NotFound`] for a key the actor may not see, or as
    /// [`KeyManager::list_as`].
    pub async fn get_as(&self, actor: &Actor, id: &KeyId) -> Result<KeyRecord, ManageError> {
        self.standing(actor).await?;
        self.visible(actor, id).await
    }

    /// [`KeyManager::regenerate`] on behalf of `actor`, for one of its own keys whose scopes
    /// it holds and which does not outlive it. Admins cannot regenerate other users' keys:
    /// the new secret would let them act as that user.
    ///
    /// # Errors
    ///
    /// [`ManageError::NotFound`] for a key the actor may not regenerate (its existence is
    /// not revealed), [`ManageError::ScopeEscalation`], [`ManageError::LifetimeEscalation`],
    /// [`ManageError::PreviousSecret`], [`ManageError::InactiveActor`], or as
    /// [`KeyManager::regenerate`].
    pub async fn regenerate_as(
        &self,
        actor: &Actor,
        id: &KeyId,
        grace: Option<Duration>,
    ) -> Result<CreatedKey, ManageError> {
        let standing = self.standing(actor).await?;
        let record = self.get(id).await?;
        if !actor.owns(&record) {
            return Err(ManageError::NotFound);
        }
        actor.check_scopes(record.identity.scopes())?;
        standing.check_outlives(&record)?;
        self.regenerate_record(record, grace).await
    }

    /// [`KeyManager::revoke`] on behalf of `actor`: for one of its own keys whose scopes it
    /// holds and which does not outlive it, or for any key it administers.
    ///
    /// # Errors
    ///
    /// [`ManageError::NotFound`] for a key the actor may not see,
    /// [`ManageError::ScopeEscalation`], [`ManageError::LifetimeEscalation`],
    /// [`ManageError::PreviousSecret`], [`ManageError::InactiveActor`], or as
    /// [`KeyManager::revoke`].
    pub async fn revoke_as(&self, actor: &Actor, id: &KeyId) -> Result<(), ManageError> {
        self.check_touch(actor, id).await?;
        self.revoke(id).await
    }

    /// [`KeyManager::delete`] on behalf of `actor`, under the rules of
    /// [`KeyManager::revoke_as`].
    ///
    /// # Errors
    ///
    /// As [`KeyManager::revoke_as`].
    pub async fn delete_as(&self, actor: &Actor, id: &KeyId) -> Result<(), ManageError> {
        self.check_touch(actor, id).await?;
        self.delete(id).await
    }

    /// [`KeyManager::edit`] on behalf of `actor`, under the rules of
    /// [`KeyManager::revoke_as`] (an owner must hold every scope of the key and outlive it;
    /// an admin of the key may edit it), and never to widen it:
    ///
    /// - scopes may only be narrowed: every new scope must be one the key already holds
    ///   (and, for an owner, one the actor holds);
    /// - an expiry may not be set past the actor's own, nor taken away by an actor that
    ///   expires;
    /// - a rate limit or a quota is an admin's to set: the key's owner could otherwise
    ///   lift its own throttle.
    ///
    /// Renaming, pausing and resuming follow the revoke rule alone.
    ///
    /// # Errors
    ///
    /// [`ManageError::NotFound`] for a key the actor may not see,
    /// [`ManageError::ScopeEscalation`], [`ManageError::LifetimeEscalation`],
    /// [`ManageError::NotAdmin`], [`ManageError::PreviousSecret`],
    /// [`ManageError::InactiveActor`], or as [`KeyManager::edit`].
    pub async fn edit_as(
        &self,
        actor: &Actor,
        id: &KeyId,
        edit: KeyEdit,
    ) -> Result<KeyRecord, ManageError> {
        let standing = self.standing(actor).await?;
        let record = self.visible(actor, id).await?;
        may_touch(actor, &standing, &record)?;
        if let Some(scopes) = &edit.scopes
            && let Some(wider) = scopes
                .iter()
                .find(|scope| !record.identity.scopes().contains(scope))
        {
            return Err(ManageError::ScopeEscalation(wider.to_owned()));
        }
        if let (Some(asked), Some(cap)) = (edit.expires_at, standing.expires_at)
            && asked.is_none_or(|at| at > cap)
        {
            return Err(ManageError::LifetimeEscalation);
        }
        if (edit.rate_limit.is_some() || edit.quota.is_some()) && !actor.administers_key(&record) {
            return Err(ManageError::NotAdmin);
        }
        self.edit_record(&record, edit).await
    }

    /// Revokes every live key of `user` on behalf of `actor`, which must be an app admin:
    /// revoking keys whose scopes it does not hold is an admin's power, not an owner's.
    ///
    /// # Errors
    ///
    /// [`ManageError::NotAdmin`], or as [`KeyManager::revoke_all_for_user`].
    pub async fn revoke_all_as(&self, actor: &Actor, user: &str) -> Result<usize, ManageError> {
        self.standing(actor).await?;
        if !actor.is_app_admin() {
            return Err(ManageError::NotAdmin);
        }
        self.revoke_all_for_user(user).await
    }

    /// Whether `actor` may revoke or delete key `id`: an admin of it may; an owner must
    /// hold its scopes and outlive it.
    async fn check_touch(&self, actor: &Actor, id: &KeyId) -> Result<(), ManageError> {
        let standing = self.standing(actor).await?;
        let record = self.visible(actor, id).await?;
        may_touch(actor, &standing, &record)
    }
}

/// Whether `actor`, standing as it does, may revoke or delete a key it sees: an admin of
/// the key may; an owner must hold its scopes and outlive it.
fn may_touch(actor: &Actor, standing: &Standing, record: &KeyRecord) -> Result<(), ManageError> {
    if actor.administers_key(record) {
        return Ok(());
    }
    actor.check_scopes(record.identity.scopes())?;
    standing.check_outlives(record)
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::config::Keygate;
    use crate::identity::Identity;
    use crate::scopes::Scopes;
    use crate::store::memory::MemoryStore;

    fn manager() -> (KeyManager, ManualClock) {
        let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        let keygate = Keygate::new(MemoryStore::new()).with_clock(clock.clone());
        (keygate.manager(), clock)
    }

    /// A stored key of `alice`, acting.
    async fn key_actor(
        manager: &KeyManager,
        space: Option<&str>,
        scopes: &[&str],
        expires_in: Option<u64>,
    ) -> Actor {
        let mut new = NewKey::new("alice", "actor").with_scopes(Scopes::new(scopes).unwrap());
        if let Some(space) = space {
            new = new.with_space(space);
        }
        if let Some(seconds) = expires_in {
            new = new.expires_in(Duration::from_secs(seconds));
        }
        let created = manager.create(new).await.unwrap();
        Actor::key(&created.record.identity)
    }

    async fn alices_key(manager: &KeyManager, scopes: &[&str]) -> KeyId {
        let new = NewKey::new("alice", "target").with_scopes(Scopes::new(scopes).unwrap());
        manager.create(new).await.unwrap().record.id()
    }

    #[tokio::test]
    async fn create_as_refuses_a_scope_the_actor_lacks() {
        let (manager, _) = manager();
        let actor = key_actor(&manager, None, &["keys:write"], None).await;
        let new = NewKey::new("x", "k").with_scopes(Scopes::new(["admin"]).unwrap());
        let result = manager.create_as(&actor, new).await;
        assert!(matches!(result, Err(ManageError::ScopeEscalation(scope)) if scope == "admin"));
    }

    #[tokio::test]
    async fn create_as_refuses_another_space_for_a_space_bound_actor() {
        let (manager, _) = manager();
        let actor = key_actor(&manager, Some("s1"), &[], None).await;
        let new = NewKey::new("x", "k").with_space("s2");
        let result = manager.create_as(&actor, new).await;
        assert!(matches!(result, Err(ManageError::SpaceEscalation)));
    }

    #[tokio::test]
    async fn create_as_binds_to_the_actors_space_and_user() {
        let (manager, _) = manager();
        let actor = key_actor(&manager, Some("s1"), &[], None).await;
        let created = manager
            .create_as(&actor, NewKey::new("mallory", "k"))
            .await
            .unwrap();
        assert_eq!(created.record.identity.space(), Some("s1"));
        assert_eq!(created.record.identity.user(), "alice");
    }

    #[tokio::test]
    async fn create_as_caps_expiry_at_the_actors() {
        let (manager, clock) = manager();
        let actor = key_actor(&manager, None, &[], Some(60)).await;
        let child = manager
            .create_as(&actor, NewKey::new("", "forever"))
            .await
            .unwrap();
        assert_eq!(
            child.record.expires_at,
            Some(clock.now() + Duration::from_secs(60))
        );
    }

    #[tokio::test]
    async fn regenerate_as_refuses_a_key_that_outlives_the_actor() {
        let (manager, _) = manager();
        let target = alices_key(&manager, &[]).await;
        let actor = key_actor(&manager, None, &["keys:write"], Some(60)).await;
        let result = manager.regenerate_as(&actor, &target, None).await;
        assert!(matches!(result, Err(ManageError::LifetimeEscalation)));
    }

    #[tokio::test]
    async fn regenerate_as_refuses_a_key_with_a_scope_the_actor_lacks() {
        let (manager, _) = manager();
        let target = alices_key(&manager, &["billing"]).await;
        let actor = key_actor(&manager, None, &["keys:write"], None).await;
        let result = manager.regenerate_as(&actor, &target, None).await;
        assert!(matches!(result, Err(ManageError::ScopeEscalation(scope)) if scope == "billing"));
    }

    #[tokio::test]
    async fn regenerate_as_allows_a_key_that_dies_no_later_than_the_actor() {
        let (manager, _) = manager();
        let actor = key_actor(&manager, None, &["keys:write"], Some(60)).await;
        let sibling = manager
            .create_as(&actor, NewKey::new("", "sibling"))
            .await
            .unwrap();
        assert!(
            manager
                .regenerate_as(&actor, &sibling.record.id(), None)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn revoke_as_refuses_a_key_that_outlives_the_actor() {
        let (manager, _) = manager();
        let target = alices_key(&manager, &[]).await;
        let actor = key_actor(&manager, None, &["keys:write"], Some(60)).await;
        let result = manager.revoke_as(&actor, &target).await;
        assert!(matches!(result, Err(ManageError::LifetimeEscalation)));
        assert!(manager.get(&target).await.unwrap().revoked_at.is_none());
    }

    #[tokio::test]
    async fn revoke_as_refuses_a_key_with_a_scope_the_actor_lacks() {
        let (manager, _) = manager();
        let target = alices_key(&manager, &["billing"]).await;
        let actor = key_actor(&manager, None, &[], None).await;
        let result = manager.revoke_as(&actor, &target).await;
        assert!(matches!(result, Err(ManageError::ScopeEscalation(_))));
    }

    #[tokio::test]
    async fn revoke_as_hides_keys_of_another_user() {
        let (manager, _) = manager();
        let bobs = manager.create(NewKey::new("bob", "k")).await.unwrap();
        let actor = key_actor(&manager, None, &[], None).await;
        let result = manager.revoke_as(&actor, &bobs.record.id()).await;
        assert!(matches!(result, Err(ManageError::NotFound)));
    }

    #[tokio::test]
    async fn previous_secret_manages_nothing() {
        let (manager, _) = manager();
        let actor = key_actor(&manager, None, &["keys:write"], None).await;
        let identity = actor.identity().unwrap().clone();
        let grace = Actor::key(&grace_identity(identity));
        let created = manager.create_as(&grace, NewKey::new("", "k")).await;
        assert!(matches!(created, Err(ManageError::PreviousSecret)));
        let listed = manager.list_as(&grace).await;
        assert!(matches!(listed, Err(ManageError::PreviousSecret)));
        let own = grace.identity().unwrap().key_id();
        let rotated = manager.regenerate_as(&grace, &own, None).await;
        assert!(matches!(rotated, Err(ManageError::PreviousSecret)));
        let revoked = manager.revoke_as(&grace, &own).await;
        assert!(matches!(revoked, Err(ManageError::PreviousSecret)));
    }

    /// The identity as the layer hands it out for a replaced secret in its grace period.
    fn grace_identity(identity: Identity) -> Identity {
        identity.by_previous_secret(true)
    }

    #[tokio::test]
    async fn revoked_actor_manages_nothing() {
        let (manager, _) = manager();
        let actor = key_actor(&manager, None, &["keys:write"], None).await;
        manager
            .revoke(&actor.identity().unwrap().key_id())
            .await
            .unwrap();
        let result = manager.create_as(&actor, NewKey::new("", "k")).await;
        assert!(matches!(result, Err(ManageError::InactiveActor)));
    }

    #[tokio::test]
    async fn expired_actor_manages_nothing() {
        let (manager, clock) = manager();
        let actor = key_actor(&manager, None, &["keys:write"], Some(60)).await;
        clock.advance(Duration::from_secs(60));
        let result = manager.list_as(&actor).await;
        assert!(matches!(result, Err(ManageError::InactiveActor)));
    }

    #[tokio::test]
    async fn identity_unknown_to_the_store_manages_nothing() {
        let (manager, _) = manager();
        let forged = Identity::new(KeyId::parse("CALLERCALLER0000").unwrap(), "alice");
        let result = manager
            .create_as(&Actor::key(&forged), NewKey::new("", "k"))
            .await;
        assert!(matches!(result, Err(ManageError::InactiveActor)));
    }

    #[tokio::test]
    async fn admin_cannot_regenerate_another_users_key() {
        let (manager, _) = manager();
        let bobs = manager.create(NewKey::new("bob", "k")).await.unwrap();
        let admin = Actor::person("root", Scopes::default()).app_admin();
        let result = manager.regenerate_as(&admin, &bobs.record.id(), None).await;
        assert!(matches!(result, Err(ManageError::NotFound)));
    }

    #[tokio::test]
    async fn app_admin_revokes_any_users_key() {
        let (manager, _) = manager();
        let scopes = Scopes::new(["billing"]).unwrap();
        let bobs = manager
            .create(NewKey::new("bob", "k").with_scopes(scopes))
            .await
            .unwrap();
        let admin = Actor::person("root", Scopes::default()).app_admin();
        manager.revoke_as(&admin, &bobs.record.id()).await.unwrap();
        assert!(
            manager
                .get(&bobs.record.id())
                .await
                .unwrap()
                .revoked_at
                .is_some()
        );
    }

    #[tokio::test]
    async fn space_admin_sees_and_revokes_that_spaces_tokens_only() {
        let (manager, _) = manager();
        let inside = manager
            .create(NewKey::new("bob", "k").with_space("acme"))
            .await
            .unwrap();
        let outside = manager
            .create(NewKey::new("bob", "k").with_space("other"))
            .await
            .unwrap();
        let admin = Actor::person("carol", Scopes::default()).administering(["acme"]);
        let listed = manager
            .list_space_as(&admin, "acme", Page::first(10))
            .await
            .unwrap();
        assert_eq!(listed.len(), 1);
        manager
            .revoke_as(&admin, &inside.record.id())
            .await
            .unwrap();
        let result = manager.revoke_as(&admin, &outside.record.id()).await;
        assert!(matches!(result, Err(ManageError::NotFound)));
    }

    #[tokio::test]
    async fn only_an_app_admin_lists_another_users_keys() {
        let (manager, _) = manager();
        manager.create(NewKey::new("bob", "k")).await.unwrap();
        let alice = Actor::person("alice", Scopes::default());
        let result = manager.list_user_as(&alice, "bob", Page::first(10)).await;
        assert!(matches!(result, Err(ManageError::NotAdmin)));
        let admin = alice.app_admin();
        let listed = manager
            .list_user_as(&admin, "bob", Page::first(10))
            .await
            .unwrap();
        assert_eq!(listed.len(), 1);
    }

    #[tokio::test]
    async fn revoke_all_needs_an_app_admin() {
        let (manager, _) = manager();
        manager.create(NewKey::new("bob", "a")).await.unwrap();
        manager.create(NewKey::new("bob", "b")).await.unwrap();
        let actor = key_actor(&manager, None, &["keys:write"], None).await;
        let result = manager.revoke_all_as(&actor, "bob").await;
        assert!(matches!(result, Err(ManageError::NotAdmin)));
        let admin = Actor::person("root", Scopes::default()).app_admin();
        assert_eq!(manager.revoke_all_as(&admin, "bob").await.unwrap(), 2);
    }

    #[tokio::test]
    async fn a_person_cannot_revoke_all_own_keys_past_the_scope_rule() {
        let (manager, _) = manager();
        let billing = alices_key(&manager, &["billing"]).await;
        let alice = Actor::person("alice", Scopes::default());
        let result = manager.revoke_all_as(&alice, "alice").await;
        assert!(matches!(result, Err(ManageError::NotAdmin)));
        assert!(manager.get(&billing).await.unwrap().revoked_at.is_none());
    }

    #[tokio::test]
    async fn list_as_a_space_actor_shows_only_that_space() {
        let (manager, _) = manager();
        let person = Actor::person("alice", Scopes::default()).administering(["s1", "s2"]);
        manager
            .create_as(&person, NewKey::new("", "a").with_space("s1"))
            .await
            .unwrap();
        manager
            .create_as(&person, NewKey::new("", "b").with_space("s2"))
            .await
            .unwrap();
        manager
            .create_as(&person, NewKey::new("", "c"))
            .await
            .unwrap();
        let bound = key_actor(&manager, Some("s1"), &[], None).await;
        let listed = manager.list_as(&bound).await.unwrap();
        let mut names: Vec<_> = listed.iter().map(|r| r.identity.name()).collect();
        names.sort_unstable();
        assert_eq!(names, ["a", "actor"]);
        assert_eq!(manager.list_as(&person).await.unwrap().len(), 4);
    }

    #[tokio::test]
    async fn person_cannot_bind_a_key_to_a_space_it_does_not_administer() {
        let (manager, _) = manager();
        let person = Actor::person("alice", Scopes::default()).administering(["s1"]);
        let result = manager
            .create_as(&person, NewKey::new("", "k").with_space("s2"))
            .await;
        assert!(matches!(result, Err(ManageError::NotSpaceAdmin)));
        assert!(
            manager
                .create_as(&person, NewKey::new("", "k").with_space("s1"))
                .await
                .is_ok()
        );
    }

    /// A manager capped at `max` keys per owner, on a manual clock.
    fn capped(max: usize) -> (KeyManager, ManualClock) {
        let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        let keygate = Keygate::new(MemoryStore::new())
            .with_clock(clock.clone())
            .with_max_keys_per_owner(max);
        (keygate.manager(), clock)
    }

    #[tokio::test]
    async fn create_as_makes_room_only_with_dead_keys_the_actor_could_delete() {
        let (manager, clock) = capped(3);
        // Alice's user-wide key and a key in another space, both revoked: a key bound to
        // space s1 can delete neither.
        let wide = manager.create(NewKey::new("alice", "wide")).await.unwrap();
        let other = manager
            .create(NewKey::new("alice", "other").with_space("s2"))
            .await
            .unwrap();
        manager.revoke(&wide.record.id()).await.unwrap();
        manager.revoke(&other.record.id()).await.unwrap();
        clock.advance(Duration::from_secs(1));
        let bound = key_actor(&manager, Some("s1"), &[], Some(60)).await;
        let result = manager.create_as(&bound, NewKey::new("", "more")).await;
        assert!(matches!(result, Err(ManageError::TooManyKeys { limit: 3 })));
        assert!(
            manager.get(&wide.record.id()).await.is_ok(),
            "user-wide key kept"
        );
        assert!(
            manager.get(&other.record.id()).await.is_ok(),
            "other space kept"
        );
    }

    #[tokio::test]
    async fn create_as_makes_room_with_a_dead_key_of_its_own_space() {
        let (manager, clock) = capped(2);
        let bound = key_actor(&manager, Some("s1"), &[], None).await;
        let old = manager
            .create_as(&bound, NewKey::new("", "old"))
            .await
            .unwrap();
        manager.revoke(&old.record.id()).await.unwrap();
        clock.advance(Duration::from_secs(1));
        manager
            .create_as(&bound, NewKey::new("", "new"))
            .await
            .unwrap();
        assert!(matches!(
            manager.get(&old.record.id()).await,
            Err(ManageError::NotFound)
        ));
    }

    #[tokio::test]
    async fn expired_keys_make_room_once_they_have_expired() {
        let (manager, clock) = capped(3);
        let admin = Actor::person("alice", Scopes::default());
        let short = key_actor(&manager, None, &[], Some(5)).await;
        manager
            .create_as(&short, NewKey::new("", "a"))
            .await
            .unwrap();
        manager
            .create_as(&short, NewKey::new("", "b"))
            .await
            .unwrap();
        let full = manager.create_as(&admin, NewKey::new("", "c")).await;
        assert!(matches!(full, Err(ManageError::TooManyKeys { .. })));
        clock.advance(Duration::from_secs(6));
        let created = manager.create_as(&admin, NewKey::new("", "c")).await;
        assert!(created.is_ok(), "{created:?}");
    }

    #[tokio::test]
    async fn create_as_refuses_an_expiry_no_store_can_keep_even_when_capped() {
        let (manager, _) = manager();
        let actor = key_actor(&manager, None, &[], Some(60)).await;
        let new = NewKey::new("", "far").expires_in(Duration::from_secs(u64::MAX));
        let result = manager.create_as(&actor, new).await;
        assert!(matches!(result, Err(ManageError::Invalid(_))), "{result:?}");
    }

    #[tokio::test]
    async fn edit_as_narrows_scopes_but_never_widens_them() {
        let (manager, _) = manager();
        let actor = key_actor(&manager, None, &["a", "b", "keys:write"], None).await;
        let target = alices_key(&manager, &["a", "b"]).await;
        let narrowed = manager
            .edit_as(
                &actor,
                &target,
                KeyEdit::new().scopes(Scopes::new(["a"]).unwrap()),
            )
            .await
            .unwrap();
        assert_eq!(narrowed.identity.scopes(), &Scopes::new(["a"]).unwrap());
        let widened = manager
            .edit_as(
                &actor,
                &target,
                KeyEdit::new().scopes(Scopes::new(["a", "b"]).unwrap()),
            )
            .await;
        assert!(matches!(widened, Err(ManageError::ScopeEscalation(scope)) if scope == "b"));
    }

    #[tokio::test]
    async fn edit_as_cannot_extend_an_expiry_past_the_actors() {
        let (manager, clock) = manager();
        let actor = key_actor(&manager, None, &[], Some(60)).await;
        let target = manager
            .create_as(
                &actor,
                NewKey::new("", "child").expires_in(Duration::from_secs(30)),
            )
            .await
            .unwrap()
            .record
            .id();
        let later = clock.now() + Duration::from_secs(3600);
        let result = manager
            .edit_as(&actor, &target, KeyEdit::new().expires_at(Some(later)))
            .await;
        assert!(matches!(result, Err(ManageError::LifetimeEscalation)));
        let forever = manager
            .edit_as(&actor, &target, KeyEdit::new().expires_at(None))
            .await;
        assert!(matches!(forever, Err(ManageError::LifetimeEscalation)));
        let sooner = clock.now() + Duration::from_secs(10);
        let edited = manager
            .edit_as(&actor, &target, KeyEdit::new().expires_at(Some(sooner)))
            .await
            .unwrap();
        assert_eq!(edited.expires_at, Some(sooner));
    }

    #[tokio::test]
    async fn edit_as_leaves_limits_to_admins() {
        let (manager, _) = manager();
        let owner = Actor::person("alice", Scopes::default());
        let target = alices_key(&manager, &[]).await;
        let unthrottle = KeyEdit::new().rate_limit(None);
        let result = manager.edit_as(&owner, &target, unthrottle.clone()).await;
        assert!(matches!(result, Err(ManageError::NotAdmin)));
        let admin = Actor::person("root", Scopes::default()).app_admin();
        assert!(manager.edit_as(&admin, &target, unthrottle).await.is_ok());
    }

    #[tokio::test]
    async fn edit_as_refuses_a_key_that_outlives_the_actor() {
        let (manager, _) = manager();
        let actor = key_actor(&manager, None, &[], Some(60)).await;
        let permanent = alices_key(&manager, &[]).await;
        let result = manager
            .edit_as(&actor, &permanent, KeyEdit::new().disable())
            .await;
        assert!(matches!(result, Err(ManageError::LifetimeEscalation)));
    }

    #[tokio::test]
    async fn a_disabled_key_manages_nothing() {
        let (manager, _) = manager();
        let actor = key_actor(&manager, None, &[], None).await;
        let own = actor.identity().unwrap().key_id();
        manager.edit(&own, KeyEdit::new().disable()).await.unwrap();
        let result = manager.create_as(&actor, NewKey::new("", "k")).await;
        assert!(matches!(result, Err(ManageError::InactiveActor)));
    }

    #[tokio::test]
    async fn previous_secret_cannot_edit() {
        let (manager, _) = manager();
        let actor = key_actor(&manager, None, &[], None).await;
        let target = alices_key(&manager, &[]).await;
        let old = grace_identity(actor.identity().unwrap().clone());
        let result = manager
            .edit_as(&Actor::key(&old), &target, KeyEdit::new().enable())
            .await;
        assert!(matches!(result, Err(ManageError::PreviousSecret)));
    }

    /// A key and the actor the layer would make of it: verified with its secret.
    async fn verified_actor(manager: &KeyManager, scopes: &[&str]) -> (Actor, KeyId) {
        let created = manager
            .create(NewKey::new("alice", "actor").with_scopes(Scopes::new(scopes).unwrap()))
            .await
            .unwrap();
        let hash = crate::key::hash::KeyHasher::sha256().hash(&created.key);
        let identity = created.record.identity.clone().proven_by(&hash);
        (Actor::key(&identity), created.record.id())
    }

    #[tokio::test]
    async fn a_secret_replaced_after_verification_cannot_act() {
        let (manager, _) = manager();
        let (actor, id) = verified_actor(&manager, &["keys:write"]).await;
        manager.regenerate(&id, None).await.unwrap();
        let result = manager.create_as(&actor, NewKey::new("", "late")).await;
        assert!(
            matches!(result, Err(ManageError::InactiveActor)),
            "{result:?}"
        );
        let rotate = manager.regenerate_as(&actor, &id, None).await;
        assert!(
            matches!(rotate, Err(ManageError::InactiveActor)),
            "{rotate:?}"
        );
    }

    #[tokio::test]
    async fn a_secret_put_in_its_grace_period_after_verification_cannot_act() {
        let (manager, _) = manager();
        let (actor, id) = verified_actor(&manager, &["keys:write"]).await;
        manager
            .regenerate(&id, Some(Duration::from_secs(600)))
            .await
            .unwrap();
        let result = manager.create_as(&actor, NewKey::new("", "late")).await;
        assert!(
            matches!(result, Err(ManageError::PreviousSecret)),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn a_key_narrowed_after_verification_cannot_act_with_its_old_scopes() {
        let (manager, _) = manager();
        let (actor, id) = verified_actor(&manager, &["keys:write"]).await;
        manager
            .edit(&id, KeyEdit::new().scopes(Scopes::default()))
            .await
            .unwrap();
        let new = NewKey::new("", "late").with_scopes(Scopes::new(["keys:write"]).unwrap());
        let result = manager.create_as(&actor, new).await;
        assert!(
            matches!(result, Err(ManageError::InactiveActor)),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn a_verified_key_that_has_not_changed_acts() {
        let (manager, _) = manager();
        let (actor, _) = verified_actor(&manager, &["keys:write"]).await;
        assert!(
            manager
                .create_as(&actor, NewKey::new("", "k"))
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn an_identity_narrowed_since_it_was_read_acts_with_nothing() {
        let (manager, _) = manager();
        let actor = key_actor(&manager, None, &["keys:write"], None).await;
        let id = actor.identity().unwrap().key_id();
        manager
            .edit(&id, KeyEdit::new().scopes(Scopes::default()))
            .await
            .unwrap();
        let result = manager.create_as(&actor, NewKey::new("", "k")).await;
        assert!(
            matches!(result, Err(ManageError::InactiveActor)),
            "{result:?}"
        );
    }
}
