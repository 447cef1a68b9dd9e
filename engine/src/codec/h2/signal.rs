//! A wake-up for one waiting task within one worker thread.

use std::cell::Cell;
use std::future::poll_fn;
use std::task::{Poll, Waker};

/// Set by [`Signal::notify`], consumed by [`Signal::wait`]; a notify before the wait is kept.
#[derive(Default)]
pub(crate) struct Signal {
    set: Cell<bool>,
    waker: Cell<Option<Waker>>,
}

impl Signal {
    /// Wake the waiting task (or let its next wait return at once).
    pub(crate) fn notify(&self) {
        self.set.set(true);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    /// Completes once notified since the last wait completed.
    pub(crate) async fn wait(&self) {
        poll_fn(|cx| {
            if self.set.replace(false) {
                return Poll::Ready(());
            }
            self.waker.set(Some(cx.waker().clone()));
            Poll::Pending
        })
        .await;
    }
}
