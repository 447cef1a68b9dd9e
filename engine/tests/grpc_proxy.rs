//! gRPC through ringway, end to end on loopback: a tonic client -> ringway (h2c listener) ->
//! a tonic server (h2c upstream, cluster `protocol = "http2"`).
//!
//! No protoc and no generated code: the messages are hand-written prost structs and the service
//! is a hand-written `tower::Service` that dispatches on the path the way tonic's generated
//! servers do (`tonic::server::Grpc` with `ProstCodec`); the client drives
//! `tonic::client::Grpc` with `ProstCodec` over a `tonic::transport::Channel`.
//!
//! The backend is served with hyper's HTTP/2 server directly rather than tonic's `Server`, so
//! it does not enforce `grpc-timeout` itself: a DEADLINE_EXCEEDED the client sees comes from
//! ringway.
// reason: tonic's API fixes `Result<_, tonic::Status>`, a large error type.
#![allow(clippy::result_large_err)]

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use http::uri::PathAndQuery;
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::Proxy;
use tonic::body::Body as GrpcBody;
use tonic::codec::{ProstCodec, Streaming};
use tonic::codegen::{BoxFuture, Service};
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};

/// Largest message either side accepts: room for the 4 MiB payloads plus protobuf framing.
const MAX_MESSAGE: usize = 16 << 20;

/// Bound for every call, so a stuck proxy fails the test instead of hanging it.
const CALL_LIMIT: Duration = Duration::from_secs(60);

/// The one message type of the test service.
#[derive(Clone, PartialEq, prost::Message)]
struct Msg {
    /// Free text, echoed back.
    #[prost(string, tag = "1")]
    text: String,
    /// A sequence number; for `ServerStream`, how many replies to send.
    #[prost(uint32, tag = "2")]
    seq: u32,
    /// Opaque bytes, echoed back (the large-message case).
    #[prost(bytes = "vec", tag = "3")]
    blob: Vec<u8>,
}

fn msg(text: &str, seq: u32) -> Msg {
    Msg {
        text: text.to_owned(),
        seq,
        blob: Vec::new(),
    }
}

// ---- the server ----

/// `/test.Echo/Unary`: echoes the message; the request header `x-req` comes back as the
/// response header `x-req-echo`. `/test.Echo/Fail` answers NOT_FOUND "x".
/// `/test.Echo/Sleep` answers after 5 s.
struct Unary;

impl tonic::server::UnaryService<Msg> for Unary {
    type Response = Msg;
    type Future = BoxFuture<Response<Msg>, Status>;

    fn call(&mut self, req: Request<Msg>) -> Self::Future {
        Box::pin(async move {
            let echo = req.metadata().get("x-req").cloned();
            let mut resp = Response::new(req.into_inner());
            if let Some(v) = echo {
                resp.metadata_mut().insert("x-req-echo", v);
            }
            Ok(resp)
        })
    }
}

struct Fail;

impl tonic::server::UnaryService<Msg> for Fail {
    type Response = Msg;
    type Future = BoxFuture<Response<Msg>, Status>;

    fn call(&mut self, _req: Request<Msg>) -> Self::Future {
        Box::pin(async { Err(Status::not_found("x")) })
    }
}

struct Sleep;

impl tonic::server::UnaryService<Msg> for Sleep {
    type Response = Msg;
    type Future = BoxFuture<Response<Msg>, Status>;

    fn call(&mut self, req: Request<Msg>) -> Self::Future {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(Response::new(req.into_inner()))
        })
    }
}

type MsgStream = Pin<Box<dyn Stream<Item = Result<Msg, Status>> + Send + 'static>>;

/// `/test.Echo/ServerStream`: `seq` replies numbered 0.., each with the request's text.
struct ServerStream;

impl tonic::server::ServerStreamingService<Msg> for ServerStream {
    type Response = Msg;
    type ResponseStream = MsgStream;
    type Future = BoxFuture<Response<MsgStream>, Status>;

    fn call(&mut self, req: Request<Msg>) -> Self::Future {
        Box::pin(async move {
            let Msg { text, seq, .. } = req.into_inner();
            let replies = futures_util::stream::iter(0..seq).map(move |i| Ok(msg(&text, i)));
            Ok(Response::new(Box::pin(replies) as MsgStream))
        })
    }
}

/// `/test.Echo/ClientStream`: one reply after the client's last message: `seq` is how many
/// came, `text` their texts joined.
struct ClientStream;

impl tonic::server::ClientStreamingService<Msg> for ClientStream {
    type Response = Msg;
    type Future = BoxFuture<Response<Msg>, Status>;

    fn call(&mut self, req: Request<Streaming<Msg>>) -> Self::Future {
        Box::pin(async move {
            let mut stream = req.into_inner();
            let mut count = 0;
            let mut text = String::new();
            while let Some(m) = stream.message().await? {
                count += 1;
                text.push_str(&m.text);
            }
            Ok(Response::new(msg(&text, count)))
        })
    }
}

/// `/test.Echo/Bidi`: one reply per message, as each arrives: `seq + 1`, same text.
struct Bidi;

impl tonic::server::StreamingService<Msg> for Bidi {
    type Response = Msg;
    type ResponseStream = MsgStream;
    type Future = BoxFuture<Response<MsgStream>, Status>;

    fn call(&mut self, req: Request<Streaming<Msg>>) -> Self::Future {
        Box::pin(async move {
            let replies = req.into_inner().map(|m| m.map(|m| msg(&m.text, m.seq + 1)));
            Ok(Response::new(Box::pin(replies) as MsgStream))
        })
    }
}

/// The service, as tonic's generated code would write it: route by path, run the method with
/// a `tonic::server::Grpc`, answer unknown methods with UNIMPLEMENTED. Every response gets the
/// trailer `x-trailer: done` next to grpc-status.
#[derive(Clone)]
struct EchoService;

impl Service<http::Request<GrpcBody>> for EchoService {
    type Response = http::Response<GrpcBody>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<GrpcBody>) -> Self::Future {
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(ProstCodec::<Msg, Msg>::default())
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE);
            let resp = match req.uri().path() {
                "/test.Echo/Unary" => grpc.unary(Unary, req).await,
                "/test.Echo/Fail" => grpc.unary(Fail, req).await,
                "/test.Echo/Sleep" => grpc.unary(Sleep, req).await,
                "/test.Echo/ServerStream" => grpc.server_streaming(ServerStream, req).await,
                "/test.Echo/ClientStream" => grpc.client_streaming(ClientStream, req).await,
                "/test.Echo/Bidi" => grpc.streaming(Bidi, req).await,
                _ => Status::unimplemented("no such method").into_http(),
            };
            Ok(resp.map(|body| {
                GrpcBody::new(body.map_frame(|frame| match frame.into_trailers() {
                    Ok(mut trailers) => {
                        trailers.insert("x-trailer", http::HeaderValue::from_static("done"));
                        hyper::body::Frame::trailers(trailers)
                    }
                    Err(frame) => frame,
                }))
            }))
        })
    }
}

/// The tonic server on 127.0.0.1:0, HTTP/2 only (h2c with prior knowledge). Stopped on drop.
struct GrpcBackend {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl GrpcBackend {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind backend");
        let addr = listener.local_addr().expect("backend address");
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(async move {
                    let svc =
                        hyper::service::service_fn(|req: http::Request<hyper::body::Incoming>| {
                            EchoService.call(req.map(GrpcBody::new))
                        });
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
        Self { addr, task }
    }
}

impl Drop for GrpcBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---- the client ----

/// A client of the test service over one h2c connection.
#[derive(Clone)]
struct EchoClient {
    grpc: tonic::client::Grpc<Channel>,
}

fn codec() -> ProstCodec<Msg, Msg> {
    ProstCodec::default()
}

fn path(method: &str) -> PathAndQuery {
    format!("/test.Echo/{method}").parse().expect("path")
}

impl EchoClient {
    async fn connect(addr: SocketAddr) -> Self {
        let channel = Channel::from_shared(format!("http://{addr}"))
            .expect("uri")
            .connect_timeout(Duration::from_secs(10))
            .connect()
            .await
            .expect("connect");
        let grpc = tonic::client::Grpc::new(channel)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        Self { grpc }
    }

    async fn unary(&mut self, method: &str, req: Request<Msg>) -> Result<Response<Msg>, Status> {
        let call = async {
            self.grpc
                .ready()
                .await
                .map_err(|e| Status::unknown(e.to_string()))?;
            self.grpc.unary(req, path(method), codec()).await
        };
        tokio::time::timeout(CALL_LIMIT, call)
            .await
            .expect("call finished in time")
    }

    async fn server_stream(&mut self, req: Msg) -> Result<Response<Streaming<Msg>>, Status> {
        let call = async {
            self.grpc
                .ready()
                .await
                .map_err(|e| Status::unknown(e.to_string()))?;
            self.grpc
                .server_streaming(Request::new(req), path("ServerStream"), codec())
                .await
        };
        tokio::time::timeout(CALL_LIMIT, call)
            .await
            .expect("call finished in time")
    }

    async fn client_stream(
        &mut self,
        reqs: impl Stream<Item = Msg> + Send + 'static,
    ) -> Result<Response<Msg>, Status> {
        let call = async {
            self.grpc
                .ready()
                .await
                .map_err(|e| Status::unknown(e.to_string()))?;
            self.grpc
                .client_streaming(Request::new(reqs), path("ClientStream"), codec())
                .await
        };
        tokio::time::timeout(CALL_LIMIT, call)
            .await
            .expect("call finished in time")
    }

    async fn bidi(
        &mut self,
        reqs: impl Stream<Item = Msg> + Send + 'static,
    ) -> Result<Response<Streaming<Msg>>, Status> {
        let call = async {
            self.grpc
                .ready()
                .await
                .map_err(|e| Status::unknown(e.to_string()))?;
            self.grpc
                .streaming(Request::new(reqs), path("Bidi"), codec())
                .await
        };
        tokio::time::timeout(CALL_LIMIT, call)
            .await
            .expect("call finished in time")
    }
}

/// The next message of a response stream, bounded in time.
async fn next(stream: &mut Streaming<Msg>) -> Result<Option<Msg>, Status> {
    tokio::time::timeout(CALL_LIMIT, stream.message())
        .await
        .expect("message in time")
}

// ---- ringway ----

/// One h2c listener routing `/test.*` to the gRPC backend over HTTP/2 and `/down.*` to a
/// cluster whose endpoint refuses connections; anything else has no route.
fn config(backend: SocketAddr, closed: SocketAddr) -> String {
    format!(
        r#"
[[listeners]]
name = "grpc"
address = "127.0.0.1:0"
  [[listeners.virtual_hosts]]
  name = "all"
  domains = ["*"]
    [[listeners.virtual_hosts.routes]]
    prefix = "/down."
    cluster = "down"
    [[listeners.virtual_hosts.routes]]
    prefix = "/test."
    cluster = "grpc"

[[clusters]]
name = "grpc"
protocol = "http2"
endpoints = ["{backend}"]

[[clusters]]
name = "down"
protocol = "http2"
endpoints = ["{closed}"]
"#
    )
}

/// A loopback port that refuses connections: bound but never listening, so the kernel answers
/// a SYN with RST, and held (not closed) so no other test can take the port meanwhile.
fn refusing_port() -> (socket2::Socket, SocketAddr) {
    let sock =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    let any: SocketAddr = "127.0.0.1:0".parse().expect("address");
    sock.bind(&any.into()).expect("bind");
    let addr = sock
        .local_addr()
        .expect("address")
        .as_socket()
        .expect("inet");
    (sock, addr)
}

/// The backend, ringway in front of it, and a client connected to ringway.
struct Setup {
    client: EchoClient,
    proxy: Proxy,
    _backend: GrpcBackend,
    _refusing: socket2::Socket,
}

async fn through_ringway() -> Setup {
    let backend = GrpcBackend::start().await;
    let (refusing, down) = refusing_port();
    let proxy = Proxy::start(&config(backend.addr, down));
    let client = EchoClient::connect(proxy.addr()).await;
    Setup {
        client,
        proxy,
        _backend: backend,
        _refusing: refusing,
    }
}

// ---- cases ----

/// The harness alone, client straight to the backend: if this fails, the other failures are
/// not ringway's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harness_works_without_the_proxy() {
    let backend = GrpcBackend::start().await;
    let mut client = EchoClient::connect(backend.addr).await;
    let resp = client
        .unary("Unary", Request::new(msg("direct", 7)))
        .await
        .unwrap();
    assert_eq!(resp.get_ref(), &msg("direct", 7));
    let err = client
        .unary("Fail", Request::new(msg("", 0)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = client
        .unary("Nope", Request::new(msg("", 0)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unary() {
    let mut s = through_ringway().await;
    for i in 0..20 {
        let resp = s
            .client
            .unary("Unary", Request::new(msg("hello", i)))
            .await
            .unwrap();
        assert_eq!(resp.get_ref(), &msg("hello", i));
    }
    // One client connection, so one worker and one multiplexed HTTP/2 upstream connection.
    let p = &s.proxy;
    p.eventually("20 gRPC successes counted", |p| {
        p.stat("http.grpc.grpc_success") == 20
    });
    assert_eq!(p.stat("http.grpc.grpc_status_ok"), 20);
    assert_eq!(p.stat("cluster.grpc.upstream_rq_total"), 20);
    assert_eq!(p.stat("cluster.grpc.upstream_cx_http2_total"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_streaming_delivers_every_message_then_the_trailers() {
    let mut s = through_ringway().await;
    let mut stream = s
        .client
        .server_stream(msg("many", 1000))
        .await
        .unwrap()
        .into_inner();
    for i in 0..1000 {
        let m = next(&mut stream).await.unwrap().expect("a message");
        assert_eq!(m, msg("many", i));
    }
    assert_eq!(
        next(&mut stream).await.unwrap(),
        None,
        "grpc-status 0 ends it"
    );
    let trailers = stream.trailers().await.unwrap().expect("trailers");
    assert_eq!(trailers.get("x-trailer").unwrap(), "done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_streaming() {
    let mut s = through_ringway().await;
    let reqs = futures_util::stream::iter(0..100).map(|i| msg(&format!("{i},"), i));
    let resp = s.client.client_stream(reqs).await.unwrap().into_inner();
    assert_eq!(resp.seq, 100);
    let want: String = (0..100).map(|i| format!("{i},")).collect();
    assert_eq!(resp.text, want);
}

/// Ping-pong: each message is sent only after the reply to the previous one came back, so
/// the exchange can only finish if neither direction is buffered until the end of the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bidi_streaming_is_not_buffered() {
    let mut s = through_ringway().await;
    let (tx, rx) = tokio::sync::mpsc::channel::<Msg>(1);
    let reqs =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
    tx.send(msg("ping", 0)).await.unwrap();
    let mut replies = s.client.bidi(reqs).await.unwrap().into_inner();
    for i in 0..50u32 {
        let reply = next(&mut replies).await.unwrap().expect("a reply");
        assert_eq!(reply, msg("ping", 2 * i + 1));
        if i < 49 {
            tx.send(msg("ping", 2 * i + 2)).await.unwrap();
        }
    }
    drop(tx);
    assert_eq!(next(&mut replies).await.unwrap(), None);
}

/// The client sends `grpc-timeout: 200m` and the method sleeps 5 s: ringway's route timer
/// ends the call with DEADLINE_EXCEEDED. The call goes through tonic's client over hyper's
/// HTTP/2 client rather than tonic's `Channel`, which runs its own timer from the same header
/// and would report CANCELLED at about the same moment: this way only ringway keeps time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_exceeded() {
    let s = through_ringway().await;
    let transport = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<GrpcBody>();
    let origin: http::Uri = format!("http://{}", s.proxy.addr()).parse().unwrap();
    let mut grpc = tonic::client::Grpc::with_origin(transport, origin);
    let mut req = Request::new(msg("slow", 0));
    req.set_timeout(Duration::from_millis(200));
    let call = async {
        grpc.ready().await.unwrap();
        grpc.unary(req, path("Sleep"), codec()).await
    };
    let err = tokio::time::timeout(CALL_LIMIT, call)
        .await
        .expect("call finished in time")
        .unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    s.proxy.eventually("the deadline counted", |p| {
        p.stat("http.grpc.grpc_status_deadline_exceeded") == 1
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_status_propagates() {
    let mut s = through_ringway().await;
    let err = s
        .client
        .unary("Fail", Request::new(msg("", 0)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(err.message(), "x");
    let err = s
        .client
        .unary("NoSuchMethod", Request::new(msg("", 0)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented, "the backend's own answer");
    s.proxy.eventually("two failures counted", |p| {
        p.stat("http.grpc.grpc_failure") == 2
    });
    assert_eq!(s.proxy.stat("http.grpc.grpc_status_not_found"), 1);
    assert_eq!(s.proxy.stat("http.grpc.grpc_status_unimplemented"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_both_ways() {
    let mut s = through_ringway().await;
    let mut req = Request::new(msg("meta", 1));
    req.metadata_mut()
        .insert("x-req", MetadataValue::from_static("from-client"));
    let resp = s.client.unary("Unary", req).await.unwrap();
    assert_eq!(resp.metadata().get("x-req-echo").unwrap(), "from-client");
    // Unary responses merge the trailers into the metadata; a stream keeps them apart.
    assert_eq!(resp.metadata().get("x-trailer").unwrap(), "done");
    let mut stream = s.client.server_stream(msg("t", 1)).await.unwrap();
    assert!(stream.metadata().get("x-trailer").is_none(), "not a header");
    let stream = stream.get_mut();
    assert_eq!(next(stream).await.unwrap(), Some(msg("t", 0)));
    assert_eq!(next(stream).await.unwrap(), None);
    let trailers = stream.trailers().await.unwrap().expect("trailers");
    assert_eq!(trailers.get("x-trailer").unwrap(), "done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_messages_both_ways() {
    let mut s = through_ringway().await;
    let blob: Vec<u8> = (0..4usize << 20).map(|i| (i * 31 % 251) as u8).collect();
    let req = Msg {
        text: "big".to_owned(),
        seq: 4,
        blob: blob.clone(),
    };
    let resp = s.client.unary("Unary", Request::new(req)).await.unwrap();
    let got = resp.into_inner();
    assert_eq!(got.blob.len(), blob.len());
    assert!(got.blob == blob, "blob corrupted");
}

/// A gRPC call made by hand over hyper's HTTP/2 client, to see the wire answer rather than
/// what a gRPC client makes of it (tonic maps a plain 404 to UNIMPLEMENTED and a 503 to
/// UNAVAILABLE too). Returns the response head and whether a body or trailers followed.
async fn raw_call(addr: SocketAddr, path: &str) -> (http::response::Parts, bool) {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake(TokioIo::new(tcp))
        .await
        .expect("h2 handshake");
    tokio::spawn(conn);
    let mut body = bytes::BytesMut::new();
    protocols::grpc::Message::new(false, bytes::Bytes::new())
        .encode(&mut body)
        .expect("encode");
    let req = http::Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-timeout", "30S")
        .body(support::body(body.freeze()))
        .expect("request");
    let call = async {
        let resp = send.send_request(req).await.expect("response");
        let (parts, body) = resp.into_parts();
        let collected = body.collect().await.expect("body");
        let more = collected.trailers().is_some() || !collected.to_bytes().is_empty();
        (parts, more)
    };
    tokio::time::timeout(CALL_LIMIT, call)
        .await
        .expect("answer in time")
}

/// Asserts a trailers-only gRPC answer: HTTP 200, `content-type: application/grpc`, the
/// status in the HEADERS frame, nothing after it.
fn assert_trailers_only(parts: &http::response::Parts, more: bool, code: protocols::grpc::Code) {
    assert_eq!(parts.status, 200, "{parts:?}");
    let ct = parts.headers.get("content-type").expect("content-type");
    assert!(
        protocols::grpc::is_grpc_content_type(ct.as_bytes()),
        "{parts:?}"
    );
    let status = parts.headers.get("grpc-status").expect("grpc-status");
    assert_eq!(status.as_bytes(), code.as_header_value(), "{parts:?}");
    assert!(!more, "trailers-only: no DATA and no second HEADERS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_down_is_unavailable() {
    let mut s = through_ringway().await;
    let call = async {
        s.client.grpc.ready().await.unwrap();
        s.client
            .grpc
            .unary(
                Request::new(msg("", 0)),
                "/down.Svc/Call".parse().unwrap(),
                codec(),
            )
            .await
    };
    let err = tokio::time::timeout(CALL_LIMIT, call)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    let (parts, more) = raw_call(s.proxy.addr(), "/down.Svc/Call").await;
    assert_trailers_only(&parts, more, protocols::grpc::Code::Unavailable);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_route_is_unimplemented() {
    let mut s = through_ringway().await;
    let call = async {
        s.client.grpc.ready().await.unwrap();
        s.client
            .grpc
            .unary(
                Request::new(msg("", 0)),
                "/other.Svc/Call".parse().unwrap(),
                codec(),
            )
            .await
    };
    let err = tokio::time::timeout(CALL_LIMIT, call)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented, "{err:?}");
    let (parts, more) = raw_call(s.proxy.addr(), "/other.Svc/Call").await;
    assert_trailers_only(&parts, more, protocols::grpc::Code::Unimplemented);
}
