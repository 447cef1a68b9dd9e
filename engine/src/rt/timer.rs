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
/// [`turn_now`] where a latency is measured.
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

/// The time this turn of the worker's event loop began: one clock read per turn, however many
/// requests the turn serves (the runtime reads it before it runs the turn's tasks; a patch in
/// `vendor/monoio`). Request and upstream durations, the latency histograms and the access
/// log's `duration` are measured with it, to the resolution of a turn (the events one
/// `io_uring_enter` or `epoll_wait` returned). Outside a runtime: the clock.
pub(crate) fn turn_now() -> Instant {
    monoio::time::turn_now().unwrap_or_else(Instant::now)
}

/// Time since `start` (a [`turn_now`] reading), to the resolution of a loop turn.
pub(crate) fn turn_elapsed(start: Instant) -> Duration {
    turn_now().saturating_duration_since(start)
}

/// A timeout where zero means none: a year stands for it, so `now + t` stays an `Instant`.
pub(crate) fn zero_is_never(t: Duration) -> Duration {
    if t.is_zero() {
        Duration::from_secs(365 * 24 * 3600)
    } else {
        t
    }
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

/// The worker's ticker: calls [`tick`] every [`TICK`], for as long as its runtime runs
/// (every runtime whose tasks use [`sleep_until`] spawns it).
pub(crate) async fn ticker() {
    loop {
        monoio::time::sleep(TICK).await;
        tick(Instant::now());
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

    async fn turn_clock_holds_within_a_turn_and_moves_between_turns() {
        let first = turn_now();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(turn_now(), first, "the same turn: no clock read");
        monoio::time::sleep(Duration::from_millis(5)).await;
        let next = turn_now();
        assert!(
            next >= first + Duration::from_millis(5),
            "{next:?} {first:?}"
        );
        assert!(next <= Instant::now());
    }

    #[test]
    fn the_turn_clock_is_read_once_per_loop_turn_on_both_drivers() {
        crate::rt::driver::on_both_drivers(turn_clock_holds_within_a_turn_and_moves_between_turns);
    }

    #[test]
    fn outside_a_runtime_the_turn_clock_is_the_clock() {
        // A thread that never ran a runtime loop.
        let (before, turn) = std::thread::spawn(|| (Instant::now(), turn_now()))
            .join()
            .unwrap();
        assert!(turn >= before);
    }

    #[test]
    fn deadline_future_is_small() {
        assert!(size_of::<Deadline>() <= 32);
    }
}
