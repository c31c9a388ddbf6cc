//! Policies a verified key must also pass: the space it is bound to, the scopes a route
//! requires, and its rate limits and quota.

pub(crate) mod limit;
pub(crate) mod local;
#[cfg(feature = "redis")]
pub(crate) mod redis;
pub(crate) mod scope;
pub(crate) mod space;

pub use limit::{
    LimitCheck, LimitError, LimitFuture, LimitKind, LimitRefusal, LimitRequest, LimitStatus,
    LimitVerdict, Limiter, Policy, RateLimits,
};
pub use local::{LocalLimiter, SWEEP_EVERY};
#[cfg(feature = "redis")]
pub use redis::{DEFAULT_REDIS_TIMEOUT, OnRedisError, RedisLimiter};
pub use scope::{RequireScopeFuture, RequireScopeLayer, RequireScopeService};
pub use space::SpaceResolver;
