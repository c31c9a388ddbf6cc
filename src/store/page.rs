//! [`Page`]: which slice of a key listing to read.

use std::time::SystemTime;

use crate::key::id::KeyId;
use crate::record::KeyRecord;

/// One page of a listing. Listings are ordered by creation time, then key id, oldest first;
/// a page holds the first `limit` keys that come after `after` in that order.
///
/// ```
/// use keygate::Page;
///
/// let first = Page::first(50);
/// assert_eq!(first.limit, 50);
/// assert!(first.after.is_none());
/// // The next page starts after the last record of this one: `Page::after(&last, 50)`.
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Page {
    /// Only keys after this position; `None` starts at the oldest key.
    pub after: Option<Cursor>,
    /// At most this many keys.
    pub limit: usize,
}

/// A position in a listing: the creation time and id of the last key already seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    /// When that key was created, as the store returned it.
    pub created_at: SystemTime,
    /// That key's id; it breaks ties between keys created at the same instant.
    pub id: KeyId,
}

impl Page {
    /// The first `limit` keys.
    pub fn first(limit: usize) -> Self {
        Self { after: None, limit }
    }

    /// The `limit` keys that follow `last` (the last record of the previous page).
    pub fn after(last: &KeyRecord, limit: usize) -> Self {
        Self {
            after: Some(Cursor::of(last)),
            limit,
        }
    }

    /// Where the page starts, as a SQL store binds it: the cursor's creation time and key
    /// id, or, for the first page, the Unix epoch and the empty string (before every key:
    /// no stored time is before the epoch and every id sorts after `""`). A page is then
    /// `WHERE … AND (created_at > $t OR (created_at = $t AND id > $id)) ORDER BY
    /// created_at, id LIMIT $limit`.
    pub fn start(&self) -> (SystemTime, &str) {
        match &self.after {
            Some(cursor) => (cursor.created_at, cursor.id.as_str()),
            None => (SystemTime::UNIX_EPOCH, ""),
        }
    }

    /// Whether a record at `position` belongs after this page's cursor.
    pub fn admits(&self, position: &Cursor) -> bool {
        self.after.is_none_or(|after| *position > after)
    }
}

impl Cursor {
    /// The position of `record`.
    pub fn of(record: &KeyRecord) -> Self {
        Self {
            created_at: record.created_at,
            id: record.id(),
        }
    }
}
