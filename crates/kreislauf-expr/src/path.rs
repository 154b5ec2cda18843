//! Operand paths: every value a condition can look at is addressed as `namespace.name[.more]`.
//!
//! | path | meaning |
//! | --- | --- |
//! | `trait.city`, `trait.address.zip` | a profile trait; further segments walk into JSON objects (or arrays by index) |
//! | `computed.wine_purchases_30d` | a computed trait's current value |
//! | `identity.email` | the profile's identifiers of one kind (a list): `user_id`, `email`, `phone`, `loyalty_card`, `anonymous_id` |
//! | `consent.wine_club.email.marketing` | consent for brand `wine_club`, channel `email`, purpose `marketing`: `true`, `false` or missing |
//! | `event.name`, `event.properties.category` | the current (trigger) event: `name`, `type`, `source`, `brand`, `timestamp`, `message_id`, `properties.*`, `context.*`, `traits.*` |
//! | `profile.created_at` | profile attributes: `id`, `created_at`, `updated_at`, `last_seen_at` |
//!
//! Segment membership is not a path: it is the `in_segment` condition.

use std::fmt;

use crate::suggest::hint;

/// The identifier kinds a profile has (mirrors the core's identity kinds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IdentityKind {
    UserId,
    Email,
    Phone,
    LoyaltyCard,
    AnonymousId,
}

impl IdentityKind {
    pub const ALL: [IdentityKind; 5] = [
        IdentityKind::UserId,
        IdentityKind::Email,
        IdentityKind::Phone,
        IdentityKind::LoyaltyCard,
        IdentityKind::AnonymousId,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IdentityKind::UserId => "user_id",
            IdentityKind::Email => "email",
            IdentityKind::Phone => "phone",
            IdentityKind::LoyaltyCard => "loyalty_card",
            IdentityKind::AnonymousId => "anonymous_id",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for IdentityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The path namespaces, used to allow or forbid parts of the language per use (see `Scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Namespace {
    Trait,
    Computed,
    Identity,
    Consent,
    Event,
    Profile,
    /// Not a path, but `in_segment`; listed so scopes can forbid it.
    Segment,
}

impl Namespace {
    pub const PATH_NAMESPACES: [Namespace; 6] = [
        Namespace::Trait,
        Namespace::Computed,
        Namespace::Identity,
        Namespace::Consent,
        Namespace::Event,
        Namespace::Profile,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Namespace::Trait => "trait",
            Namespace::Computed => "computed",
            Namespace::Identity => "identity",
            Namespace::Consent => "consent",
            Namespace::Event => "event",
            Namespace::Profile => "profile",
            Namespace::Segment => "segment",
        }
    }
}

/// Top-level fields of `event.*`; those marked nested accept further segments.
pub const EVENT_FIELDS: [(&str, bool); 9] = [
    ("name", false),
    ("type", false),
    ("source", false),
    ("brand", false),
    ("timestamp", false),
    ("message_id", false),
    ("properties", true),
    ("context", true),
    ("traits", true),
];

/// Attributes of `profile.*`.
pub const PROFILE_FIELDS: [&str; 4] = ["id", "created_at", "updated_at", "last_seen_at"];

/// A parsed operand path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Path {
    /// `trait.<name>[.<key>...]`.
    Trait { name: String, rest: Vec<String> },
    /// `computed.<name>`.
    Computed(String),
    /// `identity.<kind>`.
    Identity(IdentityKind),
    /// `consent.<brand>.<channel>.<purpose>`.
    Consent {
        brand: String,
        channel: String,
        purpose: String,
    },
    /// `event.<field>[.<key>...]`.
    Event { field: String, rest: Vec<String> },
    /// `profile.<attribute>`.
    Profile(String),
}

impl Path {
    pub fn namespace(&self) -> Namespace {
        match self {
            Path::Trait { .. } => Namespace::Trait,
            Path::Computed(_) => Namespace::Computed,
            Path::Identity(_) => Namespace::Identity,
            Path::Consent { .. } => Namespace::Consent,
            Path::Event { .. } => Namespace::Event,
            Path::Profile(_) => Namespace::Profile,
        }
    }

    /// Parses `namespace.name...`; the error message explains what is wrong (without the field path).
    pub fn parse(text: &str) -> Result<Path, String> {
        let segments: Vec<&str> = text.split('.').collect();
        if segments.iter().any(|s| s.trim().is_empty()) || segments.len() < 2 {
            return Err(format!(
                "expected a path like \"trait.city\" or \"computed.lifetime_value_chf\", found \"{text}\""
            ));
        }
        let owned = |s: &[&str]| s.iter().map(|p| (*p).to_owned()).collect::<Vec<_>>();
        let ns = segments[0];
        let rest = &segments[1..];
        match ns {
            "trait" => Ok(Path::Trait {
                name: rest[0].to_owned(),
                rest: owned(&rest[1..]),
            }),
            "computed" => match rest {
                [name] => Ok(Path::Computed((*name).to_owned())),
                _ => Err(format!(
                    "computed traits have no nested fields: \"{text}\" should be \"computed.{}\"",
                    rest[0]
                )),
            },
            "identity" => match rest {
                [kind] => IdentityKind::parse(kind)
                    .map(Path::Identity)
                    .ok_or_else(|| {
                        format!(
                            "unknown identity kind \"{kind}\"{}",
                            hint(kind, IdentityKind::ALL.map(IdentityKind::as_str))
                        )
                    }),
                _ => Err(format!(
                    "identity paths have one segment, e.g. \"identity.email\", found \"{text}\""
                )),
            },
            "consent" => match rest {
                [brand, channel, purpose] => Ok(Path::Consent {
                    brand: (*brand).to_owned(),
                    channel: (*channel).to_owned(),
                    purpose: (*purpose).to_owned(),
                }),
                _ => Err(format!(
                    "consent paths are \"consent.<brand>.<channel>.<purpose>\", found \"{text}\""
                )),
            },
            "event" => {
                let field = rest[0];
                match EVENT_FIELDS.iter().find(|(f, _)| *f == field) {
                    Some((_, nested)) => {
                        if !nested && rest.len() > 1 {
                            return Err(format!(
                                "event.{field} has no nested fields, found \"{text}\""
                            ));
                        }
                        Ok(Path::Event {
                            field: field.to_owned(),
                            rest: owned(&rest[1..]),
                        })
                    }
                    None => Err(format!(
                        "unknown event field \"{field}\"{}",
                        hint(field, EVENT_FIELDS.map(|(f, _)| f))
                    )),
                }
            }
            "profile" => match rest {
                [attr] if PROFILE_FIELDS.contains(attr) => Ok(Path::Profile((*attr).to_owned())),
                [attr] => Err(format!(
                    "unknown profile attribute \"{attr}\"{}",
                    hint(attr, PROFILE_FIELDS)
                )),
                _ => Err(format!(
                    "profile attributes have no nested fields, found \"{text}\""
                )),
            },
            other => Err(format!(
                "unknown path namespace \"{other}\" in \"{text}\"{}",
                hint(other, Namespace::PATH_NAMESPACES.map(Namespace::as_str))
            )),
        }
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Trait { name, rest } => {
                write!(f, "trait.{name}")?;
                rest.iter().try_for_each(|r| write!(f, ".{r}"))
            }
            Path::Computed(name) => write!(f, "computed.{name}"),
            Path::Identity(kind) => write!(f, "identity.{kind}"),
            Path::Consent {
                brand,
                channel,
                purpose,
            } => write!(f, "consent.{brand}.{channel}.{purpose}"),
            Path::Event { field, rest } => {
                write!(f, "event.{field}")?;
                rest.iter().try_for_each(|r| write!(f, ".{r}"))
            }
            Path::Profile(attr) => write!(f, "profile.{attr}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for text in [
            "trait.city",
            "trait.address.zip",
            "computed.wine_purchases_30d",
            "identity.loyalty_card",
            "consent.wine_club.email.marketing",
            "event.properties.category",
            "event.name",
            "profile.created_at",
        ] {
            let path = Path::parse(text);
            assert_eq!(path.map(|p| p.to_string()).as_deref(), Ok(text));
        }
    }

    #[test]
    fn explains_mistakes() {
        let err = |t: &str| Path::parse(t).err().unwrap_or_default();
        assert!(
            err("traits.city").contains("did you mean \"trait\"?"),
            "{}",
            err("traits.city")
        );
        assert!(err("identity.loyaltycard").contains("\"loyalty_card\""));
        assert!(err("event.propertes.x").contains("\"properties\""));
        assert!(err("event.name.first").contains("no nested fields"));
        assert!(err("consent.wine_club.email").contains("<purpose>"));
        assert!(err("city").contains("expected a path"));
        assert!(err("trait..city").contains("expected a path"));
    }
}
