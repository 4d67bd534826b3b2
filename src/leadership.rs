//! Which node runs the singletons.
//!
//! The scheduler (notices, promise reminders and holding statements, maintenance transitions,
//! flap hold-down ends), the intake's held-back public updates and the purge of unconfirmed
//! sign-ups must act once for the whole deployment, not once per node. With the embedded sled
//! store there is one node and it always leads. With PostgreSQL every node runs an
//! [`Elector`](crate::pg::leader::Elector) and only the elected one ticks; the others keep
//! serving requests and sending deliveries. Leadership is checked at every tick, so a node that
//! loses its election connection stops at its next tick and another takes over within the
//! election's re-check interval. Two nodes may briefly both believe they lead (a leader cut off
//! from the database learns it only at its next check), so every singleton action stays
//! idempotent in the store itself: keyed standalone messages, conditional appends
//! (`NewUpdate::expect_count`), drafts published once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::watch;

use crate::pg::leader::Elector;

/// A cheap, cloneable view of this node's leadership.
#[derive(Clone)]
pub struct Leadership {
    view: LeaderView,
    /// Keeps what feeds the view alive: the one-node sender, or the elector (whose drop ends its
    /// connection and so frees the lock).
    source: Arc<Source>,
}

enum Source {
    Always(#[allow(dead_code)] watch::Sender<bool>),
    Elected(Elector),
    /// A test drives the receiver itself.
    #[cfg(test)]
    Test,
}

impl Leadership {
    /// One node (the embedded store): always the leader.
    pub fn always() -> Leadership {
        let (tx, rx) = watch::channel(true);
        Leadership {
            view: LeaderView::new(rx),
            source: Arc::new(Source::Always(tx)),
        }
    }

    /// Leads as a test's `rx` says.
    #[cfg(test)]
    pub(crate) fn for_tests(rx: watch::Receiver<bool>) -> Leadership {
        Leadership {
            view: LeaderView::new(rx),
            source: Arc::new(Source::Test),
        }
    }

    /// Leads while `elector` holds the election lock.
    pub fn elected(elector: Elector) -> Leadership {
        Leadership {
            view: LeaderView::new(elector.subscribe()),
            source: Arc::new(Source::Elected(elector)),
        }
    }

    /// Whether this node leads now (as of its election's last check).
    pub fn is_leader(&self) -> bool {
        self.view.is_leader()
    }

    /// Stops leading for good (the server is shutting down): every clone answers `false` from
    /// now on, and with PostgreSQL the election connection closes, so another node's next try
    /// takes the lock without waiting for this process to exit.
    pub fn step_down(&self) {
        self.view.stepped_down.store(true, Ordering::SeqCst);
        if let Source::Elected(e) = &*self.source {
            e.stop();
        }
    }

    /// Follows changes (for logging, metrics and tests).
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.view.rx.clone()
    }

    /// A view that reads this node's leadership without keeping its election alive (for
    /// `/metrics`, whose owner may outlive the server).
    pub fn view(&self) -> LeaderView {
        self.view.clone()
    }
}

/// Reads a node's leadership and owns nothing: once the election behind it is gone, or the
/// node has stepped down, it answers `false`.
#[derive(Clone)]
pub struct LeaderView {
    rx: watch::Receiver<bool>,
    /// Set once this node steps down (it is shutting down): never leader again.
    stepped_down: Arc<AtomicBool>,
}

impl LeaderView {
    fn new(rx: watch::Receiver<bool>) -> LeaderView {
        LeaderView {
            rx,
            stepped_down: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Whether the node leads now; `false` once its election has ended.
    pub fn is_leader(&self) -> bool {
        !self.stepped_down.load(Ordering::SeqCst)
            && self.rx.has_changed().is_ok()
            && *self.rx.borrow()
    }
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leadership")
            .field("leader", &self.is_leader())
            .finish()
    }
}
