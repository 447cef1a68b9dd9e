//! Access log.
