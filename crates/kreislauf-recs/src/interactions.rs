//! Behavioural input: who did what with which item when.
//!
//! [`Interaction`] is the readable form callers pass in; the
//! [`InteractionLog`] stores them column-wise with interned ids (17 bytes
//! per interaction) so that ten million of them fit comfortably.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::catalog::ItemKey;

/// What a profile did with an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InteractionKind {
    /// Bought it.
    Purchase,
    /// Put it into the cart.
    AddToCart,
    /// Clicked it (e.g. a recipe in a newsletter).
    Click,
    /// Viewed its page.
    View,
    /// Engaged with content (read to the end, saved, shared).
    Engagement,
}

impl InteractionKind {
    /// All kinds, in declaration order.
    pub const ALL: [InteractionKind; 5] = [
        InteractionKind::Purchase,
        InteractionKind::AddToCart,
        InteractionKind::Click,
        InteractionKind::View,
        InteractionKind::Engagement,
    ];

    /// Stable name used in CSV files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Purchase => "purchase",
            Self::AddToCart => "add_to_cart",
            Self::Click => "click",
            Self::View => "view",
            Self::Engagement => "engagement",
        }
    }

    pub(crate) fn code(self) -> u8 {
        match self {
            Self::Purchase => 0,
            Self::AddToCart => 1,
            Self::Click => 2,
            Self::View => 3,
            Self::Engagement => 4,
        }
    }
}

impl fmt::Display for InteractionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for InteractionKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| format!("unknown interaction kind \"{text}\""))
    }
}

/// One behavioural event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interaction {
    /// Profile id.
    pub profile: String,
    /// Item.
    pub item: ItemKey,
    /// What happened.
    pub kind: InteractionKind,
    /// When.
    pub timestamp: DateTime<Utc>,
}

/// How much each kind counts as evidence of interest.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct KindWeights {
    /// Purchase weight.
    pub purchase: f32,
    /// Add-to-cart weight.
    pub add_to_cart: f32,
    /// Click weight.
    pub click: f32,
    /// View weight.
    pub view: f32,
    /// Engagement weight.
    pub engagement: f32,
}

impl Default for KindWeights {
    fn default() -> Self {
        Self {
            purchase: 1.0,
            add_to_cart: 0.6,
            click: 0.5,
            view: 0.2,
            engagement: 0.6,
        }
    }
}

impl KindWeights {
    /// Weight of a kind.
    pub fn weight(&self, kind: InteractionKind) -> f32 {
        match kind {
            InteractionKind::Purchase => self.purchase,
            InteractionKind::AddToCart => self.add_to_cart,
            InteractionKind::Click => self.click,
            InteractionKind::View => self.view,
            InteractionKind::Engagement => self.engagement,
        }
    }

    pub(crate) fn by_code(&self) -> [f32; 5] {
        InteractionKind::ALL.map(|kind| self.weight(kind))
    }
}

/// Dense index of an item inside a model lineage (interned
/// `(catalog, id)`); stays valid across snapshots built from the same
/// [`crate::ModelBuilder`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItemIdx(pub(crate) u32);

impl ItemIdx {
    /// The raw index.
    pub fn get(self) -> u32 {
        self.0
    }
}

/// Column-wise store of interactions with interned profile and item ids.
#[derive(Clone, Debug, Default)]
pub struct InteractionLog {
    profile_ids: HashMap<String, u32>,
    profile_names: Vec<String>,
    pub(crate) profiles: Vec<u32>,
    pub(crate) items: Vec<u32>,
    pub(crate) kinds: Vec<u8>,
    pub(crate) timestamps: Vec<i64>,
}

impl InteractionLog {
    /// Interns a profile id.
    pub fn profile_index(&mut self, profile: &str) -> u32 {
        if let Some(index) = self.profile_ids.get(profile) {
            return *index;
        }
        let index = u32::try_from(self.profile_names.len()).unwrap_or(u32::MAX);
        self.profile_ids.insert(profile.to_string(), index);
        self.profile_names.push(profile.to_string());
        index
    }

    /// Appends an interaction by ids (fast path for generators and
    /// storage adapters that already have interned ids). Anonymous
    /// profiles may use any `u32` not returned by `profile_index`.
    pub fn push(
        &mut self,
        profile: u32,
        item: ItemIdx,
        kind: InteractionKind,
        timestamp_secs: i64,
    ) {
        self.profiles.push(profile);
        self.items.push(item.0);
        self.kinds.push(kind.code());
        self.timestamps.push(timestamp_secs);
    }

    /// Number of interactions.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Reserves room for more interactions.
    pub fn reserve(&mut self, additional: usize) {
        self.profiles.reserve(additional);
        self.items.reserve(additional);
        self.kinds.reserve(additional);
        self.timestamps.reserve(additional);
    }

    /// Latest timestamp (seconds), if any.
    pub fn latest_timestamp(&self) -> Option<i64> {
        self.timestamps.iter().copied().max()
    }

    /// Approximate heap bytes.
    pub fn approx_memory_bytes(&self) -> usize {
        self.profiles.capacity() * 4
            + self.items.capacity() * 4
            + self.kinds.capacity()
            + self.timestamps.capacity() * 8
            + self
                .profile_names
                .iter()
                .map(|name| name.capacity() + 24 + 32)
                .sum::<usize>()
    }
}
