//! Worker-local drain signal: connections wait on it while idle so SIGTERM closes them at once.
//!
//! Single-threaded (`Rc`): an [`Event`] fired once, so an idle connection costs one slab slot
//! here.

use std::rc::Rc;

use super::event::{Event, EventWait};

/// A one-shot broadcast within one worker.
#[derive(Clone, Default)]
pub(crate) struct Drain(Rc<Event>);

/// Future returned by [`Drain::wait`].
pub(crate) type Wait = EventWait<Rc<Event>>;

impl Drain {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Fire the signal: every waiting future completes.
    pub(crate) fn fire(&self) {
        if !self.is_draining() {
            self.0.notify_all();
        }
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.0.generation() > 0
    }

    /// Completes once [`Drain::fire`] has been called.
    pub(crate) fn wait(&self) -> Wait {
        EventWait::since(Rc::clone(&self.0), 0)
    }
}
