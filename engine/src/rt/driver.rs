//! Which io driver a runtime is built on: the workers' (from `StartOptions`) and the control
//! runtime's; and how a worker's io_uring runtime is built.

/// Which io driver the workers run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IoDriver {
    /// io_uring where the kernel allows it, else epoll.
    #[default]
    Auto,
    IoUring,
    /// monoio's epoll-based legacy driver.
    Legacy,
}

impl IoDriver {
    /// From `RINGWAY_IO_DRIVER` (`auto`, `io_uring`, `legacy`); unset or unknown means auto.
    pub fn from_env() -> Self {
        match std::env::var("RINGWAY_IO_DRIVER").as_deref() {
            Ok("io_uring" | "uring") => Self::IoUring,
            Ok("legacy" | "epoll") => Self::Legacy,
            _ => Self::Auto,
        }
    }
}

thread_local! {
    static DEFERRED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether this thread's last [`uring_runtime`] defers its task work (DEFER_TASKRUN): the
/// kernel then touches the ring's provided buffers only while the thread is in
/// `io_uring_enter`, never between two instructions of ours, which giving their pages back
/// (`monoio::net::tcp::release_idle_buffers`) needs.
pub(crate) fn task_work_deferred() -> bool {
    DEFERRED.get()
}

/// A worker's io_uring runtime (with the timer), `entries` submission entries. Completions from
/// other CPUs (the peer's softirq on loopback) queue task work on this thread: DEFER_TASKRUN
/// runs it at our next ring entry with GETEVENTS instead of interrupting us with an IPI and a
/// signal-style wakeup (we enter the ring constantly anyway); COOP_TASKRUN where the kernel
/// lacks that (before 6.1); a plain ring where it refuses both (before 5.19).
pub(crate) fn uring_runtime(
    entries: u32,
) -> std::io::Result<monoio::Runtime<monoio::time::TimeDriver<monoio::IoUringDriver>>> {
    let mut defer = io_uring::IoUring::builder();
    defer.setup_single_issuer().setup_defer_taskrun();
    let mut coop = io_uring::IoUring::builder();
    coop.setup_coop_taskrun().setup_taskrun_flag();
    let deferred = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .uring_builder(defer)
        .with_entries(entries)
        .enable_timer()
        .build();
    DEFERRED.set(deferred.is_ok());
    deferred
        .or_else(|_| {
            monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
                .uring_builder(coop)
                .with_entries(entries)
                .enable_timer()
                .build()
        })
        .or_else(|_| {
            monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
                .with_entries(entries)
                .enable_timer()
                .build()
        })
}

/// `t`'s outcome (a client thread of a test), awaited without blocking the runtime, which
/// still has to submit what the test left in its ring.
#[cfg(test)]
pub(crate) async fn joined<T>(t: std::thread::JoinHandle<T>) -> T {
    while !t.is_finished() {
        monoio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    t.join().unwrap()
}

/// Runs `test()` to its end on the epoll (legacy) driver, then, where the kernel has io_uring,
/// on a runtime built as a worker's ([`uring_runtime`]).
#[cfg(test)]
pub(crate) fn on_both_drivers<F: Future>(mut test: impl FnMut() -> F) {
    monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .unwrap()
        .block_on(test());
    if monoio::utils::detect_uring() {
        uring_runtime(256).unwrap().block_on(test());
    }
}
