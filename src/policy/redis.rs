//! [`RedisLimiter`]: rate limits and quotas shared by every instance of a fleet through
//! Redis, one round trip per request.
//!
//! One Lua script decides a request atomically on the server, on the server's clock:
//! it reads the quota's count and every GCRA bucket the request draws from, refuses if any
//! is spent, and only then spends them all. Two instances can therefore never let through
//! more than a limit together, and a quota never overshoots, however many requests race.
//!
//! Intervals are kept in whole microseconds on the server: a rate above a million requests
//! per second is rounded to one per microsecond. A request whose decision timed out may
//! still be counted by the server after the fallback let it through.
//!
//! When Redis does not answer within the timeout (100 ms by default) or fails, the limiter
//! does what [`OnRedisError`] says: by default it falls back to a [`LocalLimiter`] with
//! the same limits, so the service stays up and each instance still enforces them on its
//! own; [`OnRedisError::Refuse`] answers 503 instead.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::Script;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::identity::Identity;
use crate::limit::{Quota, RateLimit};
use crate::policy::limit::{
    Bucket, LimitCheck, LimitError, LimitKind, LimitRefusal, LimitRequest, LimitStatus,
    LimitVerdict, Limiter, Policy, RateLimits,
};
use crate::policy::local::LocalLimiter;

/// How long one decision may wait for Redis by default.
pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_millis(100);

/// What a [`RedisLimiter`] does when Redis fails or does not answer in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OnRedisError {
    /// Decide in this process with a [`LocalLimiter`] of the same limits (the default):
    /// the service stays up, and each instance enforces the limits on its own until Redis
    /// is back, so a fleet of `n` lets through up to `n` times a limit meanwhile.
    #[default]
    Local,
    /// Refuse with 503 and `Retry-After`: no request goes unlimited.
    Refuse,
}

/// Rate limits and quotas shared through Redis.
///
/// ```no_run
/// use keygate::{Keygate, MemoryStore, RateLimit, RateLimits, RedisLimiter};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let limits = RateLimits::new().per_key(RateLimit::per_second(10)?);
/// let limiter = RedisLimiter::connect("redis://127.0.0.1:6379", limits)?;
/// let keygate = Keygate::new(MemoryStore::new()).with_limiter(limiter);
/// # let _ = keygate.layer();
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    connection: ConnectionManager,
    script: Script,
    namespace: String,
    limits: RateLimits,
    timeout: Duration,
    on_error: OnRedisError,
    local: LocalLimiter,
}

/// Decides one request; see the module documentation.
///
/// KEYS: the quota's counter (or a placeholder), then one key per rate bucket.
/// ARGV: has_quota, quota limit, quota lifetime in ms, then per bucket its emission
/// interval and burst, in microseconds and requests.
/// Returns {0, bucket, remaining, reset_us, used} to allow (bucket 0: none applied),
/// {1, bucket, retry_us, reset_us, 0} for a spent rate, {2, 0, 0, 0, used} for a spent quota.
const SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local has_quota = ARGV[1] == '1'
local used = 0
if has_quota then
  used = tonumber(redis.call('GET', KEYS[1]) or '0')
  if used >= tonumber(ARGV[2]) then
    return {2, 0, 0, 0, used}
  end
end
local n = #KEYS - 1
local tats = {}
local best, best_remaining, best_reset = 0, -1, 0
for i = 1, n do
  local interval = tonumber(ARGV[2 + 2 * i])
  local burst = tonumber(ARGV[3 + 2 * i])
  local tat = tonumber(redis.call('GET', KEYS[1 + i]) or '0')
  if tat < now then tat = now end
  local new_tat = tat + interval
  local allow_at = new_tat - burst * interval
  if now < allow_at then
    return {1, i, allow_at - now, tat - now, 0}
  end
  tats[i] = new_tat
  local remaining = math.floor((now - allow_at) / interval)
  if best_remaining < 0 or remaining < best_remaining then
    best, best_remaining, best_reset = i, remaining, new_tat - now
  end
end
-- Numbers leave Lua as strings of 14 digits; times need 16, so they are formatted.
for i = 1, n do
  local ttl = math.ceil((tats[i] - now) / 1000) + 1
  redis.call('SET', KEYS[1 + i], string.format('%.0f', tats[i]), 'PX', string.format('%.0f', ttl))
end
if has_quota then
  used = redis.call('INCR', KEYS[1])
  if used == 1 and tonumber(ARGV[3]) > 0 then
    redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
  end
end
return {0, best, best_remaining, best_reset, used}
";

impl RedisLimiter {
    /// A limiter on the Redis at `url`, applying `limits` besides each key's own. It
    /// connects on first use and reconnects by itself, so a Redis that is down at start
    /// is handled as [`OnRedisError`] says.
    ///
    /// # Errors
    ///
    /// [`LimitError`] for a URL that is not a Redis URL.
    pub fn connect(url: &str, limits: RateLimits) -> Result<Self, LimitError> {
        let client = redis::Client::open(url).map_err(LimitError::new)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(DEFAULT_REDIS_TIMEOUT))
            .set_response_timeout(Some(DEFAULT_REDIS_TIMEOUT))
            .set_number_of_retries(1);
        let connection =
            ConnectionManager::new_lazy_with_config(client, config).map_err(LimitError::new)?;
        Ok(Self::new(connection, limits))
    }

    /// A limiter over a connection you made.
    pub fn new(connection: ConnectionManager, limits: RateLimits) -> Self {
        Self {
            inner: Arc::new(Inner {
                connection,
                script: Script::new(SCRIPT),
                namespace: "keygate".to_owned(),
                limits,
                timeout: DEFAULT_REDIS_TIMEOUT,
                on_error: OnRedisError::default(),
                local: LocalLimiter::new(limits),
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Inner)) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => f(inner),
            None => {
                let mut inner = Inner {
                    connection: self.inner.connection.clone(),
                    script: Script::new(SCRIPT),
                    namespace: self.inner.namespace.clone(),
                    limits: self.inner.limits,
                    timeout: self.inner.timeout,
                    on_error: self.inner.on_error,
                    local: self.inner.local.clone(),
                };
                f(&mut inner);
                self.inner = Arc::new(inner);
            }
        }
        self
    }

    /// The prefix of every Redis key this limiter writes (default `keygate`): instances
    /// that share limits share it; tests and tenants keep their own.
    pub fn with_namespace(self, namespace: impl Into<String>) -> Self {
        let namespace = namespace.into();
        self.edit(|inner| inner.namespace = namespace)
    }

    /// How long one decision may wait for Redis (default 100 ms). A limiter from
    /// [`RedisLimiter::connect`] also has its connection time out at 100 ms; for a longer
    /// wait, build the connection yourself and use [`RedisLimiter::new`].
    pub fn with_timeout(self, timeout: Duration) -> Self {
        self.edit(|inner| inner.timeout = timeout)
    }

    /// What to do when Redis fails or is late (default [`OnRedisError::Local`]).
    pub fn on_error(self, on_error: OnRedisError) -> Self {
        self.edit(|inner| inner.on_error = on_error)
    }

    /// The in-process limiter to decide with while Redis is unavailable (with
    /// [`OnRedisError::Local`]); by default one with the same limits on the system clock.
    pub fn with_local_limiter(self, local: LocalLimiter) -> Self {
        self.edit(|inner| inner.local = local)
    }

    /// The in-process limiter used while Redis is unavailable (with
    /// [`OnRedisError::Local`]).
    pub fn local(&self) -> &LocalLimiter {
        &self.inner.local
    }
}

/// The Redis key of one bucket: namespace, kind, the limit (a changed limit starts a
/// fresh bucket, as in [`LocalLimiter`]) and, last, the owner.
fn bucket_key(namespace: &str, bucket: Bucket<'_>, limit: RateLimit) -> String {
    let (kind, owner) = match bucket {
        Bucket::Key(identity) => ("k", identity.key_id().as_str().to_owned()),
        Bucket::User(user) => ("u", user.to_owned()),
        Bucket::Space(space) => ("s", space.to_owned()),
    };
    let (count, period, burst) = limit.to_parts();
    format!("{namespace}:rate:{kind}:{count}/{period}/{burst}:{owner}")
}

/// What one decision sends, owned so that it can wait for Redis.
struct Ask {
    identity: Identity,
    rate_limit: Option<RateLimit>,
    quota: Option<Quota>,
    now: std::time::SystemTime,
    buckets: Vec<(Policy, RateLimit, String)>,
    quota_key: Option<String>,
}

impl Inner {
    fn ask(&self, request: LimitRequest<'_>) -> Ask {
        let buckets = self
            .limits
            .buckets(request.identity, request.rate_limit)
            .map(|(bucket, limit)| {
                let key = bucket_key(&self.namespace, bucket, limit);
                (bucket.policy(), limit, key)
            })
            .collect();
        let quota_key = request.quota.map(|quota| {
            let (limit, refill) = quota.to_parts();
            format!(
                "{}:quota:{limit}/{refill}:{}:{}",
                self.namespace,
                quota.period_of(request.now),
                request.identity.key_id().as_str()
            )
        });
        Ask {
            identity: request.identity.clone(),
            rate_limit: request.rate_limit,
            quota: request.quota,
            now: request.now,
            buckets,
            quota_key,
        }
    }

    async fn decide(&self, ask: &Ask) -> Result<LimitVerdict, LimitError> {
        let mut invocation = self.script.prepare_invoke();
        invocation.key(ask.quota_key.as_deref().unwrap_or("-"));
        invocation.arg(u8::from(ask.quota.is_some()));
        invocation.arg(ask.quota.map_or(0, |quota| quota.limit()));
        // The counter lives past its period's end, so it can never be read as fresh; a
        // quota that never refills keeps its counter for good (0: no expiry).
        let lifetime = ask.quota.map_or(0, |quota| {
            quota
                .next_refill(ask.now)
                .and_then(|at| at.duration_since(ask.now).ok())
                .map_or(0, |left| {
                    u64::try_from(left.as_millis()).unwrap_or(u64::MAX) + 60_000
                })
        });
        invocation.arg(lifetime);
        for (_, limit, key) in &ask.buckets {
            invocation.key(key);
            let interval = u64::try_from(limit.interval().as_micros()).unwrap_or(u64::MAX);
            invocation.arg(interval.max(1)).arg(limit.burst());
        }
        let mut connection = self.connection.clone();
        let reply: (i64, usize, i64, i64, i64) = match tokio::time::timeout(
            self.timeout,
            invocation.invoke_async(&mut connection),
        )
        .await
        {
            Ok(Ok(reply)) => reply,
            Ok(Err(error)) => return Err(LimitError::new(error)),
            Err(_elapsed) => return Err(LimitError::new("Redis did not answer in time")),
        };
        verdict(ask, reply)
    }
}

fn micros(value: i64) -> Duration {
    Duration::from_micros(u64::try_from(value).unwrap_or(0))
}

/// The script's reply as a verdict; a reply the script cannot give is an error.
fn verdict(
    ask: &Ask,
    (status, bucket, a, b, used): (i64, usize, i64, i64, i64),
) -> Result<LimitVerdict, LimitError> {
    let used = u64::try_from(used).unwrap_or(0);
    let rate = |bucket: usize, remaining: u64, reset: Duration| {
        let (policy, limit, _) = &ask.buckets[bucket - 1];
        LimitStatus::rate(*policy, *limit, remaining, reset)
    };
    let known = (1..=ask.buckets.len()).contains(&bucket);
    Ok(match (status, ask.quota) {
        (1, _) if known => LimitVerdict::Refuse(LimitRefusal {
            kind: LimitKind::RateLimited,
            retry_after: Some(micros(a).max(Duration::from_millis(1))),
            status: rate(bucket, 0, micros(b)),
        }),
        (2, Some(quota)) => {
            let status = LimitStatus::quota(quota, used, ask.now);
            LimitVerdict::Refuse(LimitRefusal {
                kind: LimitKind::QuotaExhausted,
                retry_after: status.reset,
                status,
            })
        }
        (0, _) if known || bucket == 0 => {
            let rate_status = known.then(|| rate(bucket, u64::try_from(a).unwrap_or(0), micros(b)));
            let quota_status = ask
                .quota
                .map(|quota| LimitStatus::quota(quota, used, ask.now));
            let closest = match (rate_status, quota_status) {
                (Some(r), Some(q)) => Some(if q.remaining < r.remaining { q } else { r }),
                (r, q) => r.or(q),
            };
            LimitVerdict::Allow(closest)
        }
        _ => {
            return Err(LimitError::new(
                "an unexpected reply from the limiter script",
            ));
        }
    })
}

impl Limiter for RedisLimiter {
    fn check(&self, request: LimitRequest<'_>) -> LimitCheck {
        let ask = self.inner.ask(request);
        let inner = self.inner.clone();
        LimitCheck::Pending(Box::pin(async move {
            match inner.decide(&ask).await {
                Ok(verdict) => Ok(verdict),
                Err(error) => match inner.on_error {
                    OnRedisError::Refuse => Err(error),
                    OnRedisError::Local => {
                        warn_redis_down(&error);
                        let request = LimitRequest {
                            identity: &ask.identity,
                            rate_limit: ask.rate_limit,
                            quota: ask.quota,
                            now: ask.now,
                        };
                        match inner.local.check(request) {
                            LimitCheck::Ready(verdict) => verdict,
                            LimitCheck::Pending(future) => future.await,
                        }
                    }
                },
            }
        }))
    }
}

/// Says, at most once a minute, that limits are being decided locally.
fn warn_redis_down(error: &LimitError) {
    use std::sync::Mutex;
    use std::time::Instant;
    static LAST: Mutex<Option<Instant>> = Mutex::new(None);
    let mut last = LAST
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if last.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
        *last = Some(Instant::now());
        tracing::warn!(
            target: "keygate::limit",
            error = %error,
            source = ?std::error::Error::source(error),
            "Redis is unavailable: rate limits and quotas are decided on this instance alone"
        );
    }
}

impl fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLimiter")
            .field("namespace", &self.inner.namespace)
            .field("limits", &self.inner.limits)
            .field("timeout", &self.inner.timeout)
            .field("on_error", &self.inner.on_error)
            .finish_non_exhaustive()
    }
}
