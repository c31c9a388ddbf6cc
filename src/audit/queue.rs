//! [`AuditLog`]: the bounded queue in front of a sink, drained by a worker thread, and its
//! [`AuditStats`].
//!
//! The layer hands each event to the queue and returns at once. The worker drains the
//! queue into the sink, so a slow, blocking or panicking sink never slows or fails a
//! request: when the queue is full, events are dropped and counted
//! ([`AuditStats::dropped`]).

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::sync::{Arc, OnceLock};
use std::thread::{self, Thread};
use std::time::Duration;

use crate::audit::event::AuditEvent;
use crate::audit::sink::{AuditSink, TracingSink};

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
                #[cfg(feature = "metrics")]
                crate::audit::metrics::audit_dropped();
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
    use std::time::SystemTime;

    use http::{Method, Uri};

    use super::*;
    use crate::audit::event::{Outcome, Reason};
    use crate::audit::sink::NoAudit;

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
    fn allowed_events_are_skipped_only_for_the_tracing_sink_with_debug_off() {
        // No subscriber is installed in unit tests, so DEBUG is off.
        assert!(!AuditLog::new(TracingSink, 16).wants_allowed());
        assert!(AuditLog::new(NoAudit, 16).wants_allowed());
    }
}
