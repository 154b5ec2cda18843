//! Catalogs of items of any type (products, recipes, articles) per brand.
//!
//! A [`CatalogSet`] holds named [`Catalog`]s; items are keyed by
//! ([`ItemKey`]) catalog name + item id. Items are stored behind `Arc` so
//! that building a model snapshot from a catalog set is cheap and updates
//! (upsert/delete) only touch the changed item.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::analysis::Language;
use crate::error::{ImportError, RecsError};

/// Identity of an item across catalogs: (catalog name, item id).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ItemKey {
    /// Catalog name, e.g. `wines`.
    pub catalog: String,
    /// Item id within the catalog.
    pub id: String,
}

impl ItemKey {
    /// Creates a key.
    pub fn new(catalog: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            catalog: catalog.into(),
            id: id.into(),
        }
    }

    /// Parses the `catalog:id` form produced by `Display` (split at the
    /// first colon, so ids may contain colons).
    pub fn parse(text: &str) -> Option<Self> {
        let (catalog, id) = text.split_once(':')?;
        if catalog.is_empty() || id.is_empty() {
            return None;
        }
        Some(Self::new(catalog, id))
    }
}

impl fmt::Display for ItemKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.catalog, self.id)
    }
}

/// A free attribute value: a wine's `grape`, a recipe's `main_ingredients`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttributeValue {
    /// `true`/`false`, e.g. `organic`.
    Bool(bool),
    /// A number, e.g. `vintage` or `alcohol`.
    Number(f64),
    /// A single text value.
    Text(String),
    /// Several text values, e.g. main ingredients.
    List(Vec<String>),
}

impl AttributeValue {
    /// The value(s) as text, one entry per list element.
    pub fn values(&self) -> Vec<String> {
        match self {
            Self::Bool(flag) => vec![flag.to_string()],
            Self::Number(number) => vec![format_number(*number)],
            Self::Text(text) => vec![text.clone()],
            Self::List(list) => list.clone(),
        }
    }
}

fn format_number(number: f64) -> String {
    if number.fract() == 0.0 && number.abs() < 1e15 {
        format!("{number:.0}")
    } else {
        number.to_string()
    }
}

impl From<&str> for AttributeValue {
    fn from(value: &str) -> Self {
        Self::Text(value.to_string())
    }
}

impl From<String> for AttributeValue {
    fn from(value: String) -> Self {
        Self::Text(value)
    }
}

impl From<Vec<&str>> for AttributeValue {
    fn from(values: Vec<&str>) -> Self {
        Self::List(values.into_iter().map(str::to_string).collect())
    }
}

impl From<Vec<String>> for AttributeValue {
    fn from(values: Vec<String>) -> Self {
        Self::List(values)
    }
}

impl From<f64> for AttributeValue {
    fn from(value: f64) -> Self {
        Self::Number(value)
    }
}

impl From<bool> for AttributeValue {
    fn from(value: bool) -> Self {
        Self::Bool(value)
    }
}

fn default_true() -> bool {
    true
}

/// One catalog entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// Id, unique within the catalog.
    pub id: String,
    /// Display title ("Prosecco DOC Extra Dry", "Spargelrisotto").
    pub title: String,
    /// Longer text used for similarity (may be empty).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Landing page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Image URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Price in `currency`; content items usually have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<f64>,
    /// ISO currency code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Whether the customer can get it; unavailable items are never
    /// recommended.
    #[serde(default = "default_true")]
    pub available: bool,
    /// Categories, most specific first is not required; the first one is
    /// the "primary" category used for up-sell and popularity fallbacks.
    #[serde(default)]
    pub categories: Vec<String>,
    /// Free attributes (wine: type, grape, region, sweetness; recipe:
    /// cuisine, course, diet, main_ingredients, occasion).
    #[serde(default)]
    pub attributes: BTreeMap<String, AttributeValue>,
}

impl Item {
    /// A minimal available item.
    pub fn new(id: impl Into<String>, title: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            title: title.into(),
            description: String::new(),
            url: None,
            image: None,
            price: None,
            currency: None,
            available: true,
            categories: Vec::new(),
            attributes: BTreeMap::new(),
        }
    }

    /// Sets the description.
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Sets price and currency.
    pub fn with_price(mut self, price: f64, currency: impl Into<String>) -> Self {
        self.price = Some(price);
        self.currency = Some(currency.into());
        self
    }

    /// Appends a category.
    pub fn with_category(mut self, category: impl Into<String>) -> Self {
        self.categories.push(category.into());
        self
    }

    /// Sets an attribute.
    pub fn with_attribute(
        mut self,
        name: impl Into<String>,
        value: impl Into<AttributeValue>,
    ) -> Self {
        self.attributes.insert(name.into(), value.into());
        self
    }

    /// Sets availability.
    pub fn with_available(mut self, available: bool) -> Self {
        self.available = available;
        self
    }

    /// Sets the URL.
    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// The first category, if any.
    pub fn primary_category(&self) -> Option<&str> {
        self.categories.first().map(String::as_str)
    }

    /// True when two versions of an item differ in what the text index
    /// sees (so the index must be rebuilt); price/availability changes do
    /// not need that.
    pub(crate) fn text_differs(&self, other: &Item) -> bool {
        self.title != other.title
            || self.description != other.description
            || self.categories != other.categories
            || self.attributes != other.attributes
    }
}

/// Descriptive data of a catalog.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CatalogMeta {
    /// Unique catalog name (`wines`, `recipes`).
    pub name: String,
    /// Owning brand (`weinclub`).
    pub brand: String,
    /// Item type (`product`, `content`, `recipe`, `article`, ...).
    pub item_type: String,
    /// Text language for analysis.
    #[serde(default)]
    pub language: Language,
    /// Declared attribute names; attributes seen on items are known too.
    #[serde(default)]
    pub attributes: Vec<String>,
}

impl CatalogMeta {
    /// Creates catalog metadata with automatic language detection.
    pub fn new(
        name: impl Into<String>,
        brand: impl Into<String>,
        item_type: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            brand: brand.into(),
            item_type: item_type.into(),
            language: Language::Auto,
            attributes: Vec::new(),
        }
    }

    /// Sets the language.
    pub fn with_language(mut self, language: Language) -> Self {
        self.language = language;
        self
    }

    /// Declares attribute names (useful before any item exists).
    pub fn with_attributes<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.attributes.extend(names.into_iter().map(Into::into));
        self
    }
}

/// Outcome of importing a stream of parsed items into a catalog.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Items that were new.
    pub inserted: usize,
    /// Items that replaced an existing item with the same id.
    pub updated: usize,
    /// Records that could not be parsed; all other records were kept.
    pub errors: Vec<ImportError>,
}

/// The pseudo-attribute name under which rules can match categories.
pub const CATEGORY_ATTRIBUTE: &str = "category";

/// One catalog: metadata plus items ordered by id (deterministic).
#[derive(Clone, Debug)]
pub struct Catalog {
    meta: CatalogMeta,
    items: BTreeMap<String, Arc<Item>>,
}

impl Catalog {
    /// An empty catalog.
    pub fn new(meta: CatalogMeta) -> Self {
        Self {
            meta,
            items: BTreeMap::new(),
        }
    }

    /// Metadata.
    pub fn meta(&self) -> &CatalogMeta {
        &self.meta
    }

    /// Catalog name.
    pub fn name(&self) -> &str {
        &self.meta.name
    }

    /// Inserts or replaces an item; returns the previous version.
    pub fn upsert(&mut self, item: Item) -> Option<Arc<Item>> {
        self.items.insert(item.id.clone(), Arc::new(item))
    }

    /// Removes an item; returns it if it existed.
    pub fn delete(&mut self, id: &str) -> Option<Arc<Item>> {
        self.items.remove(id)
    }

    /// Looks an item up.
    pub fn get(&self, id: &str) -> Option<&Item> {
        self.items.get(id).map(Arc::as_ref)
    }

    pub(crate) fn get_shared(&self, id: &str) -> Option<&Arc<Item>> {
        self.items.get(id)
    }

    /// Items ordered by id.
    pub fn items(&self) -> impl Iterator<Item = &Item> {
        self.items.values().map(Arc::as_ref)
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when the catalog has no items.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Imports parsed records (e.g. from [`crate::import::CsvItemReader`]):
    /// good records are upserted, bad ones are collected in the summary.
    pub fn import<I>(&mut self, records: I) -> ImportSummary
    where
        I: IntoIterator<Item = Result<Item, ImportError>>,
    {
        let mut summary = ImportSummary::default();
        for record in records {
            match record {
                Ok(item) => {
                    if self.upsert(item).is_some() {
                        summary.updated += 1;
                    } else {
                        summary.inserted += 1;
                    }
                }
                Err(error) => summary.errors.push(error),
            }
        }
        summary
    }

    /// Attribute names rules may refer to: declared ones, those seen on
    /// items, and the `category` pseudo-attribute.
    pub fn known_attributes(&self) -> BTreeSet<String> {
        let mut names: BTreeSet<String> = self.meta.attributes.iter().cloned().collect();
        names.insert(CATEGORY_ATTRIBUTE.to_string());
        for item in self.items.values() {
            names.extend(item.attributes.keys().cloned());
        }
        names
    }

    /// Values seen for an attribute (or for categories), as written.
    pub fn known_values(&self, attribute: &str) -> BTreeSet<String> {
        let mut values = BTreeSet::new();
        for item in self.items.values() {
            if attribute == CATEGORY_ATTRIBUTE {
                values.extend(item.categories.iter().cloned());
            } else if let Some(value) = item.attributes.get(attribute) {
                values.extend(value.values());
            }
        }
        values
    }
}

/// All catalogs of a deployment, ordered by name.
#[derive(Clone, Debug, Default)]
pub struct CatalogSet {
    catalogs: BTreeMap<String, Catalog>,
}

impl CatalogSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a whole catalog.
    pub fn insert(&mut self, catalog: Catalog) -> Option<Catalog> {
        self.catalogs.insert(catalog.name().to_string(), catalog)
    }

    /// Looks a catalog up.
    pub fn get(&self, name: &str) -> Option<&Catalog> {
        self.catalogs.get(name)
    }

    /// Mutable access to a catalog.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Catalog> {
        self.catalogs.get_mut(name)
    }

    /// Catalogs ordered by name.
    pub fn catalogs(&self) -> impl Iterator<Item = &Catalog> {
        self.catalogs.values()
    }

    /// Catalog names ordered.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.catalogs.keys().map(String::as_str)
    }

    /// Looks an item up by key.
    pub fn item(&self, key: &ItemKey) -> Option<&Item> {
        self.catalogs.get(&key.catalog)?.get(&key.id)
    }

    /// Upserts an item into a named catalog.
    pub fn upsert_item(
        &mut self,
        catalog: &str,
        item: Item,
    ) -> Result<Option<Arc<Item>>, RecsError> {
        let target = self
            .catalogs
            .get_mut(catalog)
            .ok_or_else(|| RecsError::UnknownCatalog(catalog.to_string()))?;
        Ok(target.upsert(item))
    }

    /// Deletes an item from a named catalog.
    pub fn delete_item(&mut self, catalog: &str, id: &str) -> Result<Option<Arc<Item>>, RecsError> {
        let target = self
            .catalogs
            .get_mut(catalog)
            .ok_or_else(|| RecsError::UnknownCatalog(catalog.to_string()))?;
        Ok(target.delete(id))
    }

    /// Total number of items over all catalogs.
    pub fn item_count(&self) -> usize {
        self.catalogs.values().map(Catalog::len).sum()
    }
}
