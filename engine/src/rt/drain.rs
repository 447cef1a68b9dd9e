//! Worker-local drain signal: connections wait on it while idle so SIGTERM closes them at once.
//!
//! Single-threaded (`Rc`), registered wakers live in a slab and are removed when their future
//! is dropped, so an idle connection costs one slab slot here.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use slab::Slab;

#[derive(Default)]
struct Inner {
    fired: Cell<bool>,
    waiters: RefCell<Slab<Waker>>,
}

/// A one-shot broadcast within one worker.
#[derive(Clone, Default)]
pub(crate) struct Drain(Rc<Inner>);

impl Drain {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Fire the signal: every waiting future completes.
    pub(crate) fn fire(&self) {
        if self.0.fired.replace(true) {
            return;
        }
        for w in self.0.waiters.borrow_mut().drain() {
            w.wake();
        }
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.0.fired.get()
    }

    /// Completes once [`Drain::fire`] has been called.
    pub(crate) fn wait(&self) -> Wait {
        Wait {
            drain: self.clone(),
            key: None,
        }
    }
}

/// Future returned by [`Drain::wait`].
pub(crate) struct Wait {
    drain: Drain,
    key: Option<usize>,
}

impl Future for Wait {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.drain.0.fired.get() {
            return Poll::Ready(());
        }
        let mut waiters = self.drain.0.waiters.borrow_mut();
        match self.key {
            Some(k) if waiters.contains(k) => waiters[k].clone_from(cx.waker()),
            _ => {
                let k = waiters.insert(cx.waker().clone());
                drop(waiters);
                self.key = Some(k);
            }
        }
        Poll::Pending
    }
}

impl Drop for Wait {
    fn drop(&mut self) {
        if let Some(k) = self.key {
            let mut waiters = self.drain.0.waiters.borrow_mut();
            if waiters.contains(k) {
                waiters.remove(k);
            }
        }
    }
}
