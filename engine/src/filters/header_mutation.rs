//! `header_mutation`: Envoy's header mutation filter. Header changes on every request and
//! response of the listener, and on their trailers when they have some.
//!
//! - **Heads**: applied by the codec that writes the head ([`super::Edits`]), so no head is
//!   copied to be changed.
//! - **Trailers**: changed in place in the decode-trailers and encode-trailers phases; a
//!   message without trailers gets none added (as in Envoy).
//! - **Routing**: when some route of the listener matches on a request header this filter
//!   adds or removes (or on `host`), its decode-headers phase clears the route cache and the
//!   route is resolved again with the changes applied (Envoy resolves the route after a
//!   listener-level mutation; ringway resolved it before the filters ran, so it clears it).
//!   Which filters do so is worked out from the route table when the config is loaded
//!   ([`HeaderMutation::affects_routing`]); others cost no second lookup.

use bytes::Bytes;

use super::{FilterState, Flow};
use crate::codec::h2::convert::Fields;
use crate::config::HeaderMutation;
use crate::router::HeaderToAdd;

pub(super) fn decode_headers(m: &HeaderMutation, st: &mut FilterState) -> Flow<'static> {
    if m.affects_routing {
        st.route_dirty = true;
    }
    Flow::Continue
}

pub(super) fn edits_request_trailers(m: &HeaderMutation) -> bool {
    !m.request_trailers_to_add.is_empty() || !m.request_trailers_to_remove.is_empty()
}

pub(super) fn edits_response_trailers(m: &HeaderMutation) -> bool {
    !m.response_trailers_to_add.is_empty() || !m.response_trailers_to_remove.is_empty()
}

pub(super) fn decode_trailers(m: &HeaderMutation, trailers: &mut Fields) -> Flow<'static> {
    edit(
        trailers,
        &m.request_trailers_to_add,
        &m.request_trailers_to_remove,
    );
    Flow::Continue
}

pub(super) fn encode_trailers(m: &HeaderMutation, trailers: &mut Fields) -> Flow<'static> {
    edit(
        trailers,
        &m.response_trailers_to_add,
        &m.response_trailers_to_remove,
    );
    Flow::Continue
}

/// Drop the removed fields and those an add replaces, then append the adds in order.
fn edit(fields: &mut Fields, adds: &[HeaderToAdd], removes: &[Bytes]) {
    if adds.is_empty() && removes.is_empty() {
        return;
    }
    fields.retain(|name, _| {
        !removes.iter().any(|r| r.eq_ignore_ascii_case(name))
            && !adds
                .iter()
                .any(|h| !h.append && h.name.eq_ignore_ascii_case(name))
    });
    for h in adds {
        fields.push(&h.name, &h.value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filters::tests::add;

    fn fields(pairs: &[(&'static str, &'static str)]) -> Fields {
        pairs.iter().copied().collect()
    }

    #[test]
    fn trailers_lose_removed_and_replaced_fields_and_gain_adds_in_order() {
        let m = HeaderMutation {
            response_trailers_to_add: vec![add("x-a", "1", true), add("grpc-message", "ok", false)],
            response_trailers_to_remove: vec![Bytes::from_static(b"x-secret")],
            ..HeaderMutation::default()
        };
        let mut t = fields(&[
            ("grpc-status", "0"),
            ("grpc-message", "fine"),
            ("x-secret", "s"),
            ("x-a", "0"),
        ]);
        assert_eq!(encode_trailers(&m, &mut t), Flow::Continue);
        assert_eq!(
            t,
            fields(&[
                ("grpc-status", "0"),
                ("x-a", "0"),
                ("x-a", "1"),
                ("grpc-message", "ok"),
            ])
        );
        let mut req = fields(&[("x-secret", "s")]);
        decode_trailers(&m, &mut req);
        assert_eq!(
            req,
            fields(&[("x-secret", "s")]),
            "request trailers untouched"
        );
        assert!(edits_response_trailers(&m) && !edits_request_trailers(&m));
    }

    #[test]
    fn only_a_mutation_routes_read_clears_the_route_cache() {
        let mut st = FilterState::default();
        decode_headers(&HeaderMutation::default(), &mut st);
        assert!(!st.route_dirty);
        let m = HeaderMutation {
            affects_routing: true,
            ..HeaderMutation::default()
        };
        decode_headers(&m, &mut st);
        assert!(st.route_dirty);
    }
}
