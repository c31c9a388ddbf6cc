//! Audit: an [`AuditEvent`] for every decision, delivered to an [`AuditSink`] off the
//! request path, and the per-key usage (last use, count) written back to the store in
//! batches.

pub(crate) mod event;
#[cfg(feature = "metrics")]
pub(crate) mod metrics;
pub(crate) mod queue;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) mod rollup;
pub(crate) mod sink;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) mod sql;
pub(crate) mod usage;

pub use event::{AuditEvent, Outcome, Reason};
pub use queue::AuditStats;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use rollup::{Granularity, UsageBucket, UsageOf};
pub use sink::{AuditSink, NoAudit, TracingSink};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use sql::{
    AuditQuery, BATCH as AUDIT_BATCH, DEFAULT_AUDIT_QUEUE, DENIAL_SAMPLE, ReasonCount, Retention,
    SqlAuditSink, SqlAuditStats, StoredEvent,
};
