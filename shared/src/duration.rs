//! One grammar for durations, wherever a person writes one (`sync --timeout`, the webhook's
//! configuration and flags): Go's `time.ParseDuration`, which Kubernetes users already write
//! (`1m30s`, `1.5h`, `500ms`, `2h45m`), plus a bare number of seconds (`90`), which `--timeout`
//! always took.

use std::time::Duration;

/// Why a text is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a duration: {text:?} ({reason}; write e.g. 90s, 1m30s, 1.5h or 500ms)")]
pub struct DurationError {
    /// The text as given.
    pub text: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Nanoseconds per unit, longest unit names first so `ms` is not read as `m`.
const UNITS: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("μs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Parses `text` (see the module doc). Negative durations are refused: nothing here waits for
/// less than nothing.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let fail = |reason| DurationError {
        text: text.to_owned(),
        reason,
    };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(fail("it is empty"));
    }
    if trimmed.starts_with('-') {
        return Err(fail("it is negative"));
    }
    let body = trimmed.strip_prefix('+').unwrap_or(trimmed);
    if body.bytes().all(|b| b.is_ascii_digit()) {
        let seconds: u64 = body.parse().map_err(|_| fail("it is too long"))?;
        return Ok(Duration::from_secs(seconds));
    }
    let mut rest = body;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| fail("a number has no unit"))?;
        let (number, after) = rest.split_at(number_end);
        if number.is_empty() || number == "." {
            return Err(fail(
                "a number is missing before a unit, or the text is not a number",
            ));
        }
        if number.matches('.').count() > 1 {
            return Err(fail("a number is malformed"));
        }
        let (unit, per_unit) = UNITS
            .iter()
            .filter(|(name, _)| after.starts_with(name))
            .max_by_key(|(name, _)| name.len())
            .ok_or_else(|| fail("an unknown unit (use ns, us, ms, s, m or h)"))?;
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| fail("it is too long"))?
        };
        let mut nanos = whole
            .checked_mul(*per_unit)
            .ok_or_else(|| fail("it is too long"))?;
        // The fraction, digit by digit, in units of the unit.
        let mut scale = *per_unit;
        for digit in fraction.bytes() {
            scale /= 10;
            nanos += u128::from(digit - b'0') * scale;
        }
        total = total
            .checked_add(nanos)
            .ok_or_else(|| fail("it is too long"))?;
        rest = &after[unit.len()..];
    }
    let seconds = u64::try_from(total / 1_000_000_000).map_err(|_| fail("it is too long"))?;
    // The remainder of a division by 10^9 fits in u32.
    let nanos = u32::try_from(total % 1_000_000_000).unwrap_or_default();
    Ok(Duration::new(seconds, nanos))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_go_durations_and_plain_seconds() {
        let ok = |text: &str| parse_duration(text).unwrap();
        assert_eq!(ok("90"), Duration::from_secs(90));
        assert_eq!(ok("90s"), Duration::from_secs(90));
        assert_eq!(ok("1m30s"), Duration::from_secs(90));
        assert_eq!(ok("5m"), Duration::from_secs(300));
        assert_eq!(ok("2h45m"), Duration::from_secs(9_900));
        assert_eq!(ok("1.5h"), Duration::from_secs(5_400));
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("1s500ms"), Duration::from_millis(1_500));
        assert_eq!(ok(".5s"), Duration::from_millis(500));
        assert_eq!(ok("10us"), Duration::from_micros(10));
        assert_eq!(ok("10µs"), Duration::from_micros(10));
        assert_eq!(ok("7ns"), Duration::from_nanos(7));
        assert_eq!(ok(" 4s "), Duration::from_secs(4));
    }

    #[test]
    fn refuses_what_is_not_a_duration_and_says_why() {
        let why = |text: &str| parse_duration(text).unwrap_err().reason;
        assert_eq!(why(""), "it is empty");
        assert_eq!(why("-5s"), "it is negative");
        assert_eq!(why("5x"), "an unknown unit (use ns, us, ms, s, m or h)");
        assert_eq!(why("5m3"), "a number has no unit");
        assert_eq!(
            why("s"),
            "a number is missing before a unit, or the text is not a number"
        );
        assert_eq!(
            why("soon"),
            "a number is missing before a unit, or the text is not a number"
        );
        assert_eq!(why("1.2.3s"), "a number is malformed");
        assert_eq!(why("99999999999999999999999h"), "it is too long");
        assert_eq!(
            parse_duration("5x").unwrap_err().to_string(),
            "not a duration: \"5x\" (an unknown unit (use ns, us, ms, s, m or h); write e.g. 90s, 1m30s, 1.5h or 500ms)"
        );
    }
}
