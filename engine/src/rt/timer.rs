//! Coarse per-worker deadlines for connection and request timeouts.
//!
//! The runtime's own `Sleep` is 640 bytes and registers in a timer wheel; an idle connection
//! would carry one for its idle timeout, which alone would break the memory budget of an idle
//! keep-alive connection (DESIGN.md: under 0.5 KiB). Instead, a deadline here is a slab slot
//! (deadline + waker) in a thread-local table, and one ticker task per worker wakes the expired
//! ones every [`TICK`]. Timeouts therefore fire up to one tick late, which is fine for
//! connection- and request-level timeouts (seconds), and arming one costs a slab insert.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use slab::Slab;

/// How often expired deadlines are woken: the resolution of every timeout in the proxy.
pub(crate) const TICK: Duration = Duration::from_millis(50);

struct Entry {
    at: Instant,
    waker: Option<Waker>,
    fired: bool,
}

thread_local! {
    static TABLE: RefCell<Slab<Entry>> = const { RefCell::new(Slab::new()) };
    static NOW: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// The time of the last tick: at most one [`TICK`] behind the clock, and free to read. Good
/// enough for arming deadlines (which fire on ticks anyway) and for pool idle stamps; use
/// `Instant::now()` where a latency is measured.
pub(crate) fn coarse_now() -> Instant {
    NOW.with(|n| match n.get() {
        Some(t) => t,
        None => {
            let t = Instant::now();
            n.set(Some(t));
            t
        }
    })
}

/// Completes once `at` has passed (checked every [`TICK`] by the worker's ticker).
pub(crate) fn sleep_until(at: Instant) -> Deadline {
    Deadline { at, key: None }
}

/// Wake every deadline that has passed. Called by the worker's ticker task.
pub(crate) fn tick(now: Instant) {
    NOW.with(|n| n.set(Some(now)));
    let mut woken = Vec::new();
    TABLE.with(|t| {
        for (_, e) in t.borrow_mut().iter_mut() {
            if !e.fired && e.at <= now {
                e.fired = true;
                if let Some(w) = e.waker.take() {
                    woken.push(w);
                }
            }
        }
    });
    // Wake outside the borrow: a woken task may arm or drop a deadline.
    for w in woken {
        w.wake();
    }
}

/// Armed deadlines on this thread (for tests and stats).
#[cfg(test)]
pub(crate) fn armed() -> usize {
    TABLE.with(|t| t.borrow().len())
}

/// Future returned by [`sleep_until`]. Occupies a slot only while it is being awaited.
pub(crate) struct Deadline {
    at: Instant,
    key: Option<usize>,
}

impl Future for Deadline {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let at = self.at;
        match self.key {
            None => {
                // By the coarse clock, as the ticker judges: a deadline fires only once
                // `coarse_now()` has reached it, so a task that checks the time after waking
                // always finds it passed (judged by `Instant::now()`, a deadline could fire
                // while the coarse clock still said "not yet", and a loop that re-arms until
                // the coarse clock agrees would spin without ever letting the ticker run).
                if at <= coarse_now() {
                    return Poll::Ready(());
                }
                let key = TABLE.with(|t| {
                    t.borrow_mut().insert(Entry {
                        at,
                        waker: Some(cx.waker().clone()),
                        fired: false,
                    })
                });
                self.key = Some(key);
                Poll::Pending
            }
            Some(key) => TABLE.with(|t| {
                let mut t = t.borrow_mut();
                match t.get_mut(key) {
                    Some(e) if e.fired => Poll::Ready(()),
                    Some(e) => {
                        match &mut e.waker {
                            Some(w) => w.clone_from(cx.waker()),
                            None => e.waker = Some(cx.waker().clone()),
                        }
                        Poll::Pending
                    }
                    None => Poll::Ready(()),
                }
            }),
        }
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            // `try_with`: a connection dropped during thread teardown finds no table.
            let _ = TABLE.try_with(|t| {
                let mut t = t.borrow_mut();
                if t.contains(key) {
                    t.remove(key);
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn fires_on_the_first_tick_after_the_deadline_and_frees_its_slot() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let start = Instant::now();
        let mut d = Box::pin(sleep_until(start + Duration::from_secs(10)));
        assert!(d.as_mut().poll(&mut cx).is_pending());
        assert_eq!(armed(), 1);
        tick(start + Duration::from_secs(9));
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
        assert!(d.as_mut().poll(&mut cx).is_pending());
        tick(start + Duration::from_secs(10));
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(d.as_mut().poll(&mut cx).is_ready());
        drop(d);
        assert_eq!(armed(), 0);
    }

    #[test]
    fn a_dropped_deadline_never_fires() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let start = Instant::now();
        let mut d = Box::pin(sleep_until(start + Duration::from_secs(1)));
        assert!(d.as_mut().poll(&mut cx).is_pending());
        drop(d);
        tick(start + Duration::from_secs(2));
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
        assert_eq!(armed(), 0);
    }

    #[test]
    fn past_deadline_is_ready_without_a_slot() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count);
        let mut cx = Context::from_waker(&waker);
        let mut d = Box::pin(sleep_until(Instant::now() - Duration::from_millis(1)));
        assert!(d.as_mut().poll(&mut cx).is_ready());
        assert_eq!(armed(), 0);
    }

    #[test]
    fn deadline_future_is_small() {
        assert!(size_of::<Deadline>() <= 32);
    }
}
