//! Which io driver a runtime is built on: the workers' (from `StartOptions`) and the control
//! runtime's.

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
