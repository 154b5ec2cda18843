//! Structured values (phone numbers, dates, card numbers) and the ways they are written.

use std::fmt::Write as _;

use crate::record::{Country, DateFormat, PhoneStyle};

/// A phone number: country, range (area or mobile code without the trunk 0) and subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Phone {
    pub(crate) country: Country,
    pub(crate) prefix: &'static str,
    pub(crate) subscriber: u32,
    pub(crate) subscriber_len: u8,
}

impl Phone {
    /// The national significant number: all digits after the country code, without trunk 0.
    pub(crate) fn national_digits(&self) -> String {
        let mut s = String::with_capacity(12);
        s.push_str(self.prefix);
        let _ = write!(
            s,
            "{:0w$}",
            self.subscriber,
            w = usize::from(self.subscriber_len)
        );
        s
    }

    /// E.164 as a number (`+41791234567` → `41791234567`), unique per line.
    pub(crate) fn e164(&self) -> u64 {
        let mut n = 0u64;
        for b in self
            .country
            .calling_code()
            .bytes()
            .chain(self.national_digits().bytes())
        {
            n = n.wrapping_mul(10).wrapping_add(u64::from(b - b'0'));
        }
        n
    }

    /// The subscriber part grouped the way it is said: Swiss and Liechtenstein numbers in
    /// groups of 3-2-2 (`123 45 67`), German and Austrian ones in one block.
    fn grouped(&self, digits: &str, sep: char) -> String {
        match self.country {
            Country::Ch | Country::Li if digits.len() == 7 => {
                let mut s = String::with_capacity(9);
                s.push_str(&digits[..3]);
                s.push(sep);
                s.push_str(&digits[3..5]);
                s.push(sep);
                s.push_str(&digits[5..]);
                s
            }
            _ => digits.to_owned(),
        }
    }

    /// The number written in `style`.
    pub(crate) fn format(&self, style: PhoneStyle) -> String {
        let national = self.national_digits();
        let cc = self.country.calling_code();
        if !self.country.has_trunk_prefix() {
            // Liechtenstein: seven digits, no area code, no trunk prefix.
            return match style {
                PhoneStyle::National | PhoneStyle::NationalSlash => self.grouped(&national, ' '),
                PhoneStyle::NationalCompact => national,
                PhoneStyle::NationalDashes => self.grouped(&national, '-'),
                PhoneStyle::NationalParentheses => {
                    format!("(+{cc}) {}", self.grouped(&national, ' '))
                }
                PhoneStyle::International | PhoneStyle::InternationalTrunk => {
                    format!("+{cc} {}", self.grouped(&national, ' '))
                }
                PhoneStyle::InternationalCompact => format!("+{cc}{national}"),
                PhoneStyle::InternationalZeroZero => {
                    format!("00{cc} {}", self.grouped(&national, ' '))
                }
            };
        }
        let sub = &national[self.prefix.len()..];
        let p = self.prefix;
        match style {
            PhoneStyle::National => format!("0{p} {}", self.grouped(sub, ' ')),
            PhoneStyle::NationalCompact => format!("0{national}"),
            PhoneStyle::NationalDashes => format!("0{p}-{}", self.grouped(sub, '-')),
            PhoneStyle::NationalSlash => format!("0{p}/{}", self.grouped(sub, ' ')),
            PhoneStyle::NationalParentheses => format!("(0{p}) {}", self.grouped(sub, ' ')),
            PhoneStyle::International => format!("+{cc} {p} {}", self.grouped(sub, ' ')),
            PhoneStyle::InternationalCompact => format!("+{cc}{national}"),
            PhoneStyle::InternationalZeroZero => format!("00{cc} {p} {}", self.grouped(sub, ' ')),
            PhoneStyle::InternationalTrunk => format!("+{cc} (0){p} {}", self.grouped(sub, ' ')),
        }
    }
}

/// A calendar date without time zone (birth dates only need this much).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Date {
    pub(crate) year: i32,
    pub(crate) month: u32,
    pub(crate) day: u32,
}

pub(crate) fn is_leap_year(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

pub(crate) fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl Date {
    /// The date written in `format`; with `swap` day and month change places.
    pub(crate) fn format(&self, format: DateFormat, swap: bool) -> String {
        let (d, m) = if swap {
            (self.month, self.day)
        } else {
            (self.day, self.month)
        };
        let y = self.year;
        let yy = y.rem_euclid(100);
        match format {
            DateFormat::Dotted => format!("{d:02}.{m:02}.{y:04}"),
            DateFormat::Iso => format!("{y:04}-{m:02}-{d:02}"),
            DateFormat::SlashShortYear => format!("{d:02}/{m:02}/{yy:02}"),
            DateFormat::DottedShortYear => format!("{d:02}.{m:02}.{yy:02}"),
            DateFormat::DottedUnpadded => format!("{d}.{m}.{y}"),
            DateFormat::Compact => format!("{y:04}{m:02}{d:02}"),
            DateFormat::Dashed => format!("{d:02}-{m:02}-{y:04}"),
        }
    }
}

/// A 13-digit loyalty-card number (in-store EAN-13, starting with 2) from a unique
/// 12-digit body.
pub(crate) fn loyalty_card(body: u64) -> String {
    let digits = format!("{body:012}");
    let mut sum = 0u32;
    for (i, b) in digits.bytes().enumerate() {
        let d = u32::from(b - b'0');
        sum += if i % 2 == 0 { d } else { 3 * d };
    }
    let check = (10 - sum % 10) % 10;
    format!("{digits}{check}")
}

/// Lower-case ASCII for e-mail local parts: umlauts transliterated (ü→ue, ß→ss), accents
/// dropped, spaces and apostrophes removed.
pub(crate) fn email_ascii(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            'ä' | 'Ä' => out.push_str("ae"),
            'ö' | 'Ö' => out.push_str("oe"),
            'ü' | 'Ü' => out.push_str("ue"),
            'ß' => out.push_str("ss"),
            ' ' | '\'' | '.' => {}
            c if c.is_ascii_alphanumeric() || c == '-' => out.push(c.to_ascii_lowercase()),
            c => {
                if let Some(base) = crate::corrupt::strip_diacritic(c) {
                    out.push_str(&base.to_ascii_lowercase());
                }
            }
        }
    }
}

/// FNV-1a, a fixed hash so that uniqueness checks never depend on a random hasher seed.
pub(crate) fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// SplitMix64, for ids derived from counters.
pub(crate) fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch_mobile() -> Phone {
        Phone {
            country: Country::Ch,
            prefix: "79",
            subscriber: 1_234_567,
            subscriber_len: 7,
        }
    }

    #[test]
    fn swiss_mobile_styles() {
        let p = ch_mobile();
        let cases = [
            (PhoneStyle::National, "079 123 45 67"),
            (PhoneStyle::NationalCompact, "0791234567"),
            (PhoneStyle::NationalDashes, "079-123-45-67"),
            (PhoneStyle::NationalSlash, "079/123 45 67"),
            (PhoneStyle::NationalParentheses, "(079) 123 45 67"),
            (PhoneStyle::International, "+41 79 123 45 67"),
            (PhoneStyle::InternationalCompact, "+41791234567"),
            (PhoneStyle::InternationalZeroZero, "0041 79 123 45 67"),
            (PhoneStyle::InternationalTrunk, "+41 (0)79 123 45 67"),
        ];
        for (style, want) in cases {
            assert_eq!(p.format(style), want, "{style:?}");
        }
        assert_eq!(p.e164(), 41_791_234_567);
    }

    #[test]
    fn german_and_liechtenstein_numbers() {
        let de = Phone {
            country: Country::De,
            prefix: "151",
            subscriber: 2_345_678,
            subscriber_len: 8,
        };
        assert_eq!(de.format(PhoneStyle::National), "0151 02345678");
        assert_eq!(de.format(PhoneStyle::NationalSlash), "0151/02345678");
        assert_eq!(de.format(PhoneStyle::International), "+49 151 02345678");
        let li = Phone {
            country: Country::Li,
            prefix: "79",
            subscriber: 12_345,
            subscriber_len: 5,
        };
        assert_eq!(li.format(PhoneStyle::National), "791 23 45");
        assert_eq!(
            li.format(PhoneStyle::InternationalZeroZero),
            "00423 791 23 45"
        );
        assert_eq!(li.e164(), 4_237_912_345);
    }

    #[test]
    fn date_formats() {
        let d = Date {
            year: 1980,
            month: 7,
            day: 4,
        };
        assert_eq!(d.format(DateFormat::Dotted, false), "04.07.1980");
        assert_eq!(d.format(DateFormat::Iso, false), "1980-07-04");
        assert_eq!(d.format(DateFormat::SlashShortYear, false), "04/07/80");
        assert_eq!(d.format(DateFormat::DottedShortYear, false), "04.07.80");
        assert_eq!(d.format(DateFormat::DottedUnpadded, false), "4.7.1980");
        assert_eq!(d.format(DateFormat::Compact, false), "19800704");
        assert_eq!(d.format(DateFormat::Dashed, false), "04-07-1980");
        assert_eq!(d.format(DateFormat::Dotted, true), "07.04.1980");
        assert_eq!(days_in_month(2000, 2), 29);
        assert_eq!(days_in_month(1900, 2), 28);
    }

    #[test]
    fn loyalty_card_has_a_valid_ean13_check_digit() {
        // 400638133393 is a well-known EAN-13 body with check digit 1.
        assert_eq!(loyalty_card(400_638_133_393), "4006381333931");
        assert_eq!(loyalty_card(200_000_000_001).len(), 13);
    }

    #[test]
    fn email_ascii_transliterates() {
        let mut s = String::new();
        email_ascii("Müller-Weiß D'Amico Léa Şahin", &mut s);
        assert_eq!(s, "mueller-weissdamicoleasahin");
    }
}
