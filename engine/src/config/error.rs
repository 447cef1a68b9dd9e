//! Config errors with file:line:column.
#[derive(Debug)]
pub struct ConfigError;
