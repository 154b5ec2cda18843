//! Calendar arithmetic in a customer's time zone: local midnights (DST-safe) and anniversaries.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

/// The first instant of `date` in `tz`. Where midnight does not exist (a DST gap at midnight),
/// the first existing hour of the day.
pub fn start_of_day(date: NaiveDate, tz: Tz) -> Option<DateTime<Utc>> {
    (0..24).find_map(|hour| {
        let local = date.and_hms_opt(hour, 0, 0)?;
        tz.from_local_datetime(&local)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
    })
}

/// The calendar date of `instant` in `tz`.
pub fn local_date(instant: DateTime<Utc>, tz: Tz) -> NaiveDate {
    instant.with_timezone(&tz).date_naive()
}

/// The anniversary of (`month`, `day`) in `year`; 29 February falls on 28 February in common years.
pub fn anniversary_in(month: u32, day: u32, year: i32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(year, month, day).or_else(|| {
        if month == 2 && day == 29 {
            NaiveDate::from_ymd_opt(year, 2, 28)
        } else {
            None
        }
    })
}

/// The first anniversary of `date` on or after `from`.
pub fn next_anniversary(date: NaiveDate, from: NaiveDate) -> Option<NaiveDate> {
    let this_year = anniversary_in(date.month(), date.day(), from.year())?;
    if this_year >= from {
        Some(this_year)
    } else {
        anniversary_in(date.month(), date.day(), from.year() + 1)
    }
}

/// The first day of the month after `date`'s month.
pub fn first_of_next_month(date: NaiveDate) -> Option<NaiveDate> {
    if date.month() == 12 {
        NaiveDate::from_ymd_opt(date.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(date.year(), date.month() + 1, 1)
    }
}

/// The first day of the next month numbered `month` strictly after `today`'s month.
pub fn first_of_coming_month(month: u32, today: NaiveDate) -> Option<NaiveDate> {
    let year = if month > today.month() {
        today.year()
    } else {
        today.year() + 1
    };
    NaiveDate::from_ymd_opt(year, month, 1)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn zurich_midnight_is_previous_day_in_utc() {
        let d = NaiveDate::from_ymd_opt(2024, 12, 24).unwrap();
        let t = start_of_day(d, chrono_tz::Europe::Zurich).unwrap();
        assert_eq!(t.to_rfc3339(), "2024-12-23T23:00:00+00:00");
    }

    #[test]
    fn dst_gap_at_midnight() {
        // Havana springs forward at midnight: 2024-03-10 00:00 does not exist.
        let d = NaiveDate::from_ymd_opt(2024, 3, 10).unwrap();
        let t = start_of_day(d, chrono_tz::America::Havana).unwrap();
        assert_eq!(t.to_rfc3339(), "2024-03-10T05:00:00+00:00");
    }

    #[test]
    fn leap_day_birthdays() {
        let born = NaiveDate::from_ymd_opt(1992, 2, 29).unwrap();
        let from = NaiveDate::from_ymd_opt(2023, 1, 1).unwrap();
        assert_eq!(
            next_anniversary(born, from),
            NaiveDate::from_ymd_opt(2023, 2, 28)
        );
        let from = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
        assert_eq!(
            next_anniversary(born, from),
            NaiveDate::from_ymd_opt(2024, 2, 29)
        );
    }
}
