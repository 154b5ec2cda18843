//! Identifiers that tie events to a person, and how their values are normalised.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The kinds of identifier Kreislauf resolves, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentifierKind {
    UserId,
    LoyaltyCard,
    Email,
    Phone,
    AnonymousId,
}

impl IdentifierKind {
    pub const ALL: [IdentifierKind; 5] = [
        IdentifierKind::UserId,
        IdentifierKind::LoyaltyCard,
        IdentifierKind::Email,
        IdentifierKind::Phone,
        IdentifierKind::AnonymousId,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IdentifierKind::UserId => "user_id",
            IdentifierKind::LoyaltyCard => "loyalty_card",
            IdentifierKind::Email => "email",
            IdentifierKind::Phone => "phone",
            IdentifierKind::AnonymousId => "anonymous_id",
        }
    }

    /// Resolution priority: lower is stronger. The strongest identifier of an event decides its profile.
    pub fn priority(self) -> u8 {
        self as u8
    }

    /// A profile may hold at most one value of a unique kind; a merge that would give it two is refused.
    pub fn is_unique(self) -> bool {
        matches!(self, IdentifierKind::UserId)
    }

    /// Normalise a raw value of this kind; `None` if it cannot identify anybody.
    pub fn normalise(self, raw: &str) -> Option<String> {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.len() > 512 || trimmed.chars().any(char::is_control) {
            return None;
        }
        match self {
            IdentifierKind::UserId | IdentifierKind::AnonymousId => Some(trimmed.to_owned()),
            IdentifierKind::LoyaltyCard => {
                let compact: String = trimmed
                    .chars()
                    .filter(|c| !c.is_whitespace() && *c != '-')
                    .collect();
                (!compact.is_empty()).then(|| compact.to_uppercase())
            }
            IdentifierKind::Email => normalise_email(trimmed),
            IdentifierKind::Phone => normalise_phone(trimmed),
        }
    }
}

impl fmt::Display for IdentifierKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for an unknown identifier kind name.
#[derive(Debug, thiserror::Error)]
#[error(
    "unknown identifier kind {0:?} (expected user_id, anonymous_id, email, phone or loyalty_card)"
)]
pub struct UnknownIdentifierKind(pub String);

impl FromStr for IdentifierKind {
    type Err = UnknownIdentifierKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IdentifierKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownIdentifierKind(s.to_owned()))
    }
}

/// One normalised identifier value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Identifier {
    pub kind: IdentifierKind,
    pub value: String,
}

impl Identifier {
    /// Builds a normalised identifier, or `None` when the raw value identifies nobody.
    pub fn new(kind: IdentifierKind, raw: &str) -> Option<Self> {
        kind.normalise(raw).map(|value| Identifier { kind, value })
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.kind, self.value)
    }
}

/// Lower-cases and checks the basic shape `local@domain.tld`; full validation is the data-quality engine's job.
fn normalise_email(raw: &str) -> Option<String> {
    let lower = raw.to_lowercase();
    let (local, domain) = lower.rsplit_once('@')?;
    let valid_domain = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..");
    let no_spaces = !lower.chars().any(char::is_whitespace);
    (!local.is_empty() && valid_domain && no_spaces).then_some(lower)
}

/// Keeps a leading `+` and the digits, turning an international `00` prefix into `+`.
/// Region-aware E.164 parsing belongs to the data-quality engine.
fn normalise_phone(raw: &str) -> Option<String> {
    let plus = raw.starts_with('+');
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 6 || digits.len() > 17 {
        return None;
    }
    if plus {
        Some(format!("+{digits}"))
    } else if let Some(rest) = digits.strip_prefix("00") {
        Some(format!("+{rest}"))
    } else {
        Some(digits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(kind: IdentifierKind, raw: &str, expect: Option<&str>) {
        assert_eq!(kind.normalise(raw).as_deref(), expect, "{kind} {raw:?}");
    }

    #[test]
    fn normalises_emails() {
        check(
            IdentifierKind::Email,
            "  Hans.Müller@Example.CH ",
            Some("hans.müller@example.ch"),
        );
        check(IdentifierKind::Email, "no-at-sign.example.ch", None);
        check(IdentifierKind::Email, "a@localhost", None);
        check(IdentifierKind::Email, "a b@example.ch", None);
        check(IdentifierKind::Email, "@example.ch", None);
    }

    #[test]
    fn normalises_phones_and_cards() {
        check(
            IdentifierKind::Phone,
            "0041 44 668 18 00",
            Some("+41446681800"),
        );
        check(
            IdentifierKind::Phone,
            "+49 (30) 1234567",
            Some("+49301234567"),
        );
        check(IdentifierKind::Phone, "12", None);
        check(
            IdentifierKind::LoyaltyCard,
            " 2501-0000-1234 ",
            Some("250100001234"),
        );
        check(IdentifierKind::UserId, "   ", None);
    }

    #[test]
    fn kinds_round_trip_and_order_by_priority() {
        for kind in IdentifierKind::ALL {
            assert_eq!(kind.as_str().parse::<IdentifierKind>().ok(), Some(kind));
        }
        assert!(IdentifierKind::UserId.priority() < IdentifierKind::AnonymousId.priority());
        assert!("nickname".parse::<IdentifierKind>().is_err());
    }
}
