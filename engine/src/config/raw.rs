//! serde layer of the config.
#[derive(Debug)]
pub struct RawConfig;
