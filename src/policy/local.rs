//! [`LocalLimiter`]: rate limits and quotas kept in this process, exact on one instance.
//!
//! - Rates are GCRA buckets from `governor`, one keyed limiter per distinct
//!   [`RateLimit`], keyed by key id, user or space. Only verified keys reach it, so its
//!   size is bounded by the keys in use; buckets that have refilled are dropped every
//!   [`SWEEP_EVERY`] checks.
//! - Quotas are counters per key and period behind one lock, so concurrent requests can
//!   never overshoot: exactly `limit` requests of a period are let through.
//!
//! Both live in memory: a restart refills every bucket and every quota. A fleet shares
//! them through a limiter of its own (the Redis limiter).

use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DashMapStateStore;

use crate::clock::{Clock, SystemClock};
use crate::key::id::KeyId;
use crate::limit::{Quota, RateLimit};
use crate::policy::limit::{
    Bucket, LimitCheck, LimitKind, LimitRefusal, LimitRequest, LimitStatus, LimitVerdict, Limiter,
    RateLimits,
};

/// How many checks pass between two sweeps of refilled buckets and past quota periods.
pub const SWEEP_EVERY: u64 = 1 << 16;

/// Rate limits and quotas in this process.
///
/// ```
/// use keygate::{Keygate, LocalLimiter, MemoryStore, RateLimit, RateLimits};
///
/// let limits = RateLimits::new().per_key(RateLimit::per_second(5)?);
/// let keygate = Keygate::new(MemoryStore::new()).with_rate_limits(limits);
/// # let _ = keygate.layer();
/// # let _ = LocalLimiter::new(limits);
/// # Ok::<(), keygate::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct LocalLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    limits: RateLimits,
    clock: LimiterClock,
    /// The default per-key rate's limiter, which most keys use: found without a map.
    default_key: Option<(RateLimit, Arc<Keyed>)>,
    /// The limiters of every other rate in use.
    rates: RwLock<HashMap<RateLimit, Arc<Keyed>, Hasher>>,
    quotas: Mutex<HashMap<KeyId, Used>>,
    checks: AtomicU64,
}

type Keyed = governor::RateLimiter<
    BucketKey,
    DashMapStateStore<BucketKey, Hasher>,
    LimiterClock,
    StateInformationMiddleware,
>;

/// A fast, randomly seeded hasher: bucket keys are ids and names, hashed on every request.
type Hasher = hashbrown::DefaultHashBuilder;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum BucketKey {
    Key(KeyId),
    User(Box<str>),
    Space(Box<str>),
}

/// Uses of one key's quota in one period.
#[derive(Debug, Clone, Copy)]
struct Used {
    quota: Quota,
    period: i64,
    count: u64,
}

/// keygate's clock, as governor reads time: the time of the decision in progress on
/// this thread when there is one, so that one decision sees one time and the clock is not
/// read twice per request.
#[derive(Clone)]
struct LimiterClock(Arc<dyn Clock>);

thread_local! {
    static DECIDING_AT: std::cell::Cell<Option<SystemTime>> = const { std::cell::Cell::new(None) };
}

impl governor::clock::Clock for LimiterClock {
    type Instant = SystemTime;

    fn now(&self) -> SystemTime {
        DECIDING_AT
            .with(std::cell::Cell::get)
            .unwrap_or_else(|| self.0.now())
    }
}

/// Sets the decision time for this thread while it lives.
struct Deciding;

impl Deciding {
    fn at(now: SystemTime) -> Self {
        DECIDING_AT.with(|at| at.set(Some(now)));
        Self
    }
}

impl Drop for Deciding {
    fn drop(&mut self) {
        DECIDING_AT.with(|at| at.set(None));
    }
}

impl LocalLimiter {
    /// A limiter applying `limits` besides each key's own, on the system clock.
    pub fn new(limits: RateLimits) -> Self {
        Self::with_clock(limits, SystemClock)
    }

    /// A limiter on `clock` (tests use [`ManualClock`](crate::ManualClock)).
    pub fn with_clock(limits: RateLimits, clock: impl Clock) -> Self {
        Self::with_shared_clock(limits, Arc::new(clock))
    }

    pub(crate) fn with_shared_clock(limits: RateLimits, clock: Arc<dyn Clock>) -> Self {
        let clock = LimiterClock(clock);
        let default_key = limits
            .key_default()
            .map(|limit| (limit, Arc::new(keyed(limit, &clock))));
        Self {
            inner: Arc::new(Inner {
                limits,
                clock,
                default_key,
                rates: RwLock::default(),
                quotas: Mutex::default(),
                checks: AtomicU64::new(0),
            }),
        }
    }

    /// The limits applied besides each key's own.
    pub fn limits(&self) -> RateLimits {
        self.inner.limits
    }

    /// Buckets and quota counters held now.
    pub fn len(&self) -> usize {
        let rates: usize = read(&self.inner.rates)
            .values()
            .map(|keyed| keyed.len())
            .sum();
        let default = self
            .inner
            .default_key
            .as_ref()
            .map_or(0, |(_, keyed)| keyed.len());
        default + rates + lock(&self.inner.quotas).len()
    }

    /// Whether no bucket or counter is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops buckets that have refilled (a new request would find them as fresh) and
    /// quota counters of past periods. Runs by itself every [`SWEEP_EVERY`] checks.
    pub fn sweep(&self) {
        let now = self.inner.clock.0.now();
        let mut rates = write(&self.inner.rates);
        let default = self.inner.default_key.iter().map(|(_, keyed)| keyed);
        for keyed in rates.values().chain(default) {
            keyed.retain_recent();
            keyed.shrink_to_fit();
        }
        rates.retain(|_, keyed| !keyed.is_empty());
        drop(rates);
        lock(&self.inner.quotas).retain(|_, used| used.period == used.quota.period_of(now));
    }

    /// Runs `f` on the limiter of `limit`.
    fn with_keyed<T>(&self, limit: RateLimit, f: impl FnOnce(&Keyed) -> T) -> T {
        if let Some((default, keyed)) = &self.inner.default_key
            && *default == limit
        {
            return f(keyed);
        }
        if let Some(keyed) = read(&self.inner.rates).get(&limit) {
            return f(keyed);
        }
        let keyed = write(&self.inner.rates)
            .entry(limit)
            .or_insert_with(|| Arc::new(keyed(limit, &self.inner.clock)))
            .clone();
        f(&keyed)
    }

    fn check_rate(
        &self,
        bucket: Bucket<'_>,
        limit: RateLimit,
    ) -> Result<LimitStatus, LimitRefusal> {
        let key = match bucket {
            Bucket::Key(identity) => BucketKey::Key(identity.key_id()),
            Bucket::User(user) => BucketKey::User(user.into()),
            Bucket::Space(space) => BucketKey::Space(space.into()),
        };
        let interval = limit.interval();
        match self.with_keyed(limit, |keyed| keyed.check_key(&key)) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let missing = limit.burst().saturating_sub(remaining);
                let reset = interval.saturating_mul(missing);
                Ok(LimitStatus::rate(
                    bucket.policy(),
                    limit,
                    u64::from(remaining),
                    reset,
                ))
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(governor::clock::Clock::now(&self.inner.clock));
                let reset = interval.saturating_mul(limit.burst());
                Err(LimitRefusal {
                    kind: LimitKind::RateLimited,
                    retry_after: Some(wait.max(Duration::from_millis(1))),
                    status: LimitStatus::rate(bucket.policy(), limit, 0, reset),
                })
            }
        }
    }

    /// Whether key `id` has a use of `quota` left at `now`; with `spend`, takes it.
    fn count_quota(
        &self,
        id: KeyId,
        quota: Quota,
        now: SystemTime,
        spend: bool,
    ) -> Result<LimitStatus, LimitRefusal> {
        let period = quota.period_of(now);
        let mut quotas = lock(&self.inner.quotas);
        let used = quotas.entry(id).or_insert(Used {
            quota,
            period,
            count: 0,
        });
        if used.period != period || used.quota != quota {
            // A new period, or a quota changed by an edit: counting starts again.
            *used = Used {
                quota,
                period,
                count: 0,
            };
        }
        if used.count >= quota.limit() {
            let status = LimitStatus::quota(quota, used.count, now);
            return Err(LimitRefusal {
                kind: LimitKind::QuotaExhausted,
                retry_after: status.reset,
                status,
            });
        }
        if spend {
            used.count += 1;
        }
        Ok(LimitStatus::quota(quota, used.count, now))
    }

    fn decide(&self, request: LimitRequest<'_>) -> LimitVerdict {
        if self.inner.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.sweep();
        }
        let _deciding = Deciding::at(request.now);
        let mut closest: Option<LimitStatus> = None;
        let mut keep = |status: LimitStatus| {
            if closest.is_none_or(|c| status.remaining < c.remaining) {
                closest = Some(status);
            }
        };
        let id = request.identity.key_id();
        // A spent quota refuses before any rate is spent: its key must not drain the
        // buckets it shares with its user's and its space's other keys.
        if let Some(quota) = request.quota
            && let Err(refusal) = self.count_quota(id, quota, request.now, false)
        {
            return LimitVerdict::Refuse(refusal);
        }
        for (bucket, limit) in self
            .inner
            .limits
            .buckets(request.identity, request.rate_limit)
        {
            match self.check_rate(bucket, limit) {
                Ok(status) => keep(status),
                Err(refusal) => return LimitVerdict::Refuse(refusal),
            }
        }
        // The count itself, under the lock: of requests racing past the check above, only
        // as many as the quota has left are let through.
        if let Some(quota) = request.quota {
            match self.count_quota(id, quota, request.now, true) {
                Ok(status) => keep(status),
                Err(refusal) => return LimitVerdict::Refuse(refusal),
            }
        }
        LimitVerdict::Allow(closest)
    }
}

impl Limiter for LocalLimiter {
    fn check(&self, request: LimitRequest<'_>) -> LimitCheck {
        LimitCheck::Ready(Ok(self.decide(request)))
    }
}

impl fmt::Debug for LocalLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalLimiter")
            .field("limits", &self.inner.limits)
            .field("held", &self.len())
            .finish()
    }
}

/// A keyed limiter for `limit`.
fn keyed(limit: RateLimit, clock: &LimiterClock) -> Keyed {
    governor::RateLimiter::dashmap_with_clock_and_hasher(
        governor_quota(limit),
        clock.clone(),
        Hasher::default(),
    )
    .with_middleware::<StateInformationMiddleware>()
}

/// `limit` as governor's quota: one request per interval, in bursts of `burst`.
fn governor_quota(limit: RateLimit) -> governor::Quota {
    let burst = NonZeroU32::new(limit.burst()).unwrap_or(NonZeroU32::MIN);
    governor::Quota::with_period(limit.interval())
        .unwrap_or_else(|| governor::Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

// The maps hold plain counters; a panic elsewhere cannot leave them inconsistent.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

fn lock<T>(lock: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    lock.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;
    use crate::clock::ManualClock;
    use crate::identity::Identity;
    use crate::limit::Refill;

    fn identity(n: u8) -> Identity {
        let id = KeyId::parse(&format!("{:A>16}", n)).unwrap();
        Identity::new(id, "alice").with_space("s1")
    }

    fn request(identity: &Identity, now: SystemTime) -> LimitRequest<'_> {
        LimitRequest {
            identity,
            rate_limit: None,
            quota: None,
            now,
        }
    }

    fn verdict(limiter: &LocalLimiter, request: LimitRequest<'_>) -> LimitVerdict {
        match limiter.check(request) {
            LimitCheck::Ready(Ok(verdict)) => verdict,
            other => panic!("the local limiter decides at once: {other:?}"),
        }
    }

    fn clock() -> ManualClock {
        ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000))
    }

    #[test]
    fn five_per_second_lets_five_through_and_refuses_the_sixth() {
        let clock = clock();
        let limits = RateLimits::new().per_key(RateLimit::per_second(5).unwrap());
        let limiter = LocalLimiter::with_clock(limits, clock.clone());
        let key = identity(1);
        for n in 0..5 {
            let allowed = verdict(&limiter, request(&key, clock.now()));
            assert!(matches!(allowed, LimitVerdict::Allow(Some(s)) if s.remaining == 4 - n));
        }
        let LimitVerdict::Refuse(refusal) = verdict(&limiter, request(&key, clock.now())) else {
            panic!("the sixth request in a second was let through");
        };
        assert_eq!(refusal.kind, LimitKind::RateLimited);
        assert_eq!(refusal.retry_after, Some(Duration::from_millis(200)));
        clock.advance(Duration::from_millis(200));
        let again = verdict(&limiter, request(&key, clock.now()));
        assert!(matches!(again, LimitVerdict::Allow(_)));
    }

    #[test]
    fn a_keys_own_limit_replaces_the_default() {
        let clock = clock();
        let limits = RateLimits::new().per_key(RateLimit::per_second(100).unwrap());
        let limiter = LocalLimiter::with_clock(limits, clock.clone());
        let key = identity(1);
        let mut own = request(&key, clock.now());
        own.rate_limit = Some(RateLimit::per_second(1).unwrap());
        assert!(matches!(verdict(&limiter, own), LimitVerdict::Allow(_)));
        assert!(matches!(verdict(&limiter, own), LimitVerdict::Refuse(_)));
    }

    #[test]
    fn keys_of_one_user_share_the_per_user_limit() {
        let clock = clock();
        let limits = RateLimits::new().per_user(RateLimit::per_second(2).unwrap());
        let limiter = LocalLimiter::with_clock(limits, clock.clone());
        let (one, two) = (identity(1), identity(2));
        assert!(matches!(
            verdict(&limiter, request(&one, clock.now())),
            LimitVerdict::Allow(_)
        ));
        assert!(matches!(
            verdict(&limiter, request(&two, clock.now())),
            LimitVerdict::Allow(_)
        ));
        let third = verdict(&limiter, request(&one, clock.now()));
        assert!(matches!(third, LimitVerdict::Refuse(r) if r.status.policy == crate::Policy::User));
    }

    #[test]
    fn a_quota_lets_exactly_its_limit_through_until_it_refills() {
        let clock = clock();
        let limiter = LocalLimiter::with_clock(RateLimits::new(), clock.clone());
        let key = identity(1);
        let mut asked = request(&key, clock.now());
        asked.quota = Some(Quota::new(3, Refill::Daily).unwrap());
        for _ in 0..3 {
            assert!(matches!(verdict(&limiter, asked), LimitVerdict::Allow(_)));
        }
        let LimitVerdict::Refuse(refusal) = verdict(&limiter, asked) else {
            panic!("a fourth use of a quota of three was let through");
        };
        assert_eq!(refusal.kind, LimitKind::QuotaExhausted);
        let next_day = refusal.retry_after.expect("a daily quota refills");
        clock.advance(next_day);
        asked.now = clock.now();
        assert!(matches!(verdict(&limiter, asked), LimitVerdict::Allow(_)));
    }

    #[test]
    fn a_quota_that_never_refills_gives_no_retry_after() {
        let clock = clock();
        let limiter = LocalLimiter::with_clock(RateLimits::new(), clock.clone());
        let key = identity(1);
        let mut asked = request(&key, clock.now());
        asked.quota = Some(Quota::new(1, Refill::Never).unwrap());
        assert!(matches!(verdict(&limiter, asked), LimitVerdict::Allow(_)));
        let refused = verdict(&limiter, asked);
        assert!(matches!(refused, LimitVerdict::Refuse(r) if r.retry_after.is_none()));
    }

    #[test]
    fn quota_counts_are_exact_under_concurrency() {
        let clock = clock();
        let limiter = LocalLimiter::with_clock(RateLimits::new(), clock.clone());
        let key = identity(1);
        let quota = Quota::new(100, Refill::Never).unwrap();
        let allowed = AtomicU64::new(0);
        std::thread::scope(|scope| {
            for _ in 0..64 {
                scope.spawn(|| {
                    for _ in 0..4 {
                        let mut asked = request(&key, clock.now());
                        asked.quota = Some(quota);
                        if matches!(verdict(&limiter, asked), LimitVerdict::Allow(_)) {
                            allowed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(allowed.load(Ordering::Relaxed), 100);
    }

    #[test]
    fn a_sweep_drops_buckets_that_have_refilled() {
        let clock = clock();
        let limits = RateLimits::new().per_key(RateLimit::per_second(10).unwrap());
        let limiter = LocalLimiter::with_clock(limits, clock.clone());
        for n in 0..50 {
            let key = identity(n);
            verdict(&limiter, request(&key, clock.now()));
        }
        assert_eq!(limiter.len(), 50);
        clock.advance(Duration::from_secs(2));
        limiter.sweep();
        assert!(limiter.is_empty(), "{} held", limiter.len());
    }

    #[test]
    fn a_spent_quota_does_not_drain_the_users_shared_rate() {
        let clock = clock();
        let limits = RateLimits::new().per_user(RateLimit::per_minute(3).unwrap());
        let limiter = LocalLimiter::with_clock(limits, clock.clone());
        let (metered, other) = (identity(1), identity(2));
        let mut spent = request(&metered, clock.now());
        spent.quota = Some(Quota::new(1, Refill::Never).unwrap());
        assert!(matches!(verdict(&limiter, spent), LimitVerdict::Allow(_)));
        for _ in 0..10 {
            let refused = verdict(&limiter, spent);
            assert!(
                matches!(refused, LimitVerdict::Refuse(r) if r.kind == LimitKind::QuotaExhausted)
            );
        }
        // The user's bucket lost one request to the metered key, not eleven.
        for _ in 0..2 {
            assert!(matches!(
                verdict(&limiter, request(&other, clock.now())),
                LimitVerdict::Allow(_)
            ));
        }
    }
}
