//! RawConfig -> Config.
