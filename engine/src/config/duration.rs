//! Durations as written in the config file: a decimal number and a unit, `"250ms"`, `"5s"`,
//! `"1.5s"`, `"1m"`, `"1h"`, `"0s"`.
//!
//! Owns only the text -> [`Duration`] conversion (exact integer arithmetic, no floats). It does
//! not know which fields are durations or what bounds they have; that is `validate`'s job.
//! Units: `us`, `ms`, `s`, `m`, `h`. No sign, no spaces, no compound forms like `"1m30s"`.

use std::time::Duration;

const NANOS_PER_UNIT: [(&str, u128); 5] = [
    ("us", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Parses `"<number><unit>"` where number is `123` or `1.5` and unit is `us|ms|s|m|h`.
///
/// Fractions below one nanosecond are truncated. The reason in the error is meant for the
/// config error message (`invalid duration "5 s": ...`).
pub fn parse(s: &str) -> Result<Duration, &'static str> {
    if s.is_empty() {
        return Err("empty duration");
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or("missing unit (one of us, ms, s, m, h)")?;
    let (number, unit) = s.split_at(split);
    let per_unit = NANOS_PER_UNIT
        .iter()
        .find(|(name, _)| *name == unit)
        .map(|&(_, nanos)| nanos)
        .ok_or("unknown unit (one of us, ms, s, m, h)")?;
    let (int_part, frac_part) = match number.split_once('.') {
        Some((i, f)) => (i, f),
        None => (number, ""),
    };
    if int_part.is_empty() || (number.contains('.') && frac_part.is_empty()) {
        return Err("expected a number before the unit");
    }
    if frac_part.contains('.') {
        return Err("expected a number before the unit");
    }
    let int: u128 = int_part.parse().map_err(|_| "number too large")?;
    let mut nanos = int.checked_mul(per_unit).ok_or("duration too large")?;
    // Fraction: digits d1 d2 ... contribute per_unit * d_i / 10^i; computed exactly then truncated.
    let mut scale: u128 = 1;
    let mut frac: u128 = 0;
    for digit in frac_part.bytes().take(18) {
        scale *= 10;
        frac = frac * 10 + u128::from(digit - b'0');
    }
    nanos = nanos
        .checked_add(frac * per_unit / scale)
        .ok_or("duration too large")?;
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| "duration too large")?;
    // The remainder is < 10^9 and fits in u32.
    let sub = (nanos % 1_000_000_000) as u32;
    Ok(Duration::new(secs, sub))
}

/// Formats a duration the way the config accepts it (`"1.5s"`, `"250ms"`), for dumps and docs.
pub fn format(d: Duration) -> String {
    let nanos = d.as_nanos();
    for &(unit, per) in NANOS_PER_UNIT.iter().rev() {
        if nanos >= per && nanos.is_multiple_of(per) {
            return format!("{}{unit}", nanos / per);
        }
    }
    if nanos == 0 {
        return "0s".to_owned();
    }
    format!("{}us", nanos / 1_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
        assert_eq!(parse("10us"), Ok(Duration::from_micros(10)));
    }

    #[test]
    fn parses_fractions_exactly() {
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("0.25m"), Ok(Duration::from_secs(15)));
        assert_eq!(parse("0.001s"), Ok(Duration::from_millis(1)));
        assert_eq!(parse("2.5ms"), Ok(Duration::from_micros(2500)));
        assert_eq!(parse("1.0000000001s"), Ok(Duration::from_secs(1)));
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            "", "5", "s", "5 s", " 5s", "5sec", "-1s", "1.s", ".5s", "1.2.3s", "5S", "1m30s",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert_eq!(
            parse("99999999999999999999999999999999999999999h"),
            Err("number too large")
        );
        assert_eq!(parse("999999999999999999999h"), Err("duration too large"));
    }

    #[test]
    fn format_round_trips() {
        for s in ["250ms", "5s", "1m", "1h", "0s", "1500ms", "7us"] {
            let d = parse(s).unwrap();
            assert_eq!(parse(&format(d)), Ok(d));
        }
        assert_eq!(format(Duration::from_secs(120)), "2m");
    }
}
