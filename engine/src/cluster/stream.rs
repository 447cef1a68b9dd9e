//! The byte stream of an upstream connection: plain TCP, or TLS originated by ringway
//! ([`crate::tls::connect`]) for clusters with a `tls` table. The HTTP/1 exchange, upgrade
//! tunnels, HTTP/2 connections and the TCP proxy run over [`UpstreamIo`] through monoio's
//! owned-buffer traits and never look at which one it is (the pattern of
//! [`crate::proxy::DownstreamIo`], whose IO forwarding macros it shares).
//!
//! Plain TCP pays one branch per IO call for this: each call forwards to the `TcpStream` (or
//! its split half) unchanged.

use std::io;

use monoio::BufResult;
use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, OwnedReadHalf, OwnedWriteHalf, Splitable};
use monoio::net::TcpStream;

use crate::proxy::{forward_read, forward_write};
use crate::tls::{TlsReadHalf, TlsStream, TlsWriteHalf};

/// An upstream connection's stream.
#[derive(Debug)]
pub(crate) enum UpstreamIo {
    /// Plaintext TCP.
    Plain(TcpStream),
    /// TLS to the upstream (the handshake is done).
    Tls(TlsStream),
}

/// The read half of a split [`UpstreamIo`].
#[derive(Debug)]
pub(crate) enum UpstreamRead {
    /// Of a plaintext connection.
    Plain(OwnedReadHalf<TcpStream>),
    /// Of a TLS connection.
    Tls(TlsReadHalf),
}

/// The write half of a split [`UpstreamIo`].
#[derive(Debug)]
pub(crate) enum UpstreamWrite {
    /// Of a plaintext connection.
    Plain(OwnedWriteHalf<TcpStream>),
    /// Of a TLS connection.
    Tls(TlsWriteHalf),
}

/// [`UpstreamRead::reunite`] was given halves of two different streams (both are dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mismatched;

impl Splitable for UpstreamIo {
    type OwnedRead = UpstreamRead;
    type OwnedWrite = UpstreamWrite;

    /// Splits into halves usable at the same time (from two futures on this thread).
    fn into_split(self) -> (UpstreamRead, UpstreamWrite) {
        match self {
            Self::Plain(s) => {
                let (r, w) = s.into_split();
                (UpstreamRead::Plain(r), UpstreamWrite::Plain(w))
            }
            Self::Tls(s) => {
                let (r, w) = s.into_split();
                (UpstreamRead::Tls(r), UpstreamWrite::Tls(w))
            }
        }
    }
}

impl UpstreamRead {
    /// Joins the halves of one stream again.
    pub(crate) fn reunite(self, write: UpstreamWrite) -> Result<UpstreamIo, Mismatched> {
        match (self, write) {
            (Self::Plain(r), UpstreamWrite::Plain(w)) => {
                r.reunite(w).map(UpstreamIo::Plain).map_err(|_| Mismatched)
            }
            (Self::Tls(r), UpstreamWrite::Tls(w)) => {
                r.reunite(w).map(UpstreamIo::Tls).map_err(|_| Mismatched)
            }
            _ => Err(Mismatched),
        }
    }
}

forward_read!(UpstreamIo);
forward_read!(UpstreamRead);
forward_write!(UpstreamIo);
forward_write!(UpstreamWrite);
