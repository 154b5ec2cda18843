//! Sources: a brand × channel that sends events with its own write key.

use serde::{Deserialize, Serialize};

use crate::identity::IdentifierKind;

/// Database id of a source.
pub type SourceId = i64;

/// A brand and channel that sends events, e.g. "supermarket point of sale".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    pub id: SourceId,
    /// Unique, human-readable name such as `supermarket-pos`.
    pub name: String,
    pub brand: String,
    pub channel: String,
    pub identity_mapping: IdentityMapping,
    /// Origins allowed to send from a browser (CORS); empty means none.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
}

/// Which trait/property names count as which identifier for one source.
///
/// Names are looked up in `traits`, `context.traits` and `properties` of every message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityMapping {
    #[serde(default = "default_email_names")]
    pub email: Vec<String>,
    #[serde(default = "default_phone_names")]
    pub phone: Vec<String>,
    #[serde(default = "default_loyalty_names")]
    pub loyalty_card: Vec<String>,
    /// ISO country (CH, DE, AT, LI, …) for reading this source's phone numbers and postcodes when the data
    /// names none; CH when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_country: Option<String>,
}

fn default_email_names() -> Vec<String> {
    vec!["email".into()]
}
fn default_phone_names() -> Vec<String> {
    vec!["phone".into()]
}
fn default_loyalty_names() -> Vec<String> {
    [
        "loyalty_card",
        "loyaltyCard",
        "loyalty_card_number",
        "card_number",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

impl Default for IdentityMapping {
    fn default() -> Self {
        Self {
            email: default_email_names(),
            phone: default_phone_names(),
            loyalty_card: default_loyalty_names(),
            default_country: None,
        }
    }
}

impl IdentityMapping {
    /// The field names mapped to `kind`; user and anonymous ids come from the message itself.
    pub fn names(&self, kind: IdentifierKind) -> &[String] {
        match kind {
            IdentifierKind::Email => &self.email,
            IdentifierKind::Phone => &self.phone,
            IdentifierKind::LoyaltyCard => &self.loyalty_card,
            IdentifierKind::UserId | IdentifierKind::AnonymousId => &[],
        }
    }
}
