//! BM25F text and attribute index per catalog.
//!
//! Every item becomes a document with four fields: title, description,
//! categories and attributes (field weights configurable). Categories and
//! attribute values are indexed twice: as analysed words (so "Italien"
//! in a wine's region meets "italienisch" in a recipe text only through
//! stems, while "Spargel" meets "Spargelrisotto" through decomposition) and
//! as exact facet terms (`@grape=riesling`) for attribute similarity.
//!
//! BM25 weights are precomputed per (term, item) because query-term
//! frequencies are ~1; postings are stored impact-ordered (highest weight
//! first), so a query can stop after `max_postings_per_term` entries of a
//! very common term, bounding latency. A forward list per item (its terms,
//! best first) serves as the "query" for "similar to X" and to explain
//! which terms matched.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::analysis::{normalize_value, Analyzer, Language, Vocabulary};
use crate::catalog::CATEGORY_ATTRIBUTE;
use crate::items::ItemTable;

/// Text-similarity parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TextConfig {
    /// Title field weight.
    pub title_weight: f32,
    /// Description field weight.
    pub description_weight: f32,
    /// Categories field weight.
    pub category_weight: f32,
    /// Attributes field weight.
    pub attribute_weight: f32,
    /// BM25 k1.
    pub k1: f32,
    /// BM25 b.
    pub b: f32,
    /// Terms of an anchor item used as the query.
    pub max_query_terms: usize,
    /// Postings read per query term (impact-ordered, so the best ones).
    pub max_postings_per_term: usize,
}

impl Default for TextConfig {
    fn default() -> Self {
        Self {
            title_weight: 3.0,
            description_weight: 1.0,
            category_weight: 1.5,
            attribute_weight: 2.0,
            k1: 1.2,
            b: 0.75,
            max_query_terms: 12,
            max_postings_per_term: 300,
        }
    }
}

const FIELDS: usize = 4;

#[derive(Clone, Debug, Default)]
struct CatalogPostings {
    ranges: HashMap<u32, (u32, u32)>,
    postings: Vec<(u32, f32)>,
}

/// The built index (immutable).
#[derive(Debug)]
pub(crate) struct TextIndex {
    analyzer: Analyzer,
    vocabulary: Vocabulary,
    term_ids: HashMap<String, u32>,
    term_display: Vec<String>,
    catalogs: Vec<CatalogPostings>,
    languages: Vec<Language>,
    forward_offsets: Vec<u32>,
    forward: Vec<(u32, f32)>,
    config: TextConfig,
}

/// Term occurrences of one item before weighting: (term, field).
struct Document {
    item: u32,
    catalog: u16,
    occurrences: Vec<(u32, u8)>,
    field_lengths: [u32; FIELDS],
}

struct TermBuilder<'a> {
    analyzer: &'a Analyzer,
    vocabulary: &'a Vocabulary,
    term_ids: HashMap<String, u32>,
    term_display: Vec<String>,
    word_cache: HashMap<(Language, String), Vec<u32>>,
}

impl TermBuilder<'_> {
    fn term_id(&mut self, key: &str, display: &str) -> u32 {
        if let Some(id) = self.term_ids.get(key) {
            return *id;
        }
        let id = self.term_display.len() as u32;
        self.term_ids.insert(key.to_string(), id);
        self.term_display.push(display.to_string());
        id
    }

    fn text_terms(&mut self, text: &str, language: Language, out: &mut Vec<u32>) {
        for word in Analyzer::words(text) {
            let cache_key = (language, word);
            if let Some(ids) = self.word_cache.get(&cache_key) {
                out.extend_from_slice(ids);
                continue;
            }
            let mut terms = Vec::new();
            self.analyzer
                .analyze_word(&cache_key.1, language, Some(self.vocabulary), &mut terms);
            let ids: Vec<u32> = terms
                .iter()
                .map(|term| self.term_id(&term.stem, &term.surface))
                .collect();
            out.extend_from_slice(&ids);
            self.word_cache.insert(cache_key, ids);
        }
    }
}

impl TextIndex {
    pub(crate) fn build(table: &ItemTable, config: TextConfig) -> Self {
        let analyzer = Analyzer::new();
        let mut vocabulary = Vocabulary::new();
        for item in table.items.iter().flatten() {
            vocabulary.insert_text(&item.title);
            vocabulary.insert_text(&item.description);
            for category in &item.categories {
                vocabulary.insert_text(category);
            }
            for value in item.attributes.values() {
                for value in value.values() {
                    vocabulary.insert_text(&value);
                }
            }
        }
        let languages: Vec<Language> = table.catalogs.iter().map(|meta| meta.language).collect();
        let mut builder = TermBuilder {
            analyzer: &analyzer,
            vocabulary: &vocabulary,
            term_ids: HashMap::new(),
            term_display: Vec::new(),
            word_cache: HashMap::new(),
        };
        let mut documents = Vec::new();
        for (index, item) in table.items.iter().enumerate() {
            let Some(item) = item else { continue };
            let catalog = table.catalog_of[index];
            let language = Analyzer::resolve_language(
                languages
                    .get(usize::from(catalog))
                    .copied()
                    .unwrap_or_default(),
                &format!("{} {}", item.title, item.description),
            );
            let mut fields: [Vec<u32>; FIELDS] = Default::default();
            builder.text_terms(&item.title, language, &mut fields[0]);
            builder.text_terms(&item.description, language, &mut fields[1]);
            for category in &item.categories {
                builder.text_terms(category, language, &mut fields[2]);
                let facet = format!("@{CATEGORY_ATTRIBUTE}={}", normalize_value(category));
                let display = format!("{CATEGORY_ATTRIBUTE}: {category}");
                fields[2].push(builder.term_id(&facet, &display));
            }
            for (name, value) in &item.attributes {
                for value in value.values() {
                    builder.text_terms(&value, language, &mut fields[3]);
                    let facet = format!("@{name}={}", normalize_value(&value));
                    let display = format!("{name}: {value}");
                    fields[3].push(builder.term_id(&facet, &display));
                }
            }
            let mut occurrences = Vec::new();
            let mut field_lengths = [0u32; FIELDS];
            for (field, terms) in fields.iter().enumerate() {
                field_lengths[field] = terms.len() as u32;
                occurrences.extend(terms.iter().map(|term| (*term, field as u8)));
            }
            documents.push(Document {
                item: index as u32,
                catalog,
                occurrences,
                field_lengths,
            });
        }
        let TermBuilder {
            term_ids,
            term_display,
            ..
        } = builder;
        let (catalogs, forward_offsets, forward) = weigh(&documents, table, &config);
        Self {
            analyzer,
            vocabulary,
            term_ids,
            term_display,
            catalogs,
            languages,
            forward_offsets,
            forward,
            config,
        }
    }

    /// Best terms of an item (its own weights), as a query.
    pub(crate) fn item_terms(&self, item: u32) -> &[(u32, f32)] {
        let index = item as usize;
        match (
            self.forward_offsets.get(index),
            self.forward_offsets.get(index + 1),
        ) {
            (Some(&start), Some(&end)) => &self.forward[start as usize..end as usize],
            _ => &[],
        }
    }

    /// Query of an anchor item: top terms, weights scaled to max 1.
    pub(crate) fn item_query(&self, item: u32) -> Vec<(u32, f32)> {
        let terms = self.item_terms(item);
        let top = &terms[..terms.len().min(self.config.max_query_terms)];
        let max = top
            .first()
            .map_or(1.0, |(_, weight)| weight.max(f32::EPSILON));
        top.iter()
            .map(|(term, weight)| (*term, weight / max))
            .collect()
    }

    /// Analyses free text into a query against the index vocabulary.
    pub(crate) fn text_query(&self, text: &str, catalog: Option<u16>) -> Vec<(u32, f32)> {
        let language = catalog
            .and_then(|catalog| self.languages.get(usize::from(catalog)).copied())
            .unwrap_or_default();
        let mut query: Vec<(u32, f32)> = Vec::new();
        for term in self
            .analyzer
            .analyze(text, language, Some(&self.vocabulary))
        {
            if let Some(id) = self.term_ids.get(&term.stem) {
                if !query.iter().any(|(existing, _)| existing == id) {
                    query.push((*id, if term.derived { 0.7 } else { 1.0 }));
                }
            }
        }
        query
    }

    /// Adds `weight × BM25` of each matching item of a catalog.
    pub(crate) fn accumulate(
        &self,
        catalog: u16,
        query: &[(u32, f32)],
        mut add: impl FnMut(u32, f32),
    ) {
        let Some(postings) = self.catalogs.get(usize::from(catalog)) else {
            return;
        };
        for (term, query_weight) in query {
            let Some(&(start, end)) = postings.ranges.get(term) else {
                continue;
            };
            let end = end.min(start + self.config.max_postings_per_term as u32);
            for &(item, weight) in &postings.postings[start as usize..end as usize] {
                add(item, query_weight * weight);
            }
        }
    }

    /// Terms of `query` that `item` contains, by contribution.
    pub(crate) fn matching_terms(
        &self,
        query: &[(u32, f32)],
        item: u32,
        limit: usize,
    ) -> Vec<String> {
        let terms = self.item_terms(item);
        let mut matches: Vec<(f32, u32)> = query
            .iter()
            .filter_map(|(term, query_weight)| {
                terms
                    .iter()
                    .find(|(candidate, _)| candidate == term)
                    .map(|(_, weight)| (query_weight * weight, *term))
            })
            .collect();
        matches.sort_by(|left, right| right.0.total_cmp(&left.0).then(left.1.cmp(&right.1)));
        matches
            .into_iter()
            .take(limit)
            .filter_map(|(_, term)| self.term_display.get(term as usize).cloned())
            .collect()
    }

    pub(crate) fn term_count(&self) -> usize {
        self.term_display.len()
    }

    pub(crate) fn approx_memory_bytes(&self) -> usize {
        let postings: usize = self
            .catalogs
            .iter()
            .map(|catalog| catalog.postings.capacity() * 8 + catalog.ranges.capacity() * 16)
            .sum();
        let terms: usize = self
            .term_display
            .iter()
            .map(|term| term.capacity() * 2 + 24 + 40)
            .sum();
        postings
            + terms
            + self.forward.capacity() * 8
            + self.forward_offsets.capacity() * 4
            + self.vocabulary.len() * 48
    }
}

type Weighed = (Vec<CatalogPostings>, Vec<u32>, Vec<(u32, f32)>);

fn weigh(documents: &[Document], table: &ItemTable, config: &TextConfig) -> Weighed {
    let catalog_count = table.catalogs.len();
    let field_weights = [
        config.title_weight,
        config.description_weight,
        config.category_weight,
        config.attribute_weight,
    ];
    let mut document_counts = vec![0u32; catalog_count];
    let mut length_sums = vec![[0f64; FIELDS]; catalog_count];
    let mut document_frequency: Vec<HashMap<u32, u32>> = vec![HashMap::new(); catalog_count];
    // Per-document term → per-field frequencies, reused below.
    let mut per_document: Vec<Vec<(u32, [u16; FIELDS])>> = Vec::with_capacity(documents.len());
    for document in documents {
        let catalog = usize::from(document.catalog);
        document_counts[catalog] += 1;
        for (sum, length) in length_sums[catalog].iter_mut().zip(document.field_lengths) {
            *sum += f64::from(length);
        }
        let mut occurrences = document.occurrences.clone();
        occurrences.sort_unstable();
        let mut frequencies: Vec<(u32, [u16; FIELDS])> = Vec::new();
        for (term, field) in occurrences {
            match frequencies.last_mut() {
                Some((last, counts)) if *last == term => {
                    counts[usize::from(field)] = counts[usize::from(field)].saturating_add(1);
                }
                _ => {
                    let mut counts = [0u16; FIELDS];
                    counts[usize::from(field)] = 1;
                    frequencies.push((term, counts));
                }
            }
        }
        for (term, _) in &frequencies {
            *document_frequency[catalog].entry(*term).or_insert(0) += 1;
        }
        per_document.push(frequencies);
    }
    let average_lengths: Vec<[f32; FIELDS]> = (0..catalog_count)
        .map(|catalog| {
            let count = f64::from(document_counts[catalog].max(1));
            let mut averages = [1.0f32; FIELDS];
            for field in 0..FIELDS {
                averages[field] = ((length_sums[catalog][field] / count) as f32).max(1.0);
            }
            averages
        })
        .collect();

    let mut forward_lists: Vec<Vec<(u32, f32)>> = vec![Vec::new(); table.len()];
    let mut catalog_entries: Vec<Vec<(u32, u32, f32)>> = vec![Vec::new(); catalog_count];
    for (document, frequencies) in documents.iter().zip(&per_document) {
        let catalog = usize::from(document.catalog);
        let count = document_counts[catalog] as f32;
        let mut list = Vec::with_capacity(frequencies.len());
        for (term, counts) in frequencies {
            let mut weighted_tf = 0.0f32;
            for field in 0..FIELDS {
                if counts[field] == 0 {
                    continue;
                }
                let length_ratio =
                    document.field_lengths[field] as f32 / average_lengths[catalog][field];
                let normaliser = 1.0 - config.b + config.b * length_ratio;
                weighted_tf +=
                    field_weights[field] * f32::from(counts[field]) / normaliser.max(0.05);
            }
            let frequency = document_frequency[catalog].get(term).copied().unwrap_or(1) as f32;
            let idf = (1.0 + (count - frequency + 0.5) / (frequency + 0.5)).ln();
            let weight = idf * weighted_tf * (config.k1 + 1.0) / (weighted_tf + config.k1);
            if weight > 0.0 {
                list.push((*term, weight));
                catalog_entries[catalog].push((*term, document.item, weight));
            }
        }
        list.sort_by(|left, right| right.1.total_cmp(&left.1).then(left.0.cmp(&right.0)));
        forward_lists[document.item as usize] = list;
    }
    let catalogs = catalog_entries
        .into_iter()
        .map(|mut entries| {
            entries.sort_by(|left, right| {
                left.0
                    .cmp(&right.0)
                    .then(right.2.total_cmp(&left.2))
                    .then(left.1.cmp(&right.1))
            });
            let mut postings = CatalogPostings {
                ranges: HashMap::new(),
                postings: Vec::with_capacity(entries.len()),
            };
            let mut start = 0u32;
            for (position, (term, item, weight)) in entries.iter().enumerate() {
                postings.postings.push((*item, *weight));
                let is_last = entries.get(position + 1).is_none_or(|next| next.0 != *term);
                if is_last {
                    postings.ranges.insert(*term, (start, position as u32 + 1));
                    start = position as u32 + 1;
                }
            }
            postings
        })
        .collect();
    let mut forward_offsets = Vec::with_capacity(forward_lists.len() + 1);
    let mut forward = Vec::new();
    forward_offsets.push(0u32);
    for list in forward_lists {
        forward.extend(list);
        forward_offsets.push(forward.len() as u32);
    }
    (catalogs, forward_offsets, forward)
}
