//! Field comparisons with graded agreement levels.
//!
//! Each comparison turns a pair of values into a level: 0 is the strongest agreement, the last level is
//! "disagrees", and a missing value on either side gives no level at all (it neither helps nor hurts).

use serde::{Deserialize, Serialize};

/// How one field is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComparisonKind {
    /// Names: exact, Jaro-Winkler ≥ 0.94, ≥ 0.88, ≥ 0.70, else.
    Name,
    /// Codes and numbers (postcode, customer number, house number): exact, one edit, two edits, else.
    Code,
    /// Dates as `YYYYMMDD` (or `YYYY-MM-DD`): exact, one digit wrong or two swapped, day and month swapped,
    /// same year, else.
    Date,
    /// Free text such as a street: exact, Jaro-Winkler ≥ 0.92, shared token, else.
    Text,
    /// Identifiers where a near miss means someone else (e-mail addresses): exact or different.
    Exact,
}

impl ComparisonKind {
    /// Labels of the levels, strongest first.
    pub fn level_labels(self) -> &'static [&'static str] {
        match self {
            ComparisonKind::Name => &[
                "exact",
                "jaro_winkler>=0.94",
                "jaro_winkler>=0.88",
                "jaro_winkler>=0.70",
                "different",
            ],
            ComparisonKind::Code => &["exact", "one_edit", "two_edits", "different"],
            ComparisonKind::Date => &[
                "exact",
                "one_digit_off",
                "day_month_swapped",
                "same_year",
                "different",
            ],
            ComparisonKind::Text => &["exact", "jaro_winkler>=0.92", "shared_token", "different"],
            ComparisonKind::Exact => &["exact", "different"],
        }
    }

    /// Typical share of non-matching person records at each level: the prior for `u` when there are too
    /// few records to estimate it (1,000 pseudo-observations).
    pub fn default_u(self) -> &'static [f64] {
        match self {
            ComparisonKind::Name => &[0.01, 0.003, 0.005, 0.05, 0.932],
            ComparisonKind::Code => &[0.01, 0.02, 0.05, 0.92],
            ComparisonKind::Date => &[0.0003, 0.003, 0.0001, 0.015, 0.9816],
            ComparisonKind::Text => &[0.01, 0.005, 0.02, 0.965],
            ComparisonKind::Exact => &[0.0001, 0.9999],
        }
    }

    pub fn levels(self) -> usize {
        self.level_labels().len()
    }

    /// The level of a pair of (already normalised) values.
    pub fn level(self, a: &str, b: &str) -> u8 {
        if a == b {
            return 0;
        }
        match self {
            ComparisonKind::Name => {
                let jw = strsim::jaro_winkler(a, b);
                if jw >= 0.94 {
                    1
                } else if jw >= 0.88 {
                    2
                } else if jw >= 0.70 {
                    3
                } else {
                    4
                }
            }
            ComparisonKind::Code => match damerau_within(a, b, 2) {
                Some(1) => 1,
                Some(2) if a.chars().count().min(b.chars().count()) >= 4 => 2,
                _ => 3,
            },
            ComparisonKind::Date => date_level(a, b),
            ComparisonKind::Exact => 1,
            ComparisonKind::Text => {
                if strsim::jaro_winkler(a, b) >= 0.92 {
                    1
                } else if a
                    .split_whitespace()
                    .any(|t| t.len() > 2 && b.split_whitespace().any(|u| u == t))
                {
                    2
                } else {
                    3
                }
            }
        }
    }
}

/// Damerau-Levenshtein (optimal string alignment) distance if it is at most `max`.
fn damerau_within(a: &str, b: &str, max: usize) -> Option<usize> {
    if a.chars().count().abs_diff(b.chars().count()) > max {
        return None;
    }
    let d = strsim::osa_distance(a, b);
    (d <= max).then_some(d)
}

fn digits(s: &str) -> Option<(u32, u32, u32)> {
    let d: String = s.chars().filter(char::is_ascii_digit).collect();
    if d.len() != 8 {
        return None;
    }
    Some((
        d.get(0..4)?.parse().ok()?,
        d.get(4..6)?.parse().ok()?,
        d.get(6..8)?.parse().ok()?,
    ))
}

fn date_level(a: &str, b: &str) -> u8 {
    if damerau_within(a, b, 1).is_some() {
        return 1;
    }
    match (digits(a), digits(b)) {
        (Some((ya, ma, da)), Some((yb, mb, db))) => {
            if ya == yb && ma == db && da == mb {
                2
            } else if ya == yb {
                3
            } else {
                4
            }
        }
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(kind: ComparisonKind, a: &str, b: &str, expect: &str) {
        let level = kind.level(a, b);
        assert_eq!(
            kind.level_labels()[level as usize],
            expect,
            "{kind:?} {a:?} vs {b:?}"
        );
    }

    #[test]
    fn names_grade_by_similarity() {
        check(ComparisonKind::Name, "mueller", "mueller", "exact");
        check(
            ComparisonKind::Name,
            "christensen",
            "christenson",
            "jaro_winkler>=0.94",
        );
        check(
            ComparisonKind::Name,
            "mueller",
            "muller",
            "jaro_winkler>=0.88",
        );
        check(
            ComparisonKind::Name,
            "schmidt",
            "schmitt",
            "jaro_winkler>=0.94",
        );
        check(ComparisonKind::Name, "meier", "weber", "jaro_winkler>=0.70");
        check(ComparisonKind::Name, "meier", "kowalski", "different");
    }

    #[test]
    fn codes_and_dates_forgive_typical_typos() {
        check(ComparisonKind::Code, "8001", "8001", "exact");
        check(ComparisonKind::Code, "8001", "8010", "one_edit");
        check(ComparisonKind::Code, "53042180", "53042810", "one_edit");
        check(ComparisonKind::Code, "12", "21", "one_edit");
        check(ComparisonKind::Code, "12", "34", "different");
        check(ComparisonKind::Date, "19801224", "19801224", "exact");
        check(
            ComparisonKind::Date,
            "19801224",
            "19801294",
            "one_digit_off",
        );
        check(
            ComparisonKind::Date,
            "19800512",
            "19801205",
            "day_month_swapped",
        );
        check(ComparisonKind::Date, "19800101", "19801231", "same_year");
        check(ComparisonKind::Date, "19800101", "19751231", "different");
    }

    #[test]
    fn exact_has_no_near_misses() {
        check(
            ComparisonKind::Exact,
            "hans.keller0@example.ch",
            "hans.keller0@example.ch",
            "exact",
        );
        check(
            ComparisonKind::Exact,
            "hans.keller0@example.ch",
            "hans.keller30@example.ch",
            "different",
        );
    }

    #[test]
    fn text_shares_tokens() {
        check(
            ComparisonKind::Text,
            "bahnhofstrasse",
            "bahnhofstrase",
            "jaro_winkler>=0.92",
        );
        check(
            ComparisonKind::Text,
            "old mill lane",
            "mill road",
            "shared_token",
        );
        check(ComparisonKind::Text, "seestrasse", "dorfweg", "different");
    }
}
