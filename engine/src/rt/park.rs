//! Parking lot for cold keep-alive connections: the design's memory budget for an idle
//! connection (DESIGN.md, under 0.5 KiB) cannot be met while every idle connection is a task
//! with a pending readiness op — monoio's own floor for that is about 1 KiB, measured.
//!
//! A connection idle for [`PARK_AFTER`] leaves its task: its socket is duplicated into a slab
//! record (socket, listener, peer, idle deadline: a few dozen bytes) and registered one-shot in
//! a per-worker epoll set; the original runtime stream is dropped and the task ends. One task per
//! worker waits for the epoll fd to become readable and spawns a connection task again for each
//! socket that has bytes (or hung up). Hot connections never park, so the request path pays
//! nothing; parking and waking cost a few system calls once per idle period.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use slab::Slab;

use crate::sys::{Epoll, dup_fd};

/// Idle time after which a keep-alive connection is parked.
pub(crate) const PARK_AFTER: Duration = Duration::from_secs(1);

/// A parked connection.
pub(crate) struct Parked {
    pub(crate) stream: std::net::TcpStream,
    pub(crate) listener: usize,
    pub(crate) peer: SocketAddr,
    /// When its idle timeout expires.
    pub(crate) deadline: Instant,
}

pub(crate) struct ParkingLot {
    epoll: Epoll,
    slots: RefCell<Slab<Parked>>,
}

impl ParkingLot {
    pub(crate) fn new() -> io::Result<Self> {
        Ok(Self {
            epoll: Epoll::new()?,
            slots: RefCell::new(Slab::new()),
        })
    }

    /// A fd that is readable whenever a parked connection is ready.
    pub(crate) fn waiter(&self) -> io::Result<std::os::unix::net::UnixStream> {
        // Any fd type works for readiness; UnixStream is the runtime's way to wait on one.
        Ok(std::os::unix::net::UnixStream::from(
            self.epoll.try_clone_fd()?,
        ))
    }

    /// Park the connection behind `stream`. On success the caller drops `stream` (its fd;
    /// the socket lives on in the duplicate kept here).
    pub(crate) fn park(
        &self,
        stream: &impl AsRawFd,
        listener: usize,
        peer: SocketAddr,
        deadline: Instant,
    ) -> io::Result<()> {
        let stream = std::net::TcpStream::from(dup_fd(stream.as_raw_fd())?);
        let mut slots = self.slots.borrow_mut();
        let entry = slots.vacant_entry();
        self.epoll.add_oneshot(stream.as_fd(), entry.key() as u64)?;
        entry.insert(Parked {
            stream,
            listener,
            peer,
            deadline,
        });
        Ok(())
    }

    /// Take the parked connections that became readable. Their sockets are removed from the
    /// epoll set before they go back to the runtime.
    pub(crate) fn take_ready(&self, keys: &mut Vec<u64>, out: &mut Vec<Parked>) -> io::Result<()> {
        keys.clear();
        self.epoll.ready(keys)?;
        let mut slots = self.slots.borrow_mut();
        for &key in keys.iter() {
            if let Some(p) = slots.try_remove(key as usize) {
                self.epoll.delete(p.stream.as_fd())?;
                out.push(p);
            }
        }
        Ok(())
    }

    /// Remove the connections whose idle timeout has passed (the caller closes them).
    pub(crate) fn expired(&self, now: Instant, out: &mut Vec<Parked>) {
        let mut slots = self.slots.borrow_mut();
        let keys: Vec<usize> = slots
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(k, _)| k)
            .collect();
        out.extend(keys.into_iter().map(|k| slots.remove(k)));
    }

    /// Remove every parked connection (draining).
    pub(crate) fn all(&self, out: &mut Vec<Parked>) {
        out.extend(self.slots.borrow_mut().drain());
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.slots.borrow().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn parked_socket_is_reported_when_bytes_arrive_and_expires_otherwise() {
        let lot = ParkingLot::new().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client_a = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (a, peer_a) = listener.accept().unwrap();
        let _client_b = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (b, peer_b) = listener.accept().unwrap();
        let now = Instant::now();
        lot.park(&a, 0, peer_a, now + Duration::from_secs(60))
            .unwrap();
        lot.park(&b, 1, peer_b, now + Duration::from_millis(1))
            .unwrap();
        drop((a, b)); // the lot's duplicates keep both sockets open
        assert_eq!(lot.len(), 2);

        let (mut keys, mut out) = (Vec::new(), Vec::new());
        lot.take_ready(&mut keys, &mut out).unwrap();
        assert!(out.is_empty());
        client_a.write_all(b"GET").unwrap();
        for _ in 0..100 {
            lot.take_ready(&mut keys, &mut out).unwrap();
            if !out.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].peer, peer_a);
        let mut bytes = [0u8; 3];
        io::Read::read_exact(&mut out[0].stream, &mut bytes).unwrap();
        assert_eq!(&bytes, b"GET");

        let mut expired = Vec::new();
        lot.expired(now + Duration::from_secs(1), &mut expired);
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].listener, 1);
        assert_eq!(lot.len(), 0);
    }
}
