//! Birth dates: parsed from the forms DACH shops and their exports use, normalised to ISO
//! `YYYY-MM-DD`, and checked for plausibility against `today` (passed in: no clock here).
//!
//! Accepted: `24.12.1980`, `24.12.80`, `1980-12-24`, `24/12/80`, `24/12/1980`, `1980/12/24`,
//! `24-12-1980`, `19801224`, `24121980`, `24. Dezember 1980`, `24. Dez. 1980`, `Dec 24, 1980`,
//! `24 December 1980`, month names in German (also Austrian `Jänner`, `Feber`), English, French
//! and Italian, and ISO timestamps (`1980-12-24T00:00:00Z`, date part only).
//!
//! Day-first is the rule (as everywhere in Europe). `12/24/1980` can only be month-first, so it
//! is read that way but marked suspicious. Two-digit years are placed so that the person is 0–99
//! years old. Invalid: in the future, or older than 120. Suspicious: younger than 14, or a
//! typical placeholder (`01.01.1900`, `01.01.1970`, `11.11.1111`).

use chrono::{Datelike, NaiveDate};

use crate::text::{clean, fold};
use crate::FieldOutcome;

const MAX_AGE: u32 = 120;
const MIN_AGE: u32 = 14;

/// Dates systems fill in when nobody knew the real one.
const PLACEHOLDERS: &[(i32, u32, u32)] = &[
    (1900, 1, 1),
    (1970, 1, 1),
    (1111, 11, 11),
    (1899, 12, 30),
    (1899, 12, 31),
    (1, 1, 1),
];

/// Checks and normalises a birth date.
///
/// Details: `age` in full years on `today`.
pub fn validate(raw: &str, today: NaiveDate) -> FieldOutcome {
    let cleaned = clean(raw);
    if cleaned.is_empty() {
        return FieldOutcome::blank(raw);
    }
    let (date, month_first) = match parse_date(&cleaned, today) {
        Ok(parsed) => parsed,
        Err(reason) => return FieldOutcome::invalid(raw, reason),
    };
    let placeholder = PLACEHOLDERS
        .iter()
        .any(|(y, m, d)| (date.year(), date.month(), date.day()) == (*y, *m, *d));
    let value = date.format("%Y-%m-%d").to_string();
    if placeholder {
        return FieldOutcome::usable(raw, value).suspect("looks like a placeholder date");
    }
    let Some(age) = today.years_since(date) else {
        return FieldOutcome::invalid(raw, "date is in the future");
    };
    if age > MAX_AGE {
        return FieldOutcome::invalid(raw, "age over 120 years");
    }
    let outcome = FieldOutcome::usable(raw, value).detail("age", age);
    if age < MIN_AGE {
        outcome.suspect("age under 14")
    } else if month_first {
        outcome.suspect("month and day look swapped (month-first order)")
    } else {
        outcome
    }
}

/// Parses a birth date in any accepted form, without plausibility checks.
pub fn parse(raw: &str, today: NaiveDate) -> Option<NaiveDate> {
    parse_date(&clean(raw), today).ok().map(|(date, _)| date)
}

/// The date and whether it was read month-first.
fn parse_date(s: &str, today: NaiveDate) -> Result<(NaiveDate, bool), &'static str> {
    // ISO timestamps: keep the date part.
    let s = match (s.get(..10), s.get(10..11)) {
        (Some(date), Some("T" | "t" | " ")) if date.chars().filter(|c| *c == '-').count() == 2 => {
            date
        }
        _ => s,
    };
    let folded = fold(s);
    let tokens: Vec<&str> = folded
        .split(['.', '/', '-', ',', ' '])
        .filter(|t| !t.is_empty())
        .collect();
    let numeric = |t: &&str| t.chars().all(|c| c.is_ascii_digit());
    if tokens.iter().all(numeric) {
        return match tokens.as_slice() {
            [compact] => compact_date(compact, today),
            [a, b, c] => numeric_date(a, b, c, folded.contains('/'), today),
            _ => Err("not a recognised date"),
        };
    }
    let month_at = tokens.iter().position(|t| !numeric(t));
    let (month_at, month) = match month_at.and_then(|i| tokens.get(i).map(|t| (i, *t))) {
        Some((i, name)) => (
            i,
            month_from_name(name).ok_or("not a recognised month name")?,
        ),
        None => return Err("not a recognised date"),
    };
    let numbers: Vec<&str> = tokens
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != month_at)
        .map(|(_, t)| *t)
        .collect();
    match numbers.as_slice() {
        // `24. Dezember 1980` and `Dec 24, 1980` both have the day before the year.
        [day, year] if numbers.iter().all(numeric) && tokens.len() == 3 => {
            let day = day.parse().map_err(|_| "not a recognised date")?;
            ymd(year, month, day, today).map(|date| (date, false))
        }
        _ => Err("not a recognised date"),
    }
}

/// `19801224`, `24121980` or `241280`.
fn compact_date(s: &str, today: NaiveDate) -> Result<(NaiveDate, bool), &'static str> {
    let part = |range: std::ops::Range<usize>| s.get(range).unwrap_or_default();
    match s.len() {
        8 => {
            let year_first = part(0..4)
                .parse::<u32>()
                .ok()
                .zip(part(4..6).parse::<u32>().ok())
                .zip(part(6..8).parse::<u32>().ok())
                .and_then(|((y, m), d)| NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d))
                .filter(|date| date.year() >= 1800);
            match year_first {
                Some(date) => Ok((date, false)),
                None => numeric_date(part(0..2), part(2..4), part(4..8), false, today),
            }
        }
        6 => numeric_date(part(0..2), part(2..4), part(4..6), false, today),
        _ => Err("not a recognised date"),
    }
}

/// Three numbers: `y m d` when the first has four digits, otherwise `d m y` (or `m d y` for a
/// slash date whose second number cannot be a month).
fn numeric_date(
    a: &str,
    b: &str,
    c: &str,
    slashes: bool,
    today: NaiveDate,
) -> Result<(NaiveDate, bool), &'static str> {
    let number = |s: &str| s.parse::<u32>().map_err(|_| "not a recognised date");
    if a.len() == 4 {
        if b.len() > 2 || c.len() > 2 {
            return Err("not a recognised date");
        }
        return ymd(a, number(b)?, number(c)?, today).map(|date| (date, false));
    }
    if a.len() > 2 || b.len() > 2 {
        return Err("not a recognised date");
    }
    let (first, second) = (number(a)?, number(b)?);
    if slashes && first <= 12 && second > 12 {
        return ymd(c, first, second, today).map(|date| (date, true));
    }
    ymd(c, second, first, today).map(|date| (date, false))
}

/// A date from a two- or four-digit year. Two-digit years land so that the date is not after
/// `today` and at most 99 years before it.
fn ymd(year: &str, month: u32, day: u32, today: NaiveDate) -> Result<NaiveDate, &'static str> {
    let parsed: i32 = year.parse().map_err(|_| "not a recognised date")?;
    match year.len() {
        4 => NaiveDate::from_ymd_opt(parsed, month, day).ok_or("not a calendar date"),
        2 => {
            let century = today.year().div_euclid(100) * 100;
            let candidates = [century + parsed, century + parsed - 100];
            let dates: Vec<NaiveDate> = candidates
                .iter()
                .filter_map(|y| NaiveDate::from_ymd_opt(*y, month, day))
                .collect();
            if dates.is_empty() {
                return Err("not a calendar date");
            }
            dates
                .iter()
                .copied()
                .find(|date| *date <= today)
                .or_else(|| dates.last().copied())
                .ok_or("not a calendar date")
        }
        _ => Err("not a recognised date"),
    }
}

/// Month names (German, Austrian German, English, French, Italian) as folded by `fold`.
const MONTHS: &[(&str, u32)] = &[
    ("januar", 1),
    ("jaenner", 1),
    ("january", 1),
    ("janvier", 1),
    ("gennaio", 1),
    ("februar", 2),
    ("feber", 2),
    ("february", 2),
    ("fevrier", 2),
    ("febbraio", 2),
    ("maerz", 3),
    ("marz", 3),
    ("march", 3),
    ("mars", 3),
    ("marzo", 3),
    ("april", 4),
    ("avril", 4),
    ("aprile", 4),
    ("mai", 5),
    ("may", 5),
    ("maggio", 5),
    ("juni", 6),
    ("june", 6),
    ("juin", 6),
    ("giugno", 6),
    ("juli", 7),
    ("july", 7),
    ("juillet", 7),
    ("luglio", 7),
    ("august", 8),
    ("aout", 8),
    ("agosto", 8),
    ("september", 9),
    ("septembre", 9),
    ("settembre", 9),
    ("oktober", 10),
    ("october", 10),
    ("octobre", 10),
    ("ottobre", 10),
    ("november", 11),
    ("novembre", 11),
    ("dezember", 12),
    ("december", 12),
    ("decembre", 12),
    ("dicembre", 12),
];

/// A full month name, or an abbreviation of at least three letters that names one month.
fn month_from_name(name: &str) -> Option<u32> {
    if let Some((_, month)) = MONTHS.iter().find(|(full, _)| *full == name) {
        return Some(*month);
    }
    if name.chars().count() < 3 {
        return None;
    }
    let mut matches = MONTHS
        .iter()
        .filter(|(full, _)| full.starts_with(name))
        .map(|(_, month)| *month);
    let first = matches.next()?;
    matches.all(|month| month == first).then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FieldStatus;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 25).expect("valid date")
    }

    fn check(input: &str, expected: &str) {
        let outcome = validate(input, today());
        assert_eq!(
            outcome.value.as_deref(),
            Some(expected),
            "{input:?}: {outcome:?}"
        );
    }

    fn check_status(input: &str, status: FieldStatus) {
        assert_eq!(validate(input, today()).status, status, "{input:?}");
    }

    fn invalid(reason: &str) -> FieldStatus {
        FieldStatus::Invalid {
            reason: reason.to_owned(),
        }
    }

    fn suspicious(reason: &str) -> FieldStatus {
        FieldStatus::Suspicious {
            reason: reason.to_owned(),
        }
    }

    #[test]
    fn parses_numeric_forms() {
        for input in [
            "24.12.1980",
            "24.12.80",
            "1980-12-24",
            "24/12/80",
            "24/12/1980",
            "1980/12/24",
            "24-12-1980",
            " 24. 12. 1980 ",
            "19801224",
            "24121980",
            "241280",
            "1980-12-24T00:00:00Z",
            "1980-12-24 00:00:00",
        ] {
            check(input, "1980-12-24");
        }
        check("1.2.1990", "1990-02-01");
        check_status("1980-12-24", FieldStatus::Valid);
        check_status("24.12.1980", FieldStatus::Normalised);
    }

    #[test]
    fn parses_month_names() {
        for input in [
            "24. Dezember 1980",
            "24 dezember 1980",
            "24. Dez. 1980",
            "Dec 24, 1980",
            "December 24, 1980",
            "24 December 1980",
            "24 décembre 1980",
            "24 dicembre 1980",
            "24. DEZEMBER 80",
        ] {
            check(input, "1980-12-24");
        }
        check("3. März 1975", "1975-03-03");
        check("3. Maerz 1975", "1975-03-03");
        check("15. Jänner 1990", "1990-01-15");
        check("1. Feber 1990", "1990-02-01");
        check("14 août 1985", "1985-08-14");
        check_status("24. Jui 1980", invalid("not a recognised month name"));
    }

    #[test]
    fn pivots_two_digit_years_on_today() {
        check("24.12.80", "1980-12-24");
        check("01.01.05", "2005-01-01");
        check("24.11.26", "2026-11-24");
        check("26.11.26", "1926-11-26");
        check("29.02.00", "2000-02-29");
    }

    #[test]
    fn reads_month_first_only_when_unambiguous() {
        let outcome = validate("12/24/1980", today());
        assert_eq!(outcome.value.as_deref(), Some("1980-12-24"));
        assert_eq!(
            outcome.status,
            suspicious("month and day look swapped (month-first order)")
        );
        check("05/06/1980", "1980-06-05");
    }

    #[test]
    fn checks_plausibility() {
        check_status("01.01.2030", invalid("date is in the future"));
        check_status("26.11.2026", invalid("date is in the future"));
        check_status("01.01.1890", invalid("age over 120 years"));
        check_status("01.01.2020", suspicious("age under 14"));
        check_status("01.01.1900", suspicious("looks like a placeholder date"));
        check_status("01.01.1970", suspicious("looks like a placeholder date"));
        check_status("11.11.1111", suspicious("looks like a placeholder date"));
        check_status("31.02.1980", invalid("not a calendar date"));
        check_status("yesterday", invalid("not a recognised month name"));
        check_status("1980", invalid("not a recognised date"));
        check_status("", FieldStatus::Missing);
        assert_eq!(validate("24.12.1980", today()).details["age"], 45);
        assert_eq!(validate("25.11.2012", today()).details["age"], 14);
        assert_eq!(
            parse("24.12.80", today()),
            NaiveDate::from_ymd_opt(1980, 12, 24)
        );
    }
}
