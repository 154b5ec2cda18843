//! Compact item table of a model snapshot: interned ids (`u32`), catalog
//! index, availability, price, and interned facets (attribute = value and
//! category pairs) used by pairing rules, up-sell and diversity.

use std::collections::HashMap;
use std::sync::Arc;

use crate::analysis::normalize_value;
use crate::catalog::{CatalogMeta, CatalogSet, Item, ItemKey, CATEGORY_ATTRIBUTE};

/// Marker for "no facet" / "no catalog".
pub(crate) const NONE: u32 = u32::MAX;

/// Append-only `(catalog, id)` → `u32` interner shared by a model lineage,
/// so indices in interaction logs and behaviour data stay valid when items
/// are added or deleted.
#[derive(Clone, Debug, Default)]
pub(crate) struct Interner {
    ids: HashMap<ItemKey, u32>,
    keys: Vec<ItemKey>,
}

impl Interner {
    pub(crate) fn intern(&mut self, key: &ItemKey) -> u32 {
        if let Some(index) = self.ids.get(key) {
            return *index;
        }
        let index = self.keys.len() as u32;
        self.ids.insert(key.clone(), index);
        self.keys.push(key.clone());
        index
    }

    pub(crate) fn get(&self, key: &ItemKey) -> Option<u32> {
        self.ids.get(key).copied()
    }

    pub(crate) fn key(&self, index: u32) -> Option<&ItemKey> {
        self.keys.get(index as usize)
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    fn approx_memory_bytes(&self) -> usize {
        let strings: usize = self
            .keys
            .iter()
            .map(|key| key.catalog.capacity() + key.id.capacity())
            .sum();
        // Keys are stored twice (map and vector) plus map overhead.
        2 * strings + self.keys.capacity() * 48 + self.ids.capacity() * (48 + 4 + 8)
    }
}

/// Interned facets: (attribute, normalised value) → id.
#[derive(Clone, Debug, Default)]
pub(crate) struct Facets {
    attribute_ids: HashMap<String, u32>,
    attribute_names: Vec<String>,
    ids: HashMap<(u32, String), u32>,
    /// Attribute id per facet.
    pub(crate) attribute_of: Vec<u32>,
    /// Value as first written, per facet (for reasons).
    pub(crate) display: Vec<String>,
}

impl Facets {
    fn intern(&mut self, attribute: &str, value: &str) -> Option<u32> {
        let normalised = normalize_value(value);
        if normalised.is_empty() {
            return None;
        }
        let attribute_id = match self.attribute_ids.get(attribute) {
            Some(id) => *id,
            None => {
                let id = self.attribute_names.len() as u32;
                self.attribute_ids.insert(attribute.to_string(), id);
                self.attribute_names.push(attribute.to_string());
                id
            }
        };
        let key = (attribute_id, normalised);
        if let Some(id) = self.ids.get(&key) {
            return Some(*id);
        }
        let id = self.attribute_of.len() as u32;
        self.ids.insert(key, id);
        self.attribute_of.push(attribute_id);
        self.display.push(value.trim().to_string());
        Some(id)
    }

    /// Looks a facet up by attribute name and (unnormalised) value.
    pub(crate) fn get(&self, attribute: &str, value: &str) -> Option<u32> {
        let attribute_id = *self.attribute_ids.get(attribute)?;
        self.ids
            .get(&(attribute_id, normalize_value(value)))
            .copied()
    }

    pub(crate) fn attribute_name(&self, facet: u32) -> &str {
        self.attribute_of
            .get(facet as usize)
            .and_then(|attribute| self.attribute_names.get(*attribute as usize))
            .map_or("", String::as_str)
    }

    pub(crate) fn value(&self, facet: u32) -> &str {
        self.display.get(facet as usize).map_or("", String::as_str)
    }

    pub(crate) fn len(&self) -> usize {
        self.attribute_of.len()
    }
}

/// Per-item columns of a snapshot.
#[derive(Clone, Debug)]
pub(crate) struct ItemTable {
    pub(crate) interner: Interner,
    pub(crate) catalogs: Vec<CatalogMeta>,
    pub(crate) catalog_index: HashMap<String, u16>,
    /// `None` for ids known only from interactions or deleted items.
    pub(crate) items: Vec<Option<Arc<Item>>>,
    pub(crate) catalog_of: Vec<u16>,
    /// Live and available (never recommend otherwise).
    pub(crate) available: Vec<bool>,
    /// Price or NaN.
    pub(crate) price: Vec<f32>,
    /// Facet id of the first category or [`NONE`].
    pub(crate) primary_category: Vec<u32>,
    /// Sorted facet ids (categories and attribute values).
    pub(crate) facets: Vec<Box<[u32]>>,
    pub(crate) facet_names: Facets,
}

impl ItemTable {
    /// Builds the table for every interned key (the interner must already
    /// contain all catalog items).
    pub(crate) fn build(catalogs: &CatalogSet, interner: &Interner) -> Self {
        let mut table = Self {
            interner: interner.clone(),
            catalogs: catalogs
                .catalogs()
                .map(|catalog| catalog.meta().clone())
                .collect(),
            catalog_index: HashMap::new(),
            items: Vec::with_capacity(interner.len()),
            catalog_of: Vec::with_capacity(interner.len()),
            available: Vec::with_capacity(interner.len()),
            price: Vec::with_capacity(interner.len()),
            primary_category: Vec::with_capacity(interner.len()),
            facets: Vec::with_capacity(interner.len()),
            facet_names: Facets::default(),
        };
        for (index, meta) in table.catalogs.iter().enumerate() {
            table.catalog_index.insert(meta.name.clone(), index as u16);
        }
        for key in &interner.keys {
            let catalog_position = table.catalog_index.get(&key.catalog).copied();
            let item = catalog_position
                .and_then(|_| catalogs.get(&key.catalog))
                .and_then(|catalog| catalog.get_shared(&key.id))
                .cloned();
            match (item, catalog_position) {
                (Some(item), Some(catalog)) => {
                    let mut facets = Vec::new();
                    let mut primary = NONE;
                    for (position, category) in item.categories.iter().enumerate() {
                        if let Some(facet) = table.facet_names.intern(CATEGORY_ATTRIBUTE, category)
                        {
                            if position == 0 {
                                primary = facet;
                            }
                            facets.push(facet);
                        }
                    }
                    for (name, value) in &item.attributes {
                        for value in value.values() {
                            if let Some(facet) = table.facet_names.intern(name, &value) {
                                facets.push(facet);
                            }
                        }
                    }
                    facets.sort_unstable();
                    facets.dedup();
                    table.catalog_of.push(catalog);
                    table.available.push(item.available);
                    table
                        .price
                        .push(item.price.map_or(f32::NAN, |price| price as f32));
                    table.primary_category.push(primary);
                    table.facets.push(facets.into_boxed_slice());
                    table.items.push(Some(item));
                }
                _ => {
                    table.catalog_of.push(u16::MAX);
                    table.available.push(false);
                    table.price.push(f32::NAN);
                    table.primary_category.push(NONE);
                    table.facets.push(Box::new([]));
                    table.items.push(None);
                }
            }
        }
        table
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn key(&self, index: u32) -> Option<&ItemKey> {
        self.interner.key(index)
    }

    pub(crate) fn item(&self, index: u32) -> Option<&Arc<Item>> {
        self.items.get(index as usize).and_then(Option::as_ref)
    }

    pub(crate) fn catalog(&self, name: &str) -> Option<u16> {
        self.catalog_index.get(name).copied()
    }

    pub(crate) fn catalog_name(&self, index: u16) -> &str {
        self.catalogs
            .get(usize::from(index))
            .map_or("", |meta| meta.name.as_str())
    }

    /// Live (in a catalog) and available.
    pub(crate) fn is_available(&self, index: u32) -> bool {
        self.available.get(index as usize).copied().unwrap_or(false)
    }

    pub(crate) fn has_facet(&self, index: u32, facet: u32) -> bool {
        self.facets
            .get(index as usize)
            .is_some_and(|facets| facets.binary_search(&facet).is_ok())
    }

    /// Jaccard similarity of two items' facet sets.
    pub(crate) fn facet_jaccard(&self, left: u32, right: u32) -> f32 {
        let (Some(left), Some(right)) = (
            self.facets.get(left as usize),
            self.facets.get(right as usize),
        ) else {
            return 0.0;
        };
        if left.is_empty() || right.is_empty() {
            return 0.0;
        }
        let (mut i, mut j, mut shared) = (0, 0, 0usize);
        while i < left.len() && j < right.len() {
            match left[i].cmp(&right[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    shared += 1;
                    i += 1;
                    j += 1;
                }
            }
        }
        shared as f32 / (left.len() + right.len() - shared) as f32
    }

    pub(crate) fn approx_memory_bytes(&self) -> usize {
        let facets: usize = self.facets.iter().map(|facets| facets.len() * 4 + 16).sum();
        let item_data: usize = self
            .items
            .iter()
            .flatten()
            .map(|item| {
                std::mem::size_of::<Item>()
                    + item.title.capacity()
                    + item.description.capacity()
                    + item.url.as_ref().map_or(0, String::capacity)
                    + item.image.as_ref().map_or(0, String::capacity)
                    + item
                        .categories
                        .iter()
                        .map(|category| category.capacity() + 24)
                        .sum::<usize>()
                    + item
                        .attributes
                        .iter()
                        .map(|(name, value)| {
                            name.len() + 64 + value.values().iter().map(String::len).sum::<usize>()
                        })
                        .sum::<usize>()
            })
            .sum();
        self.interner.approx_memory_bytes()
            + facets
            + item_data
            + self.len() * (8 + 2 + 1 + 4 + 4)
            + self.facet_names.len() * 64
    }
}
