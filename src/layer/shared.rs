//! [`Shared`]: a layer's configuration, shared by the layer, its services and their
//! futures behind one `Arc`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::audit::usage::UsageTracker;
use crate::context::Context;
use crate::key::format::KeyFormat;
use crate::key::hash::KeyHasher;
use crate::policy::limit::{Limiter, RateLimits};
use crate::policy::space::SpaceResolver;
use crate::source::KeySource;
use crate::store::key_store::KeyStore;

/// Everything a layer decides with. Built by [`Keygate`](crate::Keygate).
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn KeyStore>,
    pub(crate) sources: Box<[KeySource]>,
    pub(crate) format: KeyFormat,
    pub(crate) hasher: KeyHasher,
    /// How to answer and audit; also put on every request let through.
    pub(crate) context: Arc<Context>,
    pub(crate) strip_credential: bool,
    pub(crate) anonymous: bool,
    pub(crate) preflight: bool,
    pub(crate) space: Option<SpaceResolver>,
    pub(crate) store_timeout: Option<Duration>,
    pub(crate) usage: Option<Arc<UsageTracker>>,
    /// Asked after verification, for keys with limits of their own, or for every key
    /// when `limit_every_key`.
    pub(crate) limiter: Arc<dyn Limiter>,
    /// Whether the limiter has limits for keys without their own (a default rate, or a
    /// limiter you supplied); otherwise keys without limits skip it.
    pub(crate) limit_every_key: bool,
    /// The limits of the in-process limiter keygate built, rebuilt on a new clock; `None`
    /// for a limiter you supplied.
    pub(crate) local_limits: Option<RateLimits>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyLayer")
            .field("sources", &self.sources)
            .field("format", &self.format)
            .field("hasher", &self.hasher)
            .field("context", &self.context)
            .field("strip_credential", &self.strip_credential)
            .field("anonymous", &self.anonymous)
            .field("preflight", &self.preflight)
            .field("space", &self.space)
            .field("store_timeout", &self.store_timeout)
            .field("usage", &self.usage)
            .field("limiter", &self.limiter)
            .field("limit_every_key", &self.limit_every_key)
            .finish_non_exhaustive()
    }
}
