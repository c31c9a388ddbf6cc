//! [`AuditSink`]: where audit events go; [`TracingSink`] (the default) and [`NoAudit`].

use std::sync::Arc;

use crate::audit::event::{AuditEvent, Outcome, Reason};
use crate::key::id::KeyId;

/// Where audit events go. Called on the audit worker thread, never on a request's path.
///
/// A sink may block or fail; the layer only loses events (counted) when the sink falls so
/// far behind that the queue fills. A sink that panics loses the event it panicked on and
/// keeps receiving the next ones.
pub trait AuditSink: Send + Sync + 'static {
    /// Records one event.
    fn record(&self, event: &AuditEvent);
}

impl<S: AuditSink + ?Sized> AuditSink for Arc<S> {
    fn record(&self, event: &AuditEvent) {
        (**self).record(event);
    }
}

/// Both sinks, in turn: `(TracingSink, sql_trail)` logs every decision and keeps it.
impl<A: AuditSink, B: AuditSink> AuditSink for (A, B) {
    fn record(&self, event: &AuditEvent) {
        self.0.record(event);
        self.1.record(event);
    }
}

/// The default sink: one `tracing` event per decision, with target `keygate::audit`.
///
/// Denials are logged at `INFO`, allowed requests at `DEBUG`, so a production filter at
/// `INFO` keeps the trail of failures without one line per request. While `DEBUG` is off
/// for `keygate::audit`, the layer does not even build or queue the events of allowed
/// requests, so they cost nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingSink;

impl AuditSink for TracingSink {
    fn record(&self, event: &AuditEvent) {
        let key_id = event.key_id.as_ref().map(KeyId::as_str);
        match &event.outcome {
            Outcome::Denied(reason) => {
                let scope = match reason {
                    Reason::MissingScope(scope) => Some(scope.as_str()),
                    _ => None,
                };
                tracing::info!(
                    target: "keygate::audit",
                    outcome = "denied",
                    reason = reason.as_str(),
                    scope,
                    key_id,
                    user = event.user(),
                    space = event.space(),
                    target_space = event.target_space.as_deref(),
                    method = %event.method,
                    path = event.path(),
                    "request denied"
                );
            }
            outcome => {
                let outcome = match outcome {
                    Outcome::AllowedByPreviousSecret => "allowed_by_previous_secret",
                    Outcome::Anonymous => "anonymous",
                    Outcome::Preflight => "preflight",
                    _ => "allowed",
                };
                tracing::debug!(
                    target: "keygate::audit",
                    outcome,
                    key_id,
                    user = event.user(),
                    space = event.space(),
                    method = %event.method,
                    path = event.path(),
                    "request allowed"
                );
            }
        }
    }
}

/// A sink that discards events: for services that want no audit trail at all.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoAudit;

impl AuditSink for NoAudit {
    fn record(&self, _event: &AuditEvent) {}
}
