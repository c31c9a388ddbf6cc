//! The management API's JSON: the records it lists and the requests it takes (feature
//! `serde`). A record holds no secret; the one response that carries a key,
//! [`CreatedKeyJson`], is built from the key for that response only.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize};

use crate::manage::manager::CreatedKey;
use crate::record::KeyRecord;

/// A key as the API lists it: name, id, preview, owner, space, scopes, dates, usage and
/// state. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct KeyRecordJson {
    /// The key id (not secret).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Prefix and last characters, e.g. `kg_live_...0bl1`.
    pub preview: String,
    /// The owning user.
    pub user: String,
    /// The space the key is bound to.
    pub space: Option<String>,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Creation time.
    pub created_at: u64,
    /// Expiry, if any.
    pub expires_at: Option<u64>,
    /// Revocation time, if revoked.
    pub revoked_at: Option<u64>,
    /// Latest flushed use.
    pub last_used_at: Option<u64>,
    /// Flushed uses.
    pub use_count: u64,
    /// Paused.
    pub disabled: bool,
    /// `active`, `disabled`, `expired` or `revoked`.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "active"))]
    pub state: &'static str,
}

fn unix(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

impl KeyRecordJson {
    /// `record` as JSON, its state judged at `now`.
    pub fn new(record: &KeyRecord, now: SystemTime) -> Self {
        let identity = &record.identity;
        let state = if record.revoked_at.is_some() {
            "revoked"
        } else if record.expires_at.is_some_and(|at| at <= now) {
            "expired"
        } else if record.disabled {
            "disabled"
        } else {
            "active"
        };
        Self {
            id: identity.key_id().as_str().to_owned(),
            name: identity.name().to_owned(),
            preview: record.preview.clone(),
            user: identity.user().to_owned(),
            space: identity.space().map(str::to_owned),
            scopes: identity.scopes().iter().map(str::to_owned).collect(),
            created_at: unix(record.created_at),
            expires_at: record.expires_at.map(unix),
            revoked_at: record.revoked_at.map(unix),
            last_used_at: record.last_used_at.map(unix),
            use_count: record.use_count,
            disabled: record.disabled,
            state,
        }
    }
}

/// The 201 that carries a new key: the plaintext, once, beside its record. Serialized
/// straight from the key, so no long-lived copy of the secret is made.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct CreatedKeyJson<'a> {
    /// The plaintext key: shown this once, stored nowhere.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub key: &'a str,
    /// A reminder for whoever reads the response.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub note: &'static str,
    /// The new key's record.
    pub record: KeyRecordJson,
}

impl<'a> CreatedKeyJson<'a> {
    /// The response for `created`.
    pub fn new(created: &'a CreatedKey, now: SystemTime) -> Self {
        Self {
            key: created.key.expose_secret(),
            note: "this is the only time the key is shown; store it now",
            record: KeyRecordJson::new(&created.record, now),
        }
    }
}

/// `POST` a new key: `{"name", "space"?, "scopes"?, "expires_in"?}` (seconds).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CreateKeyRequest {
    /// Display name.
    pub name: String,
    /// The space to bind the key to.
    #[serde(default)]
    pub space: Option<String>,
    /// Scopes to grant (none of them beyond the actor's).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Seconds until the key expires.
    #[serde(default)]
    pub expires_in: Option<u64>,
}

/// `PATCH` a key: any of `{"name", "scopes", "expires_in" (seconds, or null for none),
/// "disabled"}`. `null` is refused where there is nothing to take away.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct EditKeyRequest {
    /// A new name.
    #[serde(default, deserialize_with = "not_null")]
    pub name: Option<String>,
    /// Narrower scopes.
    #[serde(default, deserialize_with = "not_null")]
    pub scopes: Option<Vec<String>>,
    /// A new expiry in seconds from now; `null` takes the expiry away.
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u64>, nullable))]
    pub expires_in: Option<Option<u64>>,
    /// Pause (`true`) or resume (`false`).
    #[serde(default, deserialize_with = "not_null")]
    pub disabled: Option<bool>,
}

/// `POST` a regeneration: `{"grace"?}` (seconds the old secret keeps working).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RegenerateRequest {
    /// Seconds the replaced secret keeps working.
    #[serde(default)]
    pub grace: Option<u64>,
}

impl RegenerateRequest {
    /// The grace period asked for.
    pub fn grace(&self) -> Option<Duration> {
        self.grace.map(Duration::from_secs)
    }
}

/// One page of a listing: `{"keys", "next"}`; `next` is the `after` of the next page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct KeyPageJson {
    /// The keys of this page, oldest first.
    pub keys: Vec<KeyRecordJson>,
    /// Where the next page starts (pass it as `after`); `null` on the last page.
    pub next: Option<String>,
}

impl KeyPageJson {
    /// A page of `keys`, followed by the page at `next`.
    pub fn new(keys: Vec<KeyRecordJson>, next: Option<String>) -> Self {
        Self { keys, next }
    }
}

/// What revoking all keys of a user did: `{"revoked"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct RevokedJson {
    /// How many keys were revoked.
    pub revoked: usize,
}

impl RevokedJson {
    /// `revoked` keys revoked.
    pub fn new(revoked: usize) -> Self {
        Self { revoked }
    }
}

fn present<'de, D: Deserializer<'de>>(field: D) -> Result<Option<Option<u64>>, D::Error> {
    Option::<u64>::deserialize(field).map(Some)
}

fn not_null<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    field: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(field).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edit_tells_absent_from_null_expiry_and_refuses_null_elsewhere() {
        let absent: EditKeyRequest = serde_json::from_str("{}").unwrap();
        assert_eq!(absent.expires_in, None);
        let cleared: EditKeyRequest = serde_json::from_str(r#"{"expires_in":null}"#).unwrap();
        assert_eq!(cleared.expires_in, Some(None));
        assert!(serde_json::from_str::<EditKeyRequest>(r#"{"name":null}"#).is_err());
        assert!(serde_json::from_str::<EditKeyRequest>(r#"{"nmae":"x"}"#).is_err());
    }
}
