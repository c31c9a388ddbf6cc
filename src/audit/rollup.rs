//! Usage over time: counts of allowed and denied requests per key, user and space, in
//! minute, hour and day buckets, kept as rollups beside the audit trail so that a month of
//! a key's history is one indexed read of 30 rows, not a scan of its raw events.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::key::id::KeyId;
use crate::store::sql::types::Timestamp;

/// How long one bucket lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Granularity {
    /// One minute; kept for two days.
    Minute,
    /// One hour.
    Hour,
    /// One day (UTC).
    Day,
}

impl Granularity {
    const ALL: [Self; 3] = [Self::Minute, Self::Hour, Self::Day];

    /// Its name in the `keygate_usage` table: `minute`, `hour` or `day`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Minute => "minute",
            Self::Hour => "hour",
            Self::Day => "day",
        }
    }

    fn seconds(self) -> u64 {
        match self {
            Self::Minute => 60,
            Self::Hour => 3_600,
            Self::Day => 86_400,
        }
    }

    /// The start of the bucket `at` falls in.
    pub fn start_of(&self, at: SystemTime) -> SystemTime {
        let since = at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        UNIX_EPOCH + Duration::from_secs(since - since % self.seconds())
    }
}

/// Whose usage: one key's, one user's keys', or one space's keys'.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UsageOf {
    /// One key.
    Key(KeyId),
    /// All keys of one user.
    User(String),
    /// All keys bound to one space.
    Space(String),
}

impl UsageOf {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Key(_) => "key",
            Self::User(_) => "user",
            Self::Space(_) => "space",
        }
    }

    pub(crate) fn owner(&self) -> &str {
        match self {
            Self::Key(id) => id.as_str(),
            Self::User(user) => user,
            Self::Space(space) => space,
        }
    }
}

/// Requests in one bucket.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
#[non_exhaustive]
pub struct UsageBucket {
    /// When the bucket starts.
    pub bucket: Timestamp,
    /// Requests let through.
    pub allowed: i64,
    /// Requests refused.
    pub denied: i64,
}

/// One bucket's increments, as one batch adds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rollup {
    pub(crate) granularity: &'static str,
    pub(crate) bucket: SystemTime,
    pub(crate) kind: &'static str,
    pub(crate) owner: String,
    pub(crate) allowed: i64,
    pub(crate) denied: i64,
}

/// Adds up a batch of events into rollups, so that one batch writes each bucket once.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    counts: HashMap<(&'static str, SystemTime, &'static str, String), (i64, i64)>,
}

impl Tally {
    /// Counts one decision at `at` for its key, user and space (those it has).
    pub(crate) fn add(
        &mut self,
        at: SystemTime,
        allowed: bool,
        key: Option<&str>,
        user: Option<&str>,
        space: Option<&str>,
    ) {
        let owners = [("key", key), ("user", user), ("space", space)];
        for granularity in Granularity::ALL {
            let bucket = granularity.start_of(at);
            for (kind, owner) in owners {
                let Some(owner) = owner else { continue };
                let entry = self
                    .counts
                    .entry((granularity.as_str(), bucket, kind, owner.to_owned()))
                    .or_default();
                if allowed {
                    entry.0 += 1;
                } else {
                    entry.1 += 1;
                }
            }
        }
    }

    /// The rollups in one fixed order (kind, owner, granularity, bucket): instances that
    /// upsert overlapping buckets lock their rows in the same order, so they never
    /// deadlock.
    pub(crate) fn into_rollups(self) -> Vec<Rollup> {
        let mut counts: Vec<_> = self.counts.into_iter().collect();
        counts.sort_by(|(a, _), (b, _)| (a.2, &a.3, a.0, a.1).cmp(&(b.2, &b.3, b.0, b.1)));
        counts
            .into_iter()
            .map(
                |((granularity, bucket, kind, owner), (allowed, denied))| Rollup {
                    granularity,
                    bucket,
                    kind,
                    owner,
                    allowed,
                    denied,
                },
            )
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_start_on_the_minute_hour_and_day() {
        let at = UNIX_EPOCH + Duration::from_secs(1_800_003_725); // 2027-01-15 09:02:05
        let seconds = |g: Granularity| g.start_of(at).duration_since(UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(seconds(Granularity::Minute), 1_800_003_720);
        assert_eq!(seconds(Granularity::Hour), 1_800_003_600);
        assert_eq!(seconds(Granularity::Day), 1_799_971_200);
    }

    #[test]
    fn a_batch_adds_up_per_bucket_and_owner() {
        let at = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut tally = Tally::default();
        tally.add(at, true, Some("K"), Some("alice"), None);
        tally.add(at, false, Some("K"), Some("alice"), None);
        tally.add(at, false, Some("X"), None, None);
        let rollups = tally.into_rollups();
        // Keys K and X and user alice, in three granularities each.
        assert_eq!(rollups.len(), 9);
        let key_day = rollups
            .iter()
            .find(|r| r.kind == "key" && r.owner == "K" && r.granularity == "day")
            .unwrap();
        assert_eq!((key_day.allowed, key_day.denied), (1, 1));
    }
}
