//! `since`/`until` query values: unix seconds with optional fractional nanoseconds
//! (`1700000000`, `1700000000.123456789`, what the docker CLI sends) or RFC 3339.

use chrono::{DateTime, Utc};

use crate::error::ApiError;
use crate::stream::Timestamp;

/// Parses one `since`/`until` value; `key` names the parameter in the error.
pub fn parse_timestamp(key: &str, value: &str) -> Result<Timestamp, ApiError> {
    let v = value.trim();
    let bad = || {
        ApiError::invalid_argument(format!(
            "invalid value for '{key}': {value:?}; use unix seconds (1700000000.5) or RFC 3339 (2026-12-06T03:00:00Z)"
        ))
    };
    if let Some(t) = parse_unix(v) {
        return t.ok_or_else(bad);
    }
    DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| bad())
}

/// `Some(None)`: looks like a number but is out of range or malformed.
fn parse_unix(v: &str) -> Option<Option<Timestamp>> {
    let (secs, frac) = match v.split_once('.') {
        Some((s, f)) => (s, f),
        None => (v, ""),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let unsigned = secs.strip_prefix('-').unwrap_or(secs);
    if !digits(unsigned) || (!frac.is_empty() && !digits(frac)) {
        return None;
    }
    let Ok(secs) = secs.parse::<i64>() else {
        return Some(None);
    };
    if frac.len() > 9 {
        return Some(None);
    }
    let nanos = if frac.is_empty() {
        0
    } else {
        // "5" -> 500000000
        format!("{frac:0<9}").parse::<u32>().unwrap_or(0)
    };
    Some(DateTime::from_timestamp(secs, nanos))
}

/// An optional query timestamp; absent or empty is `None`.
pub fn query_timestamp(q: &crate::query::Query, key: &str) -> Result<Option<Timestamp>, ApiError> {
    q.non_empty(key)
        .map(|v| parse_timestamp(key, v))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_unix_seconds_fractions_and_rfc3339() {
        let t = parse_timestamp("since", "1700000000").unwrap();
        assert_eq!(t.timestamp(), 1_700_000_000);
        assert_eq!(t.timestamp_subsec_nanos(), 0);
        let t = parse_timestamp("since", "1700000000.5").unwrap();
        assert_eq!(t.timestamp_subsec_nanos(), 500_000_000);
        let t = parse_timestamp("since", "1700000000.000000001").unwrap();
        assert_eq!(t.timestamp_subsec_nanos(), 1);
        let t = parse_timestamp("until", "2026-12-06T03:00:00.25+01:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-12-06T02:00:00.250+00:00");
        assert_eq!(parse_timestamp("since", "0").unwrap().timestamp(), 0);
        for bad in ["", "abc", "1.2.3", "1700000000.1234567891", "12:00", "1e9"] {
            let e = parse_timestamp("since", bad).unwrap_err();
            assert_eq!(e.status().as_u16(), 400, "{bad}");
            assert!(e.message.contains("'since'"), "{}", e.message);
        }
    }
}
