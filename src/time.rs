//! Date-time text as EWS, Graph and the command line write it, to and from UTC seconds.
//!
//! Written by hand instead of pulling in a date-time crate: we need exactly one calendar (the
//! proleptic Gregorian), one zone (UTC, plus numeric offsets in the text) and whole seconds.
//! The day arithmetic is Howard Hinnant's `days_from_civil` / `civil_from_days`.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::model::Timestamp;

/// The wall clock in UTC seconds: the one place the product reads it (the core takes time as a
/// parameter).
pub fn wall_clock() -> Timestamp {
    wall_clock_precise().as_secs() as Timestamp
}

/// `30 s`, or `2500 ms` when the duration is not whole seconds (a server's back-off is
/// honoured to the millisecond, so a message must not round it).
pub fn duration_text(d: Duration) -> String {
    if d.as_millis() < 1000 || d.subsec_millis() != 0 {
        format!("{} ms", d.as_millis())
    } else {
        format!("{} s", d.as_secs())
    }
}

/// The wall-clock second from which a wait of `wait` may end when the answer that asked for it
/// arrived at `answered` (wall clock since 1970): rounded up, so that a timer on whole seconds
/// never wakes before the wait is over.
pub fn second_after_wait(answered: Duration, wait: Duration) -> Timestamp {
    let end = answered.saturating_add(wait);
    let secs = end
        .as_secs()
        .saturating_add(u64::from(end.subsec_nanos() > 0));
    Timestamp::try_from(secs).unwrap_or(Timestamp::MAX)
}

/// The wall clock since 1970 with sub-second precision (zero if the clock is before 1970).
pub fn wall_clock_precise() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Why a date-time text could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimeError {
    /// The text does not have the shape `YYYY-MM-DDTHH:MM:SS[.fff][Z|±HH:MM]`.
    Syntax(String),
    /// A field is out of its range (month 13, February 30, hour 24, offset +25:00, …).
    Range(String),
    /// An offset (`Z` or `±HH:MM`) is required here but missing.
    MissingOffset(String),
}

impl fmt::Display for TimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeError::Syntax(s) => write!(
                f,
                "'{s}' is not a date-time of the form 2026-12-01T09:30:00Z or 2026-12-01T10:30:00+01:00"
            ),
            TimeError::Range(s) => write!(f, "'{s}' has a field out of range"),
            TimeError::MissingOffset(s) => {
                write!(f, "'{s}' needs a zone: add Z (UTC) or an offset such as +01:00")
            }
        }
    }
}

impl std::error::Error for TimeError {}

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01: (year, month, day).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Reads a fixed-width run of ASCII digits.
fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let part = b.get(at..at + n)?;
    part.iter().try_fold(0u32, |acc, c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

/// Parses `YYYY-MM-DDTHH:MM:SS`, optional fractional seconds of any length (dropped: we work in
/// whole seconds), and an optional zone (`Z`, `z`, `±HH:MM`, `±HHMM`). Without a zone the time
/// is taken to be at `default_offset_secs` east of UTC (0 for the UTC that EWS and Graph were
/// asked for). `T` may also be `t` or a space, as RFC 3339 allows.
pub fn parse_datetime(text: &str, default_offset_secs: i64) -> Result<Timestamp, TimeError> {
    parse(text, Some(default_offset_secs))
}

/// Parses an RFC 3339 date-time, which must carry a zone (`--at`).
pub fn parse_rfc3339(text: &str) -> Result<Timestamp, TimeError> {
    parse(text, None)
}

fn parse(text: &str, default_offset: Option<i64>) -> Result<Timestamp, TimeError> {
    let syntax = || TimeError::Syntax(text.to_string());
    let range = || TimeError::Range(text.to_string());
    let s = text.trim();
    let b = s.as_bytes();
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(syntax());
    }
    let year = digits(b, 0, 4).ok_or_else(syntax)? as i64;
    let month = digits(b, 5, 2).ok_or_else(syntax)?;
    let day = digits(b, 8, 2).ok_or_else(syntax)?;
    let hour = digits(b, 11, 2).ok_or_else(syntax)?;
    let minute = digits(b, 14, 2).ok_or_else(syntax)?;
    let second = digits(b, 17, 2).ok_or_else(syntax)?;
    let mut i = 19;
    if b.get(i) == Some(&b'.') || b.get(i) == Some(&b',') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return Err(syntax());
        }
    }
    let offset = match b.get(i) {
        None => default_offset.ok_or_else(|| TimeError::MissingOffset(text.to_string()))?,
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) => {
            let rest = &b[i + 1..];
            let (h, m) = match rest.len() {
                5 if rest[2] == b':' => (digits(rest, 0, 2), digits(rest, 3, 2)),
                4 => (digits(rest, 0, 2), digits(rest, 2, 2)),
                _ => return Err(syntax()),
            };
            let (h, m) = (h.ok_or_else(syntax)?, m.ok_or_else(syntax)?);
            if h > 23 || m > 59 {
                return Err(range());
            }
            let secs = i64::from(h * 3600 + m * 60);
            if *sign == b'-' {
                -secs
            } else {
                secs
            }
        }
        Some(_) => return Err(syntax()),
    };
    // A leap second (:60) is accepted and lands on the next second, which is what a clock
    // without leap seconds shows.
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(range());
    }
    let days = days_from_civil(year, month, day);
    let local = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    Ok(local - offset)
}

/// `2026-12-01T10:30:00Z`.
pub fn format_rfc3339(t: Timestamp) -> String {
    let mut out = String::with_capacity(20);
    push_rfc3339(&mut out, t);
    out
}

/// Appends `2026-12-01T10:30:00Z` to `out`. The state file holds several times per user and is
/// written after every poll, so the digits are pushed directly instead of through `format!`.
pub fn push_rfc3339(out: &mut String, t: Timestamp) {
    let (y, mo, d) = civil_from_days(t.div_euclid(86_400));
    let s = t.rem_euclid(86_400);
    if (0..=9999).contains(&y) {
        push_digits(out, y as u32, 4);
    } else {
        // Years outside 0..=9999 never come from a calendar; they still print as numbers.
        out.push_str(&format!("{y:04}"));
    }
    out.push('-');
    push_digits(out, mo, 2);
    out.push('-');
    push_digits(out, d, 2);
    out.push('T');
    push_digits(out, (s / 3600) as u32, 2);
    out.push(':');
    push_digits(out, (s / 60 % 60) as u32, 2);
    out.push(':');
    push_digits(out, (s % 60) as u32, 2);
    out.push('Z');
}

/// `value` with exactly `width` decimal digits (leading zeros); `value` fits.
fn push_digits(out: &mut String, value: u32, width: u32) {
    let mut div = 10u32.pow(width - 1);
    while div > 0 {
        out.push(char::from(b'0' + (value / div % 10) as u8));
        div /= 10;
    }
}

/// `10:30Z` when `t` is on the same UTC day as `now`, else the full RFC 3339 form: short enough
/// for a log line, never ambiguous.
pub fn format_short(t: Timestamp, now: Timestamp) -> String {
    if t.div_euclid(86_400) == now.div_euclid(86_400) {
        let s = t.rem_euclid(86_400);
        if s % 60 == 0 {
            return format!("{:02}:{:02}Z", s / 3600, s / 60 % 60);
        }
        return format!("{:02}:{:02}:{:02}Z", s / 3600, s / 60 % 60, s % 60);
    }
    format_rfc3339(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, default_offset: i64, expect: Result<&str, &str>) {
        let got = parse_datetime(text, default_offset);
        match (got, expect) {
            (Ok(t), Ok(want)) => assert_eq!(format_rfc3339(t), want, "{text}"),
            (Err(e), Err(kind)) => {
                let k = match e {
                    TimeError::Syntax(_) => "syntax",
                    TimeError::Range(_) => "range",
                    TimeError::MissingOffset(_) => "offset",
                };
                assert_eq!(k, kind, "{text}");
            }
            (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn waits_end_no_earlier_than_asked() {
        let ms = Duration::from_millis;
        // ErrorServerBusy with BackOffMilliseconds 3000, answered at 100.7 s: not before 103.7 s,
        // so the whole second 104 (counting from the request at 100 s gave 103).
        assert_eq!(second_after_wait(ms(100_700), ms(3000)), 104);
        assert_eq!(second_after_wait(ms(100_000), ms(3000)), 103);
        assert_eq!(second_after_wait(ms(100_000), ms(2500)), 103);
        assert_eq!(second_after_wait(ms(100_001), ms(0)), 101);
        assert_eq!(second_after_wait(Duration::MAX, ms(1)), Timestamp::MAX);
        assert_eq!(duration_text(ms(2500)), "2500 ms");
        assert_eq!(duration_text(ms(3000)), "3 s");
        assert_eq!(duration_text(ms(300)), "300 ms");
    }

    #[test]
    fn parse_table() {
        let ok = |s| Ok(s);
        check("2026-12-01T09:30:00Z", 0, ok("2026-12-01T09:30:00Z"));
        check("2026-12-01t09:30:00z", 0, ok("2026-12-01T09:30:00Z"));
        check("2026-12-01 09:30:00Z", 0, ok("2026-12-01T09:30:00Z"));
        check("2026-12-01T10:30:00+01:00", 0, ok("2026-12-01T09:30:00Z"));
        check("2026-12-01T10:30:00+0100", 0, ok("2026-12-01T09:30:00Z"));
        check("2026-12-01T00:30:00-05:30", 0, ok("2026-12-01T06:00:00Z"));
        check("2026-12-01T00:30:00+02:00", 0, ok("2026-11-30T22:30:00Z"));
        // No offset: the zone the caller gives (UTC for EWS and Graph as we ask them).
        check("2026-12-01T09:30:00", 0, ok("2026-12-01T09:30:00Z"));
        check("2026-12-01T09:30:00", 3600, ok("2026-12-01T08:30:00Z"));
        // Fractional seconds of any length are dropped.
        check("2026-12-01T09:30:00.0000000", 0, ok("2026-12-01T09:30:00Z"));
        check(
            "2026-12-01T09:30:00.9999999Z",
            0,
            ok("2026-12-01T09:30:00Z"),
        );
        check("2026-12-01T09:30:00.5+01:00", 0, ok("2026-12-01T08:30:00Z"));
        check("  2026-12-01T09:30:00Z\n", 0, ok("2026-12-01T09:30:00Z"));
        // Calendar edges.
        check("2024-02-29T00:00:00Z", 0, ok("2024-02-29T00:00:00Z"));
        check("2000-02-29T23:59:59Z", 0, ok("2000-02-29T23:59:59Z"));
        check("1970-01-01T00:00:00Z", 0, ok("1970-01-01T00:00:00Z"));
        check("1969-12-31T23:59:59Z", 0, ok("1969-12-31T23:59:59Z"));
        check("9999-12-31T23:59:59Z", 0, ok("9999-12-31T23:59:59Z"));
        check("2026-12-31T23:59:60Z", 0, ok("2027-01-01T00:00:00Z"));
        // Errors.
        check("2026-02-29T00:00:00Z", 0, Err("range"));
        check("1900-02-29T00:00:00Z", 0, Err("range"));
        check("2026-13-01T00:00:00Z", 0, Err("range"));
        check("2026-00-01T00:00:00Z", 0, Err("range"));
        check("2026-04-31T00:00:00Z", 0, Err("range"));
        check("2026-12-01T24:00:00Z", 0, Err("range"));
        check("2026-12-01T23:60:00Z", 0, Err("range"));
        check("2026-12-01T09:30:00+24:00", 0, Err("range"));
        check("2026-12-01", 0, Err("syntax"));
        check("", 0, Err("syntax"));
        check("2026-12-01T09:30Z", 0, Err("syntax"));
        check("2026-12-01T09:30:00.Z", 0, Err("syntax"));
        check("2026-12-01T09:30:00ZZ", 0, Err("syntax"));
        check("2026-12-01T09:30:00+1", 0, Err("syntax"));
        check("2026-12-01T09:30:00 +01:00", 0, Err("syntax"));
        check("2026-1a-01T09:30:00Z", 0, Err("syntax"));
        check("+026-12-01T09:30:00Z", 0, Err("syntax"));
        check("２０２６-12-01T09:30:00Z", 0, Err("syntax"));
    }

    #[test]
    fn rfc3339_needs_offset() {
        assert!(matches!(
            parse_rfc3339("2026-12-01T09:30:00"),
            Err(TimeError::MissingOffset(_))
        ));
        assert_eq!(parse_rfc3339("2026-12-01T09:30:00Z"), Ok(1_796_117_400));
    }

    #[test]
    fn days_round_trip() {
        // Every day over several centuries, both directions, with no time zone or DST involved.
        for z in -200_000..200_000 {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }

    #[test]
    fn format_short_table() {
        let now = parse_rfc3339("2026-12-01T09:00:00Z").unwrap();
        let t = |s| parse_rfc3339(s).unwrap();
        assert_eq!(format_short(t("2026-12-01T10:30:00Z"), now), "10:30Z");
        assert_eq!(format_short(t("2026-12-01T10:30:05Z"), now), "10:30:05Z");
        assert_eq!(
            format_short(t("2026-12-02T10:30:00Z"), now),
            "2026-12-02T10:30:00Z"
        );
    }

    #[test]
    fn rfc3339_digits_at_the_edges() {
        let day = 86_400;
        let cases: &[(Timestamp, &str)] = &[
            (0, "1970-01-01T00:00:00Z"),
            (day - 1, "1970-01-01T23:59:59Z"),
            (-1, "1969-12-31T23:59:59Z"),
            (253_402_300_799, "9999-12-31T23:59:59Z"),
            (253_402_300_800, "10000-01-01T00:00:00Z"),
            (-62_167_219_200, "0000-01-01T00:00:00Z"),
            (-62_167_219_201, "-001-12-31T23:59:59Z"),
        ];
        for &(t, want) in cases {
            assert_eq!(format_rfc3339(t), want, "{t}");
            let mut out = String::from("x");
            push_rfc3339(&mut out, t);
            assert_eq!(out, format!("x{want}"));
        }
    }
}
