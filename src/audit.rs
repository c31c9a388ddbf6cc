//! Audit: an [`AuditEvent`] for every decision, delivered to an [`AuditSink`] off the
//! request path.
//!
//! The layer hands each event to a bounded queue and returns at once. A worker thread
//! drains the queue into the sink, so a slow, blocking or panicking sink never slows or
//! fails a request: when the queue is full, events are dropped and counted
//! ([`AuditStats::dropped`]).

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::sync::{Arc, OnceLock};
use std::thread::{self, Thread};
use std::time::{Duration, SystemTime};

use http::{Method, Uri};

use crate::identity::Identity;
use crate::key::{KeyId, MalformedKey};

/// One authentication decision.
///
/// Events never hold a secret: only the non-secret key id, the identity it belongs to,
/// and the request's method and path (without its query string, which may carry
/// credentials of other kinds).
#[derive(Clone)]
#[non_exhaustive]
pub struct AuditEvent {
    /// When the decision was made, by the layer's clock.
    pub at: SystemTime,
    /// What was decided, with the precise reason for a denial.
    pub outcome: Outcome,
    /// The presented key's id, once the key was well-formed.
    pub key_id: Option<KeyId>,
    /// The identity the key id belongs to, when the store knew it. For a denial this names
    /// the key's owner, not a caller who proved to be them.
    pub identity: Option<Identity>,
    /// The space the request targeted, when a space resolver named one; at most 512
    /// bytes of it.
    pub target_space: Option<String>,
    /// The request method.
    pub method: Method,
    /// A copy of the path. Not the `Uri` itself: hyper's `Uri` can be a slice of the
    /// whole request head, credential lines included, and a queued event must not keep
    /// that buffer alive.
    path: Box<str>,
}

/// Longest path kept in an event, in bytes; longer paths are cut at a char boundary.
const MAX_PATH_LEN: usize = 512;

/// Longest target space kept in an event, in bytes. A resolver may read the space from a
/// header or a path segment of any length, and up to a queue's worth of events wait in
/// memory, so each must stay small.
const MAX_SPACE_LEN: usize = 512;

impl AuditEvent {
    pub(crate) fn new(at: SystemTime, outcome: Outcome, method: &Method, uri: &Uri) -> Self {
        Self {
            at,
            outcome,
            key_id: None,
            identity: None,
            target_space: None,
            method: method.clone(),
            path: truncate(uri.path(), MAX_PATH_LEN).into(),
        }
    }

    /// Records the space the request targeted, cut to 512 bytes.
    pub(crate) fn set_target_space(&mut self, space: Option<String>) {
        self.target_space = space.map(|mut space| {
            space.truncate(truncate(&space, MAX_SPACE_LEN).len());
            space
        });
    }

    /// The request path, without the query string.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The user the key belongs to, when known.
    pub fn user(&self) -> Option<&str> {
        self.identity.as_ref().map(Identity::user)
    }

    /// The space the key is bound to, when known and bound.
    pub fn space(&self) -> Option<&str> {
        self.identity.as_ref().and_then(Identity::space)
    }
}

impl fmt::Debug for AuditEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditEvent")
            .field("at", &self.at)
            .field("outcome", &self.outcome)
            .field("key_id", &self.key_id)
            .field("user", &self.user())
            .field("space", &self.space())
            .field("target_space", &self.target_space)
            .field("method", &self.method)
            .field("path", &self.path())
            .finish()
    }
}

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// What the layer decided.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// A valid key; the request went on.
    Allowed,
    /// The replaced secret of a regenerated key, inside its grace period; the request
    /// went on. Watch these to see who still has to roll over.
    AllowedByPreviousSecret,
    /// No credential, and the layer admits anonymous callers; the request went on.
    Anonymous,
    /// A CORS preflight let through without a key.
    Preflight,
    /// The request was refused.
    Denied(Reason),
}

impl Outcome {
    /// Whether the request went on to the inner service.
    pub fn is_allowed(&self) -> bool {
        !matches!(self, Self::Denied(_))
    }
}

/// Why a request was refused: the precise reason the client is never told.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// No credential.
    Missing,
    /// More than one credential.
    Ambiguous,
    /// The key failed the format check.
    Malformed(MalformedKey),
    /// No key has this id.
    Unknown,
    /// The id exists; the secret does not match.
    WrongSecret,
    /// The key is revoked.
    Revoked,
    /// The key has expired.
    Expired,
    /// The key is bound to another space than the request targets.
    WrongSpace,
    /// The key lacks the scope the route requires.
    MissingScope(String),
    /// The store failed.
    StoreError,
    /// The store did not answer in time.
    StoreTimeout,
}

impl Reason {
    /// A short, stable name for logs and metrics: `missing`, `wrong_secret`, …
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Ambiguous => "ambiguous",
            Self::Malformed(_) => "malformed",
            Self::Unknown => "unknown",
            Self::WrongSecret => "wrong_secret",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
            Self::WrongSpace => "wrong_space",
            Self::MissingScope(_) => "missing_scope",
            Self::StoreError => "store_error",
            Self::StoreTimeout => "store_timeout",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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

/// Counters of the audit pipeline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditStats {
    /// Events dropped because the queue was full (or the worker could not start).
    pub dropped: u64,
    /// Events the sink panicked on.
    pub sink_panics: u64,
}

/// Default queue capacity, in events.
pub(crate) const DEFAULT_CAPACITY: usize = 8192;

/// How often the worker wakes to drain the queue. Waking on a timer rather than on every
/// event keeps the request path free of system calls.
const DRAIN_INTERVAL: Duration = Duration::from_millis(10);

/// The bounded queue in front of a sink, with its worker thread.
pub(crate) struct AuditLog {
    sink: Arc<dyn AuditSink>,
    /// The sink is [`TracingSink`], which logs allowed requests at `DEBUG`: while that level
    /// is off for `keygate::audit`, those events are not even queued.
    tracing: bool,
    capacity: usize,
    /// Started on the first event, so layers that never serve spawn no thread.
    worker: OnceLock<Option<Worker>>,
    counters: Arc<Counters>,
}

struct Worker {
    queue: SyncSender<AuditEvent>,
    thread: Thread,
}

#[derive(Default)]
struct Counters {
    dropped: AtomicU64,
    sink_panics: AtomicU64,
}

impl AuditLog {
    pub(crate) fn new<A: AuditSink>(sink: A, capacity: usize) -> Self {
        Self {
            tracing: std::any::TypeId::of::<A>() == std::any::TypeId::of::<TracingSink>(),
            sink: Arc::new(sink),
            capacity: capacity.max(1),
            worker: OnceLock::new(),
            counters: Arc::default(),
        }
    }

    /// Whether an allowed request's event would reach anything.
    pub(crate) fn wants_allowed(&self) -> bool {
        !self.tracing || tracing::enabled!(target: "keygate::audit", tracing::Level::DEBUG)
    }

    /// Queues an event; never blocks.
    pub(crate) fn emit(&self, event: AuditEvent) {
        let Some(worker) = self.worker.get_or_init(|| self.spawn()) else {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        match worker.queue.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                // The worker may be asleep with a full queue; wake it early.
                worker.thread.unpark();
            }
            Err(TrySendError::Disconnected(_)) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub(crate) fn stats(&self) -> AuditStats {
        AuditStats {
            dropped: self.counters.dropped.load(Ordering::Relaxed),
            sink_panics: self.counters.sink_panics.load(Ordering::Relaxed),
        }
    }

    fn spawn(&self) -> Option<Worker> {
        let (queue, events) = sync_channel(self.capacity);
        let sink = self.sink.clone();
        let counters = self.counters.clone();
        let handle = thread::Builder::new()
            .name("keygate-audit".into())
            .spawn(move || drain(&events, &*sink, &counters))
            .ok()?;
        Some(Worker {
            queue,
            thread: handle.thread().clone(),
        })
    }
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog")
            .field("capacity", &self.capacity)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// The worker loop: deliver everything queued, sleep, repeat; stop once every sender (the
/// layer and its services) is gone.
fn drain(events: &Receiver<AuditEvent>, sink: &dyn AuditSink, counters: &Counters) {
    loop {
        loop {
            match events.try_recv() {
                Ok(event) => {
                    if catch_unwind(AssertUnwindSafe(|| sink.record(&event))).is_err() {
                        counters.sink_panics.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return,
            }
        }
        thread::park_timeout(DRAIN_INTERVAL);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::mpsc::{Sender, channel};

    use super::*;

    struct ChannelSink(Mutex<Sender<Outcome>>);

    impl AuditSink for ChannelSink {
        fn record(&self, event: &AuditEvent) {
            if event.outcome == Outcome::Denied(Reason::Revoked) {
                panic!("sink failure");
            }
            let _ = self.0.lock().unwrap().send(event.outcome.clone());
        }
    }

    fn event(outcome: Outcome) -> AuditEvent {
        AuditEvent::new(
            SystemTime::UNIX_EPOCH,
            outcome,
            &Method::GET,
            &Uri::from_static("/x?k=v"),
        )
    }

    #[test]
    fn events_reach_the_sink_in_order() {
        let (tx, rx) = channel();
        let log = AuditLog::new(ChannelSink(Mutex::new(tx)), 16);
        log.emit(event(Outcome::Allowed));
        log.emit(event(Outcome::Denied(Reason::Unknown)));
        let timeout = Duration::from_secs(5);
        assert_eq!(rx.recv_timeout(timeout), Ok(Outcome::Allowed));
        assert_eq!(
            rx.recv_timeout(timeout),
            Ok(Outcome::Denied(Reason::Unknown))
        );
    }

    #[test]
    fn a_panicking_sink_is_counted_and_keeps_receiving() {
        let (tx, rx) = channel();
        let log = AuditLog::new(ChannelSink(Mutex::new(tx)), 16);
        log.emit(event(Outcome::Denied(Reason::Revoked)));
        log.emit(event(Outcome::Allowed));
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(5)),
            Ok(Outcome::Allowed)
        );
        assert_eq!(log.stats().sink_panics, 1);
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_blocking() {
        struct Blocked(Mutex<()>);
        impl AuditSink for Blocked {
            fn record(&self, _: &AuditEvent) {
                drop(self.0.lock().unwrap());
            }
        }
        let sink = Arc::new(Blocked(Mutex::new(())));
        let guard = sink.0.lock().unwrap();
        let log = AuditLog::new(sink.clone(), 4);
        for _ in 0..100 {
            log.emit(event(Outcome::Allowed));
        }
        // The worker holds at most one event in the sink and four in the queue.
        assert!(log.stats().dropped >= 95, "{:?}", log.stats());
        drop(guard);
    }

    #[test]
    fn long_paths_are_cut_to_the_bound() {
        let long = format!("/{}", "é".repeat(600));
        let uri: Uri = long.parse().unwrap();
        let event = AuditEvent::new(SystemTime::UNIX_EPOCH, Outcome::Allowed, &Method::GET, &uri);
        // "/" then two-byte chars: byte 512 falls inside one, so the cut lands at 511.
        assert_eq!(event.path().len(), MAX_PATH_LEN - 1);
    }

    #[test]
    fn allowed_events_are_skipped_only_for_the_tracing_sink_with_debug_off() {
        // No subscriber is installed in unit tests, so DEBUG is off.
        assert!(!AuditLog::new(TracingSink, 16).wants_allowed());
        assert!(AuditLog::new(NoAudit, 16).wants_allowed());
    }

    #[test]
    fn debug_shows_the_path_but_not_the_query() {
        let debug = format!("{:?}", event(Outcome::Allowed));
        assert!(debug.contains("\"/x\""));
        assert!(!debug.contains("k=v"));
    }
}
