//! One HTTP/2 stream of a client connection: what its requests share ([`ConnCtx`]), and the
//! task that serves one through the exchange ([`crate::proxy::exchange::handle_stream`]) and
//! settles the stream after it.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use protocols::http2::frame::Reason;

use super::convert::Fields;
use crate::codec::h2::session::{Session, StreamSlot};
use crate::shared::ListenerShared;
use crate::stats::HttpStats;
use crate::worker::Worker;

/// What the stream tasks of one connection share .
pub(crate) struct ConnCtx {
    pub(crate) worker: Rc<Worker>,
    pub(crate) li: usize,
    pub(crate) peer: SocketAddr,
    /// `x-forwarded-client-cert` of the client's verified certificate (mTLS), made once.
    pub(crate) xfcc: Option<Rc<[u8]>>,
    /// The address the client connected to (for PROXY headers sent upstream).
    pub(crate) local_addr: Option<SocketAddr>,
    pub(crate) sess: Rc<Session>,
    pub(crate) listener: Arc<ListenerShared>,
}

impl ConnCtx {
    pub(crate) fn http(&self) -> &HttpStats {
        self.listener.http.stats.core(self.worker.core)
    }
}

/// Serve the request that opened `slot`'s stream, then settle the stream.
pub(super) async fn run(ctx: Rc<ConnCtx>, slot: Rc<StreamSlot>, fields: Fields, end_stream: bool) {
    crate::proxy::exchange::handle_stream(&ctx, &slot, &fields, end_stream).await;
    // An unfinished response is an error; an unfinished request after a complete response
    // is not (RFC 9113 8.1).
    ctx.sess
        .settle(&slot, Reason::INTERNAL_ERROR, Reason::NO_ERROR);
}
