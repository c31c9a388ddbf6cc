//! Metrics through the `metrics` facade (feature `metrics`): whatever recorder the
//! application installs (Prometheus, StatsD, …) receives them.
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `keygate_decisions_total` | counter | `outcome` (`allowed`, `denied`, …), `reason` (`none`, `wrong_secret`, `rate_limited`, …) |
//! | `keygate_store_lookup_seconds` | histogram | — |
//! | `keygate_cache_total` | counter | `result` (`hit`, `miss`) |
//! | `keygate_audit_dropped_total` | counter | — (the layer's queue, and [`SqlAuditSink`](crate::SqlAuditSink)'s) |
//! | `keygate_usage_dropped_total` | counter | — |
//! | `keygate_key_requests_total` | counter | `key_id`, only with [`Keygate::with_per_key_metrics`](crate::Keygate::with_per_key_metrics) |
//!
//! Every label takes a bounded set of values: outcomes and reasons are fixed names, and key
//! ids appear only when asked for, for at most a configured number of keys (the rest
//! count under `key_id="other"`), so no caller can grow a dashboard's series without
//! bound.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::audit::event::Outcome;
use crate::key::id::KeyId;

/// Counts one decision.
pub(crate) fn decision(outcome: &Outcome) {
    let (outcome, reason) = match outcome {
        Outcome::Allowed => ("allowed", "none"),
        Outcome::AllowedByPreviousSecret => ("allowed_by_previous_secret", "none"),
        Outcome::Anonymous => ("anonymous", "none"),
        Outcome::Preflight => ("preflight", "none"),
        Outcome::Denied(reason) => ("denied", reason.as_str()),
    };
    metrics::counter!("keygate_decisions_total", "outcome" => outcome, "reason" => reason)
        .increment(1);
}

/// Records how long a store lookup took.
pub(crate) fn lookup(took: Duration) {
    metrics::histogram!("keygate_store_lookup_seconds").record(took.as_secs_f64());
}

/// Counts a cache hit or miss.
#[cfg_attr(not(feature = "cache"), allow(dead_code))]
pub(crate) fn cache(hit: bool) {
    let result = if hit { "hit" } else { "miss" };
    metrics::counter!("keygate_cache_total", "result" => result).increment(1);
}

/// Counts an audit event dropped because a queue (the layer's, or a sink's) was full.
pub(crate) fn audit_dropped() {
    metrics::counter!("keygate_audit_dropped_total").increment(1);
}

/// Counts a use not tracked because too many keys were pending.
pub(crate) fn usage_dropped() {
    metrics::counter!("keygate_usage_dropped_total").increment(1);
}

/// Per-key request counts for at most `cap` keys; later keys count as `other`.
#[derive(Debug)]
pub(crate) struct PerKey {
    cap: usize,
    labelled: Mutex<HashSet<KeyId>>,
}

impl PerKey {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap,
            labelled: Mutex::default(),
        }
    }

    /// Counts one request of key `id`.
    pub(crate) fn count(&self, id: KeyId) {
        let mut labelled = self.labelled.lock().unwrap_or_else(PoisonError::into_inner);
        let label = if labelled.contains(&id) || labelled.len() < self.cap {
            labelled.insert(id);
            id.as_str().to_owned()
        } else {
            "other".to_owned()
        };
        drop(labelled);
        metrics::counter!("keygate_key_requests_total", "key_id" => label).increment(1);
    }
}
