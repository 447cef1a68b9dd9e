//! `fault`: Envoy's fault injection filter. A share of requests is delayed (the exchange
//! pauses, then resumes at this filter) and a share is aborted with a status of the operator's
//! choice instead of being forwarded: to test how clients and services behave when a
//! dependency is slow or failing, without touching the dependency.
//!
//! Delays come first, then aborts (a request may get both), as in Envoy. Whether a request is
//! hit is drawn from the worker's random numbers against `delay_percent` / `abort_percent`.
//! A share of responses may be rate limited (Envoy's `response_rate_limit`): in the
//! encode-data phase each piece of the body waits as long as sending it takes at the limit.
//! The filter counts what it did in its log phase, once per exchange
//! (`fault_delays_injected`, `fault_aborts_injected`, `fault_response_rl_injected`).
//! Not here yet: Envoy's header-controlled faults (`x-envoy-fault-*`) and per-route settings.

use std::time::Duration;

use super::{AnswerKind, Done, FilterState, Flow, LocalAnswer, Wait};
use crate::config::FaultConfig;
use crate::rt::rng;
use crate::stats::HttpStats;

/// The body of an injected abort (Envoy's).
const ABORT_BODY: &[u8] = b"fault filter abort";

/// Drawn from the worker's random numbers: `percent` (0..=100) of calls say yes.
pub(super) fn hit(percent: u32) -> bool {
    percent >= 100 || (percent > 0 && rng::below(100) < percent)
}

pub(super) fn decode_headers(cfg: &FaultConfig, st: &mut FilterState) -> Flow<'static> {
    // Decided once, on the first run (a delayed request runs this phase again).
    if cfg.response_rate_limit.is_some()
        && !st.fault_delayed
        && hit(cfg.response_rate_limit_percent)
    {
        st.fault_rate_limit = cfg.response_rate_limit;
    }
    if let (Some(d), false) = (cfg.delay, st.fault_delayed) {
        st.fault_delayed = true;
        if hit(cfg.delay_percent) {
            st.fault_delay_hit = true;
            return Flow::Pause(Wait::Delay(d));
        }
    }
    match cfg.abort_status {
        Some(status) if hit(cfg.abort_percent) => {
            st.fault_aborted = true;
            Flow::Respond(LocalAnswer {
                status,
                body: ABORT_BODY,
                kind: AnswerKind::FaultAbort,
            })
        }
        _ => Flow::Continue,
    }
}

/// Hold each piece of a rate-limited response body as long as sending it takes at the limit:
/// the first run pauses, the run after the pause lets the piece pass.
pub(super) fn encode_data(len: usize, st: &mut FilterState) -> Flow<'static> {
    let Some(rate) = st.fault_rate_limit.filter(|_| len > 0) else {
        return Flow::Continue;
    };
    if std::mem::take(&mut st.fault_rate_paid) {
        return Flow::Continue;
    }
    st.fault_rate_paid = true;
    let nanos = (len as u128 * 1_000_000_000 / u128::from(rate.max(1))) as u64;
    Flow::Pause(Wait::Delay(Duration::from_nanos(nanos)))
}

/// The log phase: count the faults this exchange got.
pub(super) fn log(_done: &Done, stats: &HttpStats, st: &FilterState) {
    if st.fault_delay_hit {
        stats.fault_delays_injected.inc();
    }
    if st.fault_aborted {
        stats.fault_aborts_injected.inc();
    }
    if st.fault_rate_limit.is_some() {
        stats.fault_response_rl_injected.inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(delay: Option<u64>, dp: u32, abort: Option<u16>, ap: u32) -> FaultConfig {
        FaultConfig {
            delay: delay.map(Duration::from_millis),
            delay_percent: dp,
            abort_status: abort,
            abort_percent: ap,
            response_rate_limit: None,
            response_rate_limit_percent: 100,
        }
    }

    #[test]
    fn a_delay_pauses_once_then_the_abort_decides() {
        let c = cfg(Some(50), 100, Some(503), 100);
        let mut st = FilterState::default();
        assert_eq!(
            decode_headers(&c, &mut st),
            Flow::Pause(Wait::Delay(Duration::from_millis(50)))
        );
        match decode_headers(&c, &mut st) {
            Flow::Respond(a) => assert_eq!((a.status, a.kind), (503, AnswerKind::FaultAbort)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_rate_limited_response_waits_once_per_piece_for_its_share_of_the_limit() {
        let c = FaultConfig {
            response_rate_limit: Some(1024),
            ..cfg(None, 0, None, 0)
        };
        let mut st = FilterState::default();
        assert_eq!(decode_headers(&c, &mut st), Flow::Continue);
        assert_eq!(
            encode_data(512, &mut st),
            Flow::Pause(Wait::Delay(Duration::from_millis(500)))
        );
        assert_eq!(encode_data(512, &mut st), Flow::Continue, "paid: passes");
        assert_eq!(encode_data(0, &mut st), Flow::Continue);
        let mut other = FilterState::default();
        decode_headers(&cfg(None, 0, Some(503), 0), &mut other);
        assert_eq!(encode_data(512, &mut other), Flow::Continue, "not limited");
    }

    #[test]
    fn zero_percent_never_hits_and_hundred_always_does() {
        let mut st = FilterState::default();
        assert_eq!(
            decode_headers(&cfg(Some(5), 0, Some(500), 0), &mut st),
            Flow::Continue
        );
        for _ in 0..100 {
            assert!(hit(100));
            assert!(!hit(0));
        }
        let hits = (0..10_000).filter(|_| hit(30)).count();
        assert!((2_000..4_000).contains(&hits), "30% of 10000 drew {hits}");
    }
}
