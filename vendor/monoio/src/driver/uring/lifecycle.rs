//! Uring state lifecycle.
//! Partly borrow from tokio-uring.

use std::{
    io,
    task::{Context, Poll, Waker},
};

use super::multi::{give_back, is_last, BufRing, MultiState};
use crate::{driver::op::CompletionMeta, utils::slab::Ref};

pub(crate) enum Lifecycle {
    /// The operation has been submitted to uring and is currently in-flight
    Submitted,

    /// The submitter is waiting for the completion of the operation
    Waiting(Waker),

    /// The submitter no longer has interest in the operation result. The state
    /// must be passed to the driver and held until the operation completes.
    #[allow(dead_code)]
    Ignored(Box<dyn std::any::Any>),

    /// The operation has completed.
    Completed(io::Result<u32>, u32),

    /// A multishot operation (ringway patch): its completions queue until taken.
    Multi(Box<MultiState>),
}

impl<'a> Ref<'a, Lifecycle> {
    pub(crate) fn complete(
        mut self,
        result: io::Result<u32>,
        flags: u32,
        bufs: Option<&mut BufRing>,
    ) {
        let ref_mut = &mut *self;
        match ref_mut {
            Lifecycle::Multi(m) => {
                if m.ignored.is_none() {
                    m.queue.push_back((result, flags));
                    if let Some(w) = m.waker.take() {
                        w.wake();
                    }
                    return;
                }
                // Nobody takes it: the buffer goes back, the entry with the last completion.
                give_back(bufs, flags);
                if is_last(flags) {
                    self.remove();
                }
            }
            Lifecycle::Submitted => {
                *ref_mut = Lifecycle::Completed(result, flags);
            }
            Lifecycle::Waiting(_) => {
                let old = std::mem::replace(ref_mut, Lifecycle::Completed(result, flags));
                match old {
                    Lifecycle::Waiting(waker) => {
                        waker.wake();
                    }
                    _ => unsafe { std::hint::unreachable_unchecked() },
                }
            }
            Lifecycle::Ignored(..) => {
                self.remove();
            }
            Lifecycle::Completed(..) => unsafe { std::hint::unreachable_unchecked() },
        }
    }

    #[allow(clippy::needless_pass_by_ref_mut)]
    pub(crate) fn poll_op(mut self, cx: &mut Context<'_>) -> Poll<CompletionMeta> {
        let ref_mut = &mut *self;
        match ref_mut {
            Lifecycle::Submitted => {
                *ref_mut = Lifecycle::Waiting(cx.waker().clone());
                return Poll::Pending;
            }
            Lifecycle::Waiting(waker) => {
                if !waker.will_wake(cx.waker()) {
                    *ref_mut = Lifecycle::Waiting(cx.waker().clone());
                }
                return Poll::Pending;
            }
            _ => {}
        }

        match self.remove() {
            Lifecycle::Completed(result, flags) => Poll::Ready(CompletionMeta { result, flags }),
            _ => unsafe { std::hint::unreachable_unchecked() },
        }
    }

    // return if the op must has been finished
    pub(crate) fn drop_op<T: 'static>(mut self, data: &mut Option<T>) -> bool {
        let ref_mut = &mut *self;
        match ref_mut {
            Lifecycle::Submitted | Lifecycle::Waiting(_) => {
                if let Some(data) = data.take() {
                    *ref_mut = Lifecycle::Ignored(Box::new(data));
                } else {
                    *ref_mut = Lifecycle::Ignored(Box::new(())); // () is a ZST, so it does not
                                                                 // allocate
                };
                return false;
            }
            Lifecycle::Completed(..) => {
                self.remove();
            }
            Lifecycle::Ignored(..) | Lifecycle::Multi(..) => unsafe {
                std::hint::unreachable_unchecked()
            },
        }
        true
    }
}

impl<'a> Ref<'a, Lifecycle> {
    /// The next completion of a multishot operation, or `Pending` with `cx`'s waker kept.
    pub(crate) fn poll_multi(mut self, cx: &mut Context<'_>) -> Poll<(io::Result<u32>, u32)> {
        match &mut *self {
            Lifecycle::Multi(m) => match m.queue.pop_front() {
                Some(c) => Poll::Ready(c),
                None => {
                    match &m.waker {
                        Some(w) if w.will_wake(cx.waker()) => {}
                        _ => m.waker = Some(cx.waker().clone()),
                    }
                    Poll::Pending
                }
            },
            _ => unreachable!("not a multishot operation"),
        }
    }

    /// The owner of a multishot operation is gone. Completions it did not take give their
    /// buffers back; if its last completion is among them, the entry goes now; otherwise it
    /// stays, holding `keep`, until the last one comes. `true`: the entry stays (cancel it).
    pub(crate) fn drop_multi(
        mut self,
        keep: Box<dyn std::any::Any>,
        mut bufs: Option<&mut BufRing>,
    ) -> bool {
        let Lifecycle::Multi(m) = &mut *self else {
            unreachable!("not a multishot operation");
        };
        let mut last = false;
        for (_, flags) in m.queue.drain(..) {
            give_back(bufs.as_deref_mut(), flags);
            last |= is_last(flags);
        }
        if last {
            self.remove();
            return false;
        }
        m.waker = None;
        m.ignored = Some(keep);
        true
    }
}
