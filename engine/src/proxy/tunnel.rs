//! After `101 Switching Protocols` (WebSocket and other upgrades): copy bytes both ways until
//! each side has finished, passing half-closes through.

use std::time::Duration;

use bytes::BytesMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, Splitable};

use crate::net::Io;
use crate::proxy::body::{read_into, write_bytes};
use crate::rt::{buffers, timer};

/// Run the tunnel; `down_buf`/`up_buf` hold bytes already read past the heads. Each direction
/// ends at end of stream, on error, or after `idle` without bytes. Returns bytes copied
/// (downstream -> upstream, upstream -> downstream).
pub(crate) async fn run(
    down: Io,
    down_buf: BytesMut,
    up: Io,
    up_buf: BytesMut,
    idle: Duration,
) -> (u64, u64) {
    let (mut dr, mut dw) = down.into_split();
    let (mut ur, mut uw) = up.into_split();
    let to_up = copy(&mut dr, down_buf, &mut uw, idle);
    let to_down = copy(&mut ur, up_buf, &mut dw, idle);
    let (rx, tx) = monoio::join!(to_up, to_down);
    (rx, tx)
}

async fn copy<R: AsyncReadRent, W: AsyncWriteRent>(
    src: &mut R,
    mut buf: BytesMut,
    dst: &mut W,
    idle: Duration,
) -> u64 {
    let mut total = 0u64;
    if buf.capacity() == 0 {
        buf = buffers::take();
    }
    loop {
        if !buf.is_empty() {
            let chunk = buf.split().freeze();
            total += chunk.len() as u64;
            if write_bytes(dst, chunk).await.is_err() {
                break;
            }
        }
        match read_into(src, &mut buf, Some(timer::coarse_now() + idle)).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    // Pass the half-close on: the other direction may still be sending.
    let _ = dst.shutdown().await;
    total
}
