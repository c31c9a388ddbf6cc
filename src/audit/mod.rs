//! Audit: an [`AuditEvent`] for every decision, delivered to an [`AuditSink`] off the
//! request path, and the per-key usage (last use, count) written back to the store in
//! batches.

pub(crate) mod event;
pub(crate) mod queue;
pub(crate) mod sink;
pub(crate) mod usage;

pub use event::{AuditEvent, Outcome, Reason};
pub use queue::AuditStats;
pub use sink::{AuditSink, NoAudit, TracingSink};
