//! Literal values in conditions: numbers, strings, booleans, dates and instants, durations.
//!
//! Accepted input forms (also used to read fact values):
//! * numbers: JSON numbers, or (where a number is expected) strings with plain decimals such as
//!   `"500"`, `"1250.50"`, `"1'250.50"` or `"1_250.50"` (no units, no decimal comma);
//! * dates: `2024-12-24` (ISO) or `24.12.1980` / `1.2.1980` (de-CH / de-DE);
//! * instants: RFC 3339 such as `2024-12-24T18:00:00+01:00`; without an offset, UTC is assumed;
//! * durations: `30d`, `36h`, `15m`, `90s`, `2w`, or a bare integer meaning days.

use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use serde_json::{Number, Value};

/// A literal operand of a comparison, already typed.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Bool(bool),
    Number(f64),
    String(String),
    /// A calendar date, compared with the fact's date in the profile's time zone.
    Date(NaiveDate),
    /// An instant.
    DateTime(DateTime<Utc>),
}

impl Literal {
    /// The canonical JSON form (dates as ISO strings, whole numbers as integers).
    pub fn to_value(&self) -> Value {
        match self {
            Literal::Bool(b) => Value::Bool(*b),
            Literal::Number(n) => number_value(*n),
            Literal::String(s) => Value::String(s.clone()),
            Literal::Date(d) => Value::String(d.format("%Y-%m-%d").to_string()),
            Literal::DateTime(t) => Value::String(format_instant(*t)),
        }
    }

    /// What kind of literal this is, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Literal::Bool(_) => "a boolean",
            Literal::Number(_) => "a number",
            Literal::String(_) => "a string",
            Literal::Date(_) => "a date",
            Literal::DateTime(_) => "an instant",
        }
    }
}

/// JSON number for `n`: an integer when it is whole and exactly representable.
pub fn number_value(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        // Whole and within ±2^53: the cast is exact.
        Value::Number(Number::from(n as i64))
    } else {
        Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

/// RFC 3339 in UTC with as many fractional digits as needed.
pub fn format_instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// A plain decimal: digits with optional sign, `.` decimals and `'` or `_` digit grouping.
pub fn parse_decimal(s: &str) -> Option<f64> {
    let s = s.trim();
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let mut seen_digit = false;
    let mut seen_dot = false;
    let mut cleaned = String::with_capacity(s.len());
    if s.starts_with('-') {
        cleaned.push('-');
    }
    for c in body.chars() {
        match c {
            '0'..='9' => {
                seen_digit = true;
                cleaned.push(c);
            }
            '.' if !seen_dot => {
                seen_dot = true;
                cleaned.push(c);
            }
            '\'' | '_' if seen_digit && !seen_dot => {}
            _ => return None,
        }
    }
    if !seen_digit || cleaned.ends_with('.') {
        return None;
    }
    cleaned.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// A date in ISO (`2024-12-24`) or de-CH/de-DE (`24.12.2024`, `1.2.2024`) form.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() == 10 && b[4] == b'-' && b[7] == b'-' {
        let all_digits = b
            .iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
        if !all_digits {
            return None;
        }
        let year = s[0..4].parse().ok()?;
        let month = s[5..7].parse().ok()?;
        let day = s[8..10].parse().ok()?;
        return NaiveDate::from_ymd_opt(year, month, day);
    }
    let mut parts = s.split('.');
    let (d, m, y) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some()
        || !(1..=2).contains(&d.len())
        || !(1..=2).contains(&m.len())
        || y.len() != 4
        || ![d, m, y]
            .iter()
            .all(|p| p.bytes().all(|c| c.is_ascii_digit()))
    {
        return None;
    }
    NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)
}

/// An instant in RFC 3339, or an ISO date-time without offset (taken as UTC).
pub fn parse_instant(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if s.len() < 16 || !s.as_bytes()[..4].iter().all(u8::is_ascii_digit) {
        return None;
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(s, format) {
            return Some(naive.and_utc());
        }
    }
    None
}

/// A date or an instant read from a string.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Temporal {
    Date(NaiveDate),
    Instant(DateTime<Utc>),
}

pub fn parse_temporal(s: &str) -> Option<Temporal> {
    parse_date(s)
        .map(Temporal::Date)
        .or_else(|| parse_instant(s).map(Temporal::Instant))
}

/// A positive length of time, stored in seconds. Days are 24 hours (no DST adjustment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    seconds: i64,
}

/// Longest accepted span: 100 years, so that adding it to any sane instant cannot overflow.
pub const MAX_SPAN_SECONDS: i64 = 36_525 * 86_400;

impl Span {
    pub fn from_seconds(seconds: i64) -> Option<Self> {
        (1..=MAX_SPAN_SECONDS)
            .contains(&seconds)
            .then_some(Self { seconds })
    }

    pub fn days(days: i64) -> Option<Self> {
        Self::from_seconds(days.checked_mul(86_400)?)
    }

    pub fn seconds(self) -> i64 {
        self.seconds
    }

    pub fn duration(self) -> chrono::TimeDelta {
        chrono::TimeDelta::seconds(self.seconds)
    }

    /// `30d`, `36h`, `15m`, `90s`, `2w` or a bare number of days.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (number, unit) = s.split_at(digits_end);
        let n: i64 = number.parse().ok()?;
        let unit_seconds = match unit.trim() {
            "" | "d" | "day" | "days" => 86_400,
            "w" | "week" | "weeks" => 7 * 86_400,
            "h" | "hour" | "hours" => 3_600,
            "m" | "min" | "minute" | "minutes" => 60,
            "s" | "sec" | "second" | "seconds" => 1,
            _ => return None,
        };
        Self::from_seconds(n.checked_mul(unit_seconds)?)
    }
}

impl fmt::Display for Span {
    /// The largest of d/h/m/s that divides the span, so parsing the output gives the same span.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, secs) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
            if self.seconds % secs == 0 {
                return write!(f, "{}{unit}", self.seconds / secs);
            }
        }
        write!(f, "{}s", self.seconds)
    }
}

/// Which recurrence of a date's month and day `anniversary` asks about (birthdays, sign-up days).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Anniversary {
    Today,
    Tomorrow,
    ThisMonth,
}

impl Anniversary {
    pub const NAMES: [&'static str; 3] = ["today", "tomorrow", "this_month"];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "today" => Anniversary::Today,
            "tomorrow" => Anniversary::Tomorrow,
            "this_month" => Anniversary::ThisMonth,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Anniversary::Today => "today",
            Anniversary::Tomorrow => "tomorrow",
            Anniversary::ThisMonth => "this_month",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals() {
        assert_eq!(parse_decimal("500"), Some(500.0));
        assert_eq!(parse_decimal("-1'250.50"), Some(-1250.5));
        assert_eq!(parse_decimal("1_000"), Some(1000.0));
        assert_eq!(parse_decimal("fünfhundert"), None);
        assert_eq!(parse_decimal("CHF 500"), None);
        assert_eq!(parse_decimal("1,5"), None);
        assert_eq!(parse_decimal("."), None);
        assert_eq!(parse_decimal("5."), None);
        assert_eq!(parse_decimal("'5"), None);
    }

    #[test]
    fn dates() {
        let d = NaiveDate::from_ymd_opt(1980, 12, 24);
        assert_eq!(parse_date("24.12.1980"), d);
        assert_eq!(parse_date("1980-12-24"), d);
        assert_eq!(parse_date("1.2.1980"), NaiveDate::from_ymd_opt(1980, 2, 1));
        assert_eq!(parse_date("31.02.1980"), None);
        assert_eq!(parse_date("24.12.80"), None);
        assert_eq!(parse_date("Zürich"), None);
        assert_eq!(parse_date("1980-1-24"), None);
    }

    #[test]
    fn instants() {
        let t = parse_instant("2024-12-24T18:00:00+01:00");
        assert_eq!(
            t.map(format_instant).as_deref(),
            Some("2024-12-24T17:00:00Z")
        );
        assert_eq!(
            parse_instant("2024-12-24T17:00:00")
                .map(format_instant)
                .as_deref(),
            Some("2024-12-24T17:00:00Z")
        );
        assert_eq!(parse_instant("2024-12-24"), None);
        assert_eq!(parse_instant("hello world, how are you"), None);
    }

    #[test]
    fn spans_round_trip() {
        for text in ["30d", "36h", "90s", "15m", "2w", "7"] {
            let span = Span::parse(text);
            assert!(span.is_some(), "{text}");
            let again = span.and_then(|s| Span::parse(&s.to_string()));
            assert_eq!(span, again, "{text}");
        }
        assert_eq!(
            Span::parse("2w").map(|s| s.to_string()).as_deref(),
            Some("14d")
        );
        assert_eq!(Span::parse("0d"), None);
        assert_eq!(Span::parse("30 Tage"), None);
        assert_eq!(Span::parse("99999999999999d"), None);
    }
}
