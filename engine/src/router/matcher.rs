//! Route matchers.
#[derive(Debug)]
pub(crate) struct RouteMatch;
