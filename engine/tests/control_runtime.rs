//! The control runtime of a running server: work spawned on it reaches other services (here
//! the admin API, and a hyper backend through ringway's own listener) off the workers, and it
//! stops with the server.

mod support;

use std::time::Duration;

use engine::control::Stopped;
use engine::control::http::{self, Request};
use support::*;

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn control_tasks_talk_to_services_and_stop_with_the_server() {
    let backend = Backend::echo();
    let proxy = Proxy::start(&one_route(backend.addr));
    let control = proxy.handle().control();
    let (admin, listener) = (proxy.admin(), proxy.addr());

    let ready = control
        .call(move || async move { http::request(admin, &Request::get("/ready"), WAIT).await })
        .unwrap()
        .recv_timeout(WAIT)
        .unwrap()
        .unwrap();
    assert_eq!(ready.status, 200);
    assert_eq!(&ready.body[..], b"LIVE\n");

    let req = Request::post("/spans", "application/json", &b"[]"[..]).header("x-trace", "1");
    let echoed = control
        .call(move || async move { http::request(listener, &req, WAIT).await })
        .unwrap()
        .recv_timeout(WAIT)
        .unwrap()
        .unwrap();
    assert_eq!(echoed.status, 200);
    assert_eq!(echoed.header(b"x-echo-method"), Some(&b"POST"[..]));
    assert_eq!(echoed.header(b"x-echo-h-x-trace"), Some(&b"1"[..]));
    assert_eq!(&echoed.body[..], b"[]");

    drop(proxy);
    assert_eq!(control.spawn(|| async {}), Err(Stopped));
}
