//! The control runtime: one thread (`ringway-control`) running a monoio runtime off the
//! workers, where work that talks to other services runs without ever blocking a worker: etcd
//! watches, active health checks, Zipkin span export, calls to a rate-limit service.
//!
//! Owns the thread, its runtime (the driver [`Control::start`] is given; the server starts it
//! on epoll, see `server.rs`; timers enabled) and a job queue. [`ControlHandle::spawn`], callable from
//! any thread, sends a `Send` closure that builds a future *on* the control thread, so the
//! future itself may hold `Rc`s and monoio sockets. [`Control::shutdown`] (also on drop) stops
//! taking jobs, cancels the tasks still running (drops their futures on the control thread),
//! ends the runtime and joins the thread.
//! [`http`] is a small HTTP/1.1 client for these tasks, on the project's own codec;
//! `health` runs active health checks and the outlier-detection tick.
//!
//! Does not: serve the admin API (that is `crate::admin`, blocking std threads), touch worker
//! connections, or give tasks a graceful stop: a task that must finish something on shutdown
//! (a last span flush) is not supported yet. DESIGN.md "Threads" (control thread).

pub(crate) mod health;
pub mod http;
#[cfg(test)]
mod tests;

use std::cell::Cell;
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::task::{Poll, Waker};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::rt::drain::Drain;
use crate::rt::driver::IoDriver;

/// io_uring submission queue size of the control runtime (few connections live here).
const RING_ENTRIES: u32 = 256;

/// A job: runs on the control thread and returns the task to spawn there.
type Job = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()>>> + Send>;

#[derive(Default)]
struct QueueState {
    jobs: VecDeque<Job>,
    /// The control thread's receive loop, waiting for a job.
    waker: Option<Waker>,
    closed: bool,
}

/// Jobs from any thread to the control thread. A mutex is fine: spawning is a cold path.
#[derive(Default)]
struct Queue(Mutex<QueueState>);

impl Queue {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn push(&self, job: Job) -> Result<(), Stopped> {
        let mut g = self.lock();
        if g.closed {
            return Err(Stopped);
        }
        g.jobs.push_back(job);
        let waker = g.waker.take();
        drop(g);
        // A waker from another thread: monoio (feature `sync`) hands it to the control
        // thread and wakes its driver.
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    fn close(&self) {
        let mut g = self.lock();
        g.closed = true;
        let waker = g.waker.take();
        drop(g);
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// The next job, or `None` once closed.
    async fn next(&self) -> Option<Job> {
        std::future::poll_fn(|cx| {
            let mut g = self.lock();
            if g.closed {
                return Poll::Ready(None);
            }
            if let Some(job) = g.jobs.pop_front() {
                return Poll::Ready(Some(job));
            }
            g.waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

/// The control runtime has stopped (or is stopping): the job was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the control runtime has stopped")]
pub struct Stopped;

/// Spawns work on the control runtime from any thread. Cheap to clone.
#[derive(Clone)]
pub struct ControlHandle {
    queue: Arc<Queue>,
}

impl fmt::Debug for ControlHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ControlHandle")
            .field("closed", &self.queue.lock().closed)
            .finish()
    }
}

impl ControlHandle {
    /// Runs `make` on the control thread and spawns the future it returns there. `make` must
    /// be `Send`; the future need not be (it may hold `Rc`s and monoio sockets).
    pub fn spawn<F, Fut>(&self, make: F) -> Result<(), Stopped>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        self.queue.push(Box::new(move || Box::pin(make())))
    }

    /// [`spawn`](Self::spawn), with the future's output sent back: the receiver yields it
    /// when the task ends (and disconnects if the runtime stops first). For blocking callers
    /// such as the admin thread.
    pub fn call<F, Fut, T>(&self, make: F) -> Result<mpsc::Receiver<T>, Stopped>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        self.spawn(move || async move {
            let _ = tx.send(make().await);
        })?;
        Ok(rx)
    }
}

/// The control thread. Stopped and joined by [`shutdown`](Self::shutdown) or on drop.
pub struct Control {
    handle: ControlHandle,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for Control {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Control")
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}

impl Control {
    /// Starts the thread and its runtime on `driver`; fails if neither can be had.
    pub fn start(driver: IoDriver) -> io::Result<Self> {
        let queue = Arc::new(Queue::default());
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let q = Arc::clone(&queue);
        let thread = std::thread::Builder::new()
            .name("ringway-control".into())
            .spawn(move || run(driver, &q, &ready_tx))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Self {
                handle: ControlHandle { queue },
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(io::Error::other("the control thread ended while starting"))
            }
        }
    }

    /// A handle to spawn work from any thread.
    pub fn handle(&self) -> ControlHandle {
        self.handle.clone()
    }

    /// Stops taking jobs, cancels the tasks still running and joins the thread.
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        self.handle.queue.close();
        if let Some(t) = self.thread.take() {
            // Joining itself would never return (a task that dropped the Control).
            if t.thread().id() != std::thread::current().id() && t.join().is_err() {
                log::error!("the control thread panicked");
            }
        }
    }
}

/// The control thread: build the runtime, report, run jobs until the queue closes.
fn run(driver: IoDriver, queue: &Arc<Queue>, ready: &mpsc::SyncSender<io::Result<()>>) {
    let use_uring = match driver {
        IoDriver::Legacy => false,
        IoDriver::IoUring => true,
        IoDriver::Auto => monoio::utils::detect_uring(),
    };
    if use_uring {
        let built = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .with_entries(RING_ENTRIES)
            .enable_timer()
            .build();
        match built {
            Ok(mut rt) => {
                log::debug!("control: io_uring driver");
                let _ = ready.send(Ok(()));
                return rt.block_on(serve(Arc::clone(queue)));
            }
            Err(e) if driver == IoDriver::IoUring => {
                let _ = ready.send(Err(e));
                return;
            }
            Err(e) => log::warn!("control: io_uring unavailable ({e}), using epoll"),
        }
    }
    match monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
    {
        Ok(mut rt) => {
            log::debug!("control: epoll (legacy) driver");
            let _ = ready.send(Ok(()));
            rt.block_on(serve(Arc::clone(queue)));
        }
        Err(e) => {
            let _ = ready.send(Err(e));
        }
    }
}

/// Runs jobs until the queue closes, then cancels the tasks still running (their futures are
/// dropped here, on the control thread, so `Rc`s and sockets in them are released in order)
/// and returns once all are gone. The worker's drain signal (`rt::drain`, a thread-local
/// broadcast) serves as the stop signal.
async fn serve(queue: Arc<Queue>) {
    let stop = Drain::new();
    let live = Rc::new(Cell::new(0usize));
    while let Some(job) = queue.next().await {
        let (stop, live) = (stop.clone(), Rc::clone(&live));
        live.set(live.get() + 1);
        monoio::spawn(async move {
            let task = job();
            monoio::select! {
                () = task => {}
                () = stop.wait() => {}
            }
            live.set(live.get() - 1);
        });
    }
    stop.fire();
    while live.get() > 0 {
        monoio::time::sleep(Duration::from_millis(1)).await;
    }
    // Jobs queued after the last one taken are dropped with the queue.
}
