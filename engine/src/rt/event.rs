//! A broadcast within one worker: every task waiting on an [`Event`] completes at its next
//! [`Event::notify_all`]. Wakers are kept in a slab and removed when their wait is dropped,
//! so a waiter woken by something else (a timer, a select) leaves nothing behind.
//!
//! The pool's waiters for a freed connection slot use it repeatedly; the worker's drain
//! signal ([`super::drain`]) is one fired once.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use slab::Slab;

/// See the module docs.
#[derive(Default)]
pub(crate) struct Event {
    generation: Cell<u64>,
    waiters: RefCell<Slab<Waker>>,
}

impl Event {
    /// Wake every wait begun before this call.
    pub(crate) fn notify_all(&self) {
        self.generation.set(self.generation.get() + 1);
        if self.waiters.borrow().is_empty() {
            return;
        }
        // Wake outside the borrow: waking only schedules, but stay safe if it ever runs.
        let woken: Vec<Waker> = self.waiters.borrow_mut().drain().collect();
        for w in woken {
            w.wake();
        }
    }

    /// How many times [`Event::notify_all`] was called.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.get()
    }

    /// Completes at the next [`Event::notify_all`].
    pub(crate) fn wait(&self) -> EventWait<&Self> {
        EventWait::since(self, self.generation.get())
    }
}

/// The future of [`Event::wait`]; it holds its event by any pointer (`&Event`, `Rc<Event>`).
pub(crate) struct EventWait<E: Deref<Target = Event>> {
    event: E,
    /// The generation it started in; a notify moves it on (and empties the slab).
    start: u64,
    key: Option<usize>,
}

impl<E: Deref<Target = Event>> EventWait<E> {
    /// Completes once the event's generation is past `start`.
    pub(crate) fn since(event: E, start: u64) -> Self {
        Self {
            event,
            start,
            key: None,
        }
    }
}

impl<E: Deref<Target = Event> + Unpin> Future for EventWait<E> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.event.generation.get() != self.start {
            return Poll::Ready(());
        }
        let key = self.key;
        let mut waiters = self.event.waiters.borrow_mut();
        match key {
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

impl<E: Deref<Target = Event>> Drop for EventWait<E> {
    fn drop(&mut self) {
        // After a notify the slab was emptied: the key may be someone else's by now.
        if let (Some(k), true) = (self.key, self.event.generation.get() == self.start) {
            let mut waiters = self.event.waiters.borrow_mut();
            if waiters.contains(k) {
                waiters.remove(k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::pin::pin;

    use super::*;

    #[test]
    fn event_wakes_the_waits_begun_before_it_and_forgets_dropped_ones() {
        let event = Event::default();
        let mut cx = Context::from_waker(Waker::noop());
        let mut a = pin!(event.wait());
        let b = event.wait();
        let mut b = Box::pin(b);
        assert!(a.as_mut().poll(&mut cx).is_pending());
        assert!(b.as_mut().poll(&mut cx).is_pending());
        assert_eq!(event.waiters.borrow().len(), 2);
        // A wait dropped before the notify leaves nothing behind.
        drop(b);
        assert_eq!(event.waiters.borrow().len(), 1);
        event.notify_all();
        assert!(event.waiters.borrow().is_empty());
        assert!(a.as_mut().poll(&mut cx).is_ready());
        // A wait begun after a notify waits for the next one; a wait dropped after a notify,
        // whose slab key a later wait now has, leaves the later one's waker alone.
        let d = event.wait();
        let mut d = Box::pin(d);
        assert!(d.as_mut().poll(&mut cx).is_pending());
        event.notify_all();
        let mut c = pin!(event.wait());
        assert!(c.as_mut().poll(&mut cx).is_pending());
        assert_eq!(event.waiters.borrow().len(), 1);
        drop(d);
        assert_eq!(event.waiters.borrow().len(), 1);
        assert!(c.as_mut().poll(&mut cx).is_pending());
        event.notify_all();
        assert!(c.as_mut().poll(&mut cx).is_ready());
    }
}
