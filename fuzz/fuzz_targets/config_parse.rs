//! Configuration: `engine::config::parse_str` on arbitrary UTF-8 never panics, and a refusal
//! names the file and a line:column that exists in the text.
#![no_main]

use engine::config::{ConfigError, parse_str};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_str(text, "fuzz.toml") {
        Ok(cfg) => {
            let _ = format!("{cfg:?}");
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with("fuzz.toml:"), "errors name the file: {msg}");
            if let ConfigError::Invalid { line, column, .. } = e {
                // Lines split on LF only, as TOML does; a position may sit just past the end.
                let lines: Vec<&str> = text.split('\n').collect();
                assert!(
                    line >= 1 && line <= lines.len(),
                    "line {line} of {}: {msg}",
                    lines.len()
                );
                let width = lines[line - 1].chars().count();
                assert!(
                    column >= 1 && column <= width + 1,
                    "column {column} of {width}: {msg}"
                );
            }
        }
    }
});
