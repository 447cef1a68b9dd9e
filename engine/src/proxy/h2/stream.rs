//! What the HTTP/2 streams of one client connection share ([`ConnCtx`]). Each stream's task
//! is [`crate::proxy::exchange::handle_stream`]: it serves the request through the exchange
//! and settles the stream after it.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use crate::codec::h2::session::Session;
use crate::local::Worker;
use crate::shared::ListenerShared;
use crate::stats::HttpStats;

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
