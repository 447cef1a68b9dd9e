//! An HTTP/1 request to an HTTP/2 upstream (a cluster with `protocol = "http2"`): the request
//! body is decoded from the HTTP/1 framing and sent as DATA frames while the response comes
//! back, re-framed for HTTP/1 (content-length kept, otherwise chunked; close-delimited for
//! HTTP/1.0 clients).

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent};
use protocols::http1::{BodyDecoder, BodyEvent, BodyFraming, Version, encode};

use super::{Exchange, Next, Progress, Relayed};
use crate::access_log::ResponseFlags;
use crate::proxy::Downstream;
use crate::proxy::body::{self, PumpError, read_into};
use crate::proxy::fault::Fault;
use crate::proxy::h2::client::{UpstreamStream, open_request};
use crate::proxy::h2::convert::{self, Fields};
use crate::proxy::h2::session::Recv;
use crate::proxy::head::{self, OutFraming, RequestRewrite, ResponseRewrite};
use crate::proxy::upstream::Attempt;
use crate::router::Route;
use crate::worker::timer;

/// Pieces at least this large are written without copying them into the output buffer.
const WRITE_THROUGH: usize = 8 * 1024;

impl<'a> Exchange<'a> {
    /// Forward to an HTTP/2 upstream. An `Upgrade` is not carried (HTTP/2 has none).
    pub(super) async fn forward_to_h2(
        &mut self,
        mut conn: Downstream,
        route: &'a Route,
        attempt: &Attempt,
    ) -> Next {
        let opts = self.opts();
        let req_framing = self.head.framing();
        let has_body = req_framing != BodyFraming::None;
        let rw = RequestRewrite {
            route,
            opts,
            peer: conn.peer,
            framing: OutFraming::AsIs,
            upgrade: None,
            request_id: self.request_id.as_ref(),
            edits: self.chain.request_edits(),
        };
        let Some(up_head) = head::rewrite_request_xfcc(&self.head, &rw, self.xfcc.as_deref())
        else {
            return self.reply_fault(conn, Fault::UpstreamProtocol).await;
        };
        if self.send_continue(&mut conn).await.is_err() {
            return Next::Close;
        }
        let cluster = &attempt.cluster;
        cluster
            .stats()
            .upstream_cx_tx_bytes_total
            .add(up_head.raw().len() as u64);
        let (h2conn, opened) = open_request(cluster, attempt.endpoint, &up_head, !has_body);
        let Ok(up) = opened else {
            return self.reply_fault(conn, Fault::UpstreamReset).await;
        };
        let deadline = route.timeout.map(|t| self.rec.start + t);
        let idle = opts.idle_timeout;
        let Downstream {
            stream,
            mut buf,
            peer,
        } = conn;
        let (mut dr, mut dw) = stream.into_split();
        let mut decoder = BodyDecoder::new(req_framing);
        let mut received = 0u64;
        let progress = Progress::default();
        progress.body_pending.set(has_body);
        let (uploaded, relayed) = {
            let buffered = self.buffered.take();
            let buffered = buffered.as_ref();
            let upload = async {
                let r = match buffered {
                    Some(b) => up.send_buffered(b, idle).await.map_err(|_| PumpError::Sink),
                    None => upload(&mut dr, &mut buf, &mut decoder, &up, idle, &mut received).await,
                };
                // Only a body read to its end frees the connection for another request.
                progress.body_pending.set(r.is_err());
                r
            };
            let relay = self.relay_h2(&up, &mut dw, deadline, &progress);
            let mut upload = std::pin::pin!(upload);
            let mut relay = std::pin::pin!(relay);
            let mut uploaded = None;
            let relayed = loop {
                monoio::select! {
                    r = &mut upload, if uploaded.is_none() => {
                        let client_gone = matches!(r, Err(PumpError::Source(_) | PumpError::Framing));
                        uploaded = Some(r);
                        if client_gone {
                            break Relayed::Broken(ResponseFlags::DC);
                        }
                    }
                    r = &mut relay => break r,
                }
            };
            (uploaded, relayed)
        };
        drop(up);
        self.rec.bytes_received += received;
        cluster.stats().upstream_cx_tx_bytes_total.add(received);
        let Ok(stream) = dr.reunite(dw) else {
            return Next::Close;
        };
        let conn = Downstream { stream, buf, peer };
        let body_done = matches!(uploaded, Some(Ok(()))) || !has_body;
        match relayed {
            Relayed::Done {
                downstream_keep_alive,
                ..
            } => {
                self.rec.completed = true;
                cluster.stats().upstream_rq_completed.inc();
                if downstream_keep_alive && body_done {
                    Next::KeepAlive(conn)
                } else if !body_done {
                    Next::Linger(conn)
                } else {
                    Next::Close
                }
            }
            Relayed::Fault(fault) => {
                let fault = match h2conn.connect_error() {
                    Some(e) => attempt.connect_fault(e),
                    None => {
                        cluster.stats().upstream_rq_rx_reset.inc();
                        fault
                    }
                };
                if matches!(uploaded, Some(Err(PumpError::Framing))) {
                    self.rec.flags |= ResponseFlags::DPE;
                    let reply =
                        crate::proxy::reply::LocalReply::new(400, b"invalid request body\n");
                    return self.reply_local(conn, reply).await;
                }
                self.reply_fault(conn, fault).await
            }
            Relayed::Upgraded => Next::Close,
            Relayed::Broken(flags) => {
                self.rec.flags |= flags;
                if flags.contains(ResponseFlags::UT) {
                    cluster.stats().upstream_rq_timeout.inc();
                }
                if flags.contains(ResponseFlags::DC) {
                    return Next::PeerGone;
                }
                self.ll.http().downstream_rq_tx_reset.inc();
                Next::Close
            }
        }
    }

    /// Relay an HTTP/2 upstream's response to the HTTP/1 client.
    async fn relay_h2<W: AsyncWriteRent>(
        &mut self,
        up: &UpstreamStream,
        down: &mut W,
        deadline: Option<Instant>,
        progress: &Progress,
    ) -> Relayed {
        let idle = self.opts().idle_timeout;
        // Interim responses are not passed on (100 Continue was answered by us).
        let (fields, end) = match up.response_head(idle, deadline).await {
            Ok(head) => head,
            Err(fault) => return Relayed::Fault(fault),
        };
        let status = convert::status_of(&fields);
        self.rec.status = status;
        let down_10 = self.head.version() == Version::Http10;
        let has_length = fields.iter().any(|(n, _)| n.as_ref() == b"content-length");
        let bodiless = self.head.is_head() || status == 204 || status == 304;
        let framing = if end || has_length || bodiless {
            OutFraming::AsIs
        } else if down_10 {
            OutFraming::Close
        } else {
            OutFraming::Chunked
        };
        // As for HTTP/1 upstreams: a response complete while the body is still arriving.
        let answered_early = progress.body_pending.get() && (end || up.is_complete());
        let keep = self.keep_alive_wanted() && framing != OutFraming::Close && !answered_early;
        // A response that ended with its head still needs a length for an HTTP/1 client.
        let zero: &[(&[u8], &[u8])] = if end && !has_length && !bodiless {
            &[(b"content-length", b"0")]
        } else {
            &[]
        };
        let mut out = BytesMut::with_capacity(512);
        head::write_response_fields(
            &mut out,
            status,
            fields
                .iter()
                .map(|(n, v)| (&n[..], &v[..]))
                .chain(zero.iter().copied()),
            &ResponseRewrite {
                edits: self.chain.response_edits(),
                opts: self.opts(),
                framing,
                close: !keep,
                keep_alive_10: keep && down_10,
                upgrade: false,
            },
        );
        self.rec.head_tx += out.len() as u64;
        progress.head_sent.set(true);
        let done = Relayed::Done {
            upstream_reusable: true,
            downstream_keep_alive: keep,
        };
        if end {
            return match body::flush_out(down, &mut out).await {
                Ok(()) => done,
                Err(_) => Relayed::Broken(ResponseFlags::DC),
            };
        }
        let chunked = framing == OutFraming::Chunked;
        loop {
            match up.recv(idle).await {
                Recv::Data(d) => {
                    let n = d.len();
                    let written = if chunked {
                        encode::chunk_head(&mut out, n);
                        out.extend_from_slice(&d);
                        out.extend_from_slice(encode::CHUNK_END);
                        body::flush_out(down, &mut out).await
                    } else if n >= WRITE_THROUGH {
                        match body::flush_out(down, &mut out).await {
                            Ok(()) => body::write_bytes(down, d).await,
                            Err(e) => Err(e),
                        }
                    } else {
                        out.extend_from_slice(&d);
                        body::flush_out(down, &mut out).await
                    };
                    if written.is_err() {
                        return Relayed::Broken(ResponseFlags::DC);
                    }
                    up.release(n);
                    self.rec.bytes_sent += n as u64;
                    self.rec.up_rx += n as u64;
                }
                Recv::Trailers(t) => {
                    if chunked {
                        out.extend_from_slice(b"0\r\n");
                        convert::write_trailers(&t, &mut out);
                        out.extend_from_slice(b"\r\n");
                    }
                    return match body::flush_out(down, &mut out).await {
                        Ok(()) => done,
                        Err(_) => Relayed::Broken(ResponseFlags::DC),
                    };
                }
                Recv::End => {
                    if chunked {
                        out.extend_from_slice(encode::LAST_CHUNK);
                    }
                    return match body::flush_out(down, &mut out).await {
                        Ok(()) => done,
                        Err(_) => Relayed::Broken(ResponseFlags::DC),
                    };
                }
                Recv::Head(..) => return Relayed::Broken(ResponseFlags::UPE),
                Recv::Gone => return Relayed::Broken(ResponseFlags::UC),
            }
        }
    }
}

/// Decode the HTTP/1 request body (what is buffered, then what arrives) into DATA frames.
async fn upload<R: AsyncReadRent>(
    dr: &mut R,
    buf: &mut BytesMut,
    decoder: &mut BodyDecoder,
    up: &UpstreamStream,
    idle: Duration,
    received: &mut u64,
) -> Result<(), PumpError> {
    if decoder.is_done() {
        return Ok(());
    }
    let sink = |_| PumpError::Sink;
    loop {
        match decoder.decode(buf).map_err(|_| PumpError::Framing)? {
            BodyEvent::Data(d) => {
                *received += d.len() as u64;
                up.send_data(d, false, idle).await.map_err(sink)?;
            }
            BodyEvent::Trailers(block) => {
                let mut fields = Fields::new();
                convert::trailer_fields(&block, &mut fields);
                let _ = decoder.decode(buf);
                return up.send_trailers(&fields).map_err(sink);
            }
            BodyEvent::End => return up.send_data(Bytes::new(), true, idle).await.map_err(sink),
            BodyEvent::NeedMore => {
                let deadline = timer::coarse_now() + idle;
                match read_into(dr, buf, Some(deadline)).await {
                    Ok(0) => decoder.eof().map_err(|_| PumpError::Framing)?,
                    Ok(_) => {}
                    Err(e) => return Err(PumpError::Source(e.kind())),
                }
            }
        }
    }
}
