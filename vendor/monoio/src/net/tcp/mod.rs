#![allow(unreachable_pub)]
//! TCP related.

mod listener;
mod multi;
mod split;
mod stream;
mod tfo;

pub use listener::TcpListener;
pub use multi::{provided_buffers, release_idle_buffers, MultiRecv};
pub use split::{TcpOwnedReadHalf, TcpOwnedWriteHalf};
pub use stream::{TcpConnectOpts, TcpStream};

#[cfg(feature = "poll-io")]
pub mod stream_poll;
