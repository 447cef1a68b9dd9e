//! Durations in config: "250ms", "5s", "1m", "1h".
