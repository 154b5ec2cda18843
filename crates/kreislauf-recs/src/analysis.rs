//! German-aware text analysis.
//!
//! Pipeline: NFC → lower-case → fold (ä→ae, ö→oe, ü→ue, ß→ss, other
//! diacritics stripped: "Rosé"→"rose") → split into words (hyphenated words
//! yield their parts *and* the joined word) → stop words removed → Snowball
//! stemming (German or English) → optional compound decomposition against a
//! [`Vocabulary`] of words seen in the index, so "Weißweinschorle" also
//! yields "weisswein" and "schorle", and "Spargelrisotto" yields "risotto".
//!
//! Folding happens *before* stemming so that "Käse" and "Kaese" (how people
//! type without umlauts) produce the same term.

use std::collections::HashSet;

use rust_stemmers::{Algorithm, Stemmer};
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

/// Text language of a catalog.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Language {
    /// German.
    #[serde(rename = "de")]
    German,
    /// English.
    #[serde(rename = "en")]
    English,
    /// Detect per text from stop-word counts.
    #[default]
    #[serde(rename = "auto")]
    Auto,
}

const GERMAN_STOPWORDS: &[&str] = &[
    "aber", "als", "am", "an", "auch", "auf", "aus", "bei", "bis", "das", "dass", "dem", "den",
    "der", "des", "die", "dazu", "durch", "ein", "eine", "einem", "einen", "einer", "eines", "er",
    "es", "fuer", "hat", "im", "in", "ist", "ihr", "mit", "nach", "nicht", "noch", "oder", "sich",
    "sie", "sind", "so", "ueber", "um", "und", "unter", "vom", "von", "vor", "war", "wie", "wird",
    "zu", "zum", "zur", "wir", "sehr", "ganz",
];

const ENGLISH_STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "in", "is", "it", "its",
    "of", "on", "or", "that", "the", "this", "to", "was", "with", "very", "into", "your", "our",
];

/// Parts shorter than this are never produced by compound decomposition
/// (avoids splitting off "ei", "tee" and similar noise).
const MIN_COMPOUND_PART: usize = 4;

/// Folds one lower-cased string: umlauts to their two-letter forms, ß to
/// ss, other combining marks removed.
pub fn fold(text: &str) -> String {
    let mut folded = String::with_capacity(text.len() + 4);
    for character in text.nfc().flat_map(char::to_lowercase) {
        match character {
            'ä' => folded.push_str("ae"),
            'ö' => folded.push_str("oe"),
            'ü' => folded.push_str("ue"),
            'ß' => folded.push_str("ss"),
            other if other.is_ascii() => folded.push(other),
            other => {
                // Strip accents of other letters ("é" → "e").
                for part in std::iter::once(other).nfd() {
                    if !is_combining_mark(part) {
                        folded.push(part);
                    }
                }
            }
        }
    }
    folded
}

fn is_combining_mark(character: char) -> bool {
    matches!(character as u32, 0x0300..=0x036F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF)
}

/// Normalises an attribute value / category for exact matching (fold and
/// collapse whitespace) without stemming.
pub fn normalize_value(text: &str) -> String {
    fold(text).split_whitespace().collect::<Vec<_>>().join(" ")
}

/// One analysed term.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Term {
    /// Index key: the stem of the folded word.
    pub stem: String,
    /// The folded word it came from (for display).
    pub surface: String,
    /// True when produced by compound decomposition or hyphen splitting.
    pub derived: bool,
}

/// Words seen in the indexed corpus; compounds are split only into parts
/// that are known here (this keeps decomposition precise without a
/// dictionary).
#[derive(Clone, Debug, Default)]
pub struct Vocabulary {
    words: HashSet<String>,
}

impl Vocabulary {
    /// An empty vocabulary.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a folded word (as produced by [`Analyzer::words`]).
    pub fn insert(&mut self, word: &str) {
        if word.chars().count() >= MIN_COMPOUND_PART && word.chars().all(char::is_alphabetic) {
            self.words.insert(word.to_string());
        }
    }

    /// Adds all words of a text.
    pub fn insert_text(&mut self, text: &str) {
        for word in Analyzer::words(text) {
            self.insert(&word);
        }
    }

    /// True when the folded word is known.
    pub fn contains(&self, word: &str) -> bool {
        self.words.contains(word)
    }

    /// Number of words.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Known part, also accepting a trailing linking element (Fugen-s,
    /// -n, -en, -es, -e: "Rinder-", "Hochzeits-").
    fn known_prefix(&self, prefix: &str) -> Option<String> {
        if self.contains(prefix) {
            return Some(prefix.to_string());
        }
        for linking in ["es", "en", "s", "n", "e"] {
            if let Some(stripped) = prefix.strip_suffix(linking) {
                if stripped.chars().count() >= MIN_COMPOUND_PART && self.contains(stripped) {
                    return Some(stripped.to_string());
                }
            }
        }
        None
    }

    /// Splits a folded compound into known parts (not including the word
    /// itself). German compounds are head-final, so the longest known
    /// suffix is tried first; the remainder is resolved recursively.
    pub fn decompose(&self, word: &str) -> Vec<String> {
        let mut parts = Vec::new();
        self.decompose_into(word, &mut parts, 0);
        parts.sort();
        parts.dedup();
        parts.retain(|part| part != word);
        parts
    }

    fn decompose_into(&self, word: &str, parts: &mut Vec<String>, depth: usize) {
        let boundaries: Vec<usize> = word.char_indices().map(|(index, _)| index).collect();
        let length = boundaries.len();
        if depth > 4 || length < 2 * MIN_COMPOUND_PART {
            return;
        }
        // Longest known head first.
        for &split in &boundaries[MIN_COMPOUND_PART..=length - MIN_COMPOUND_PART] {
            let (prefix, head) = word.split_at(split);
            if self.contains(head) {
                parts.push(head.to_string());
                match self.known_prefix(prefix) {
                    Some(known) => {
                        self.decompose_into(&known, parts, depth + 1);
                        parts.push(known);
                    }
                    None => self.decompose_into(prefix, parts, depth + 1),
                }
                return;
            }
        }
        // No known head: take the longest known modifier.
        for &split in boundaries[MIN_COMPOUND_PART..=length - MIN_COMPOUND_PART]
            .iter()
            .rev()
        {
            let (prefix, rest) = word.split_at(split);
            if let Some(known) = self.known_prefix(prefix) {
                parts.push(known);
                self.decompose_into(rest, parts, depth + 1);
                return;
            }
        }
    }
}

/// Stateless analyser holding the Snowball stemmers.
pub struct Analyzer {
    german: Stemmer,
    english: Stemmer,
}

impl Default for Analyzer {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Analyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Analyzer")
    }
}

impl Analyzer {
    /// Creates the analyser.
    pub fn new() -> Self {
        Self {
            german: Stemmer::create(Algorithm::German),
            english: Stemmer::create(Algorithm::English),
        }
    }

    /// Folded words of a text; hyphenated words yield their parts and the
    /// joined word ("Weißwein-Schorle" → weisswein, schorle,
    /// weissweinschorle). Stop words are kept here.
    pub fn words(text: &str) -> Vec<String> {
        let folded = fold(text);
        let mut words = Vec::new();
        for chunk in
            folded.split(|character: char| !(character.is_alphanumeric() || character == '-'))
        {
            let pieces: Vec<&str> = chunk.split('-').filter(|piece| !piece.is_empty()).collect();
            match pieces.len() {
                0 => {}
                1 => words.push(pieces[0].to_string()),
                _ => {
                    words.extend(pieces.iter().map(|piece| piece.to_string()));
                    words.push(pieces.concat());
                }
            }
        }
        words
    }

    /// Guesses German vs English from stop-word hits (German on a tie,
    /// the platform's home market).
    pub fn detect_language(text: &str) -> Language {
        let mut german = 0usize;
        let mut english = 0usize;
        for word in Self::words(text) {
            if GERMAN_STOPWORDS.contains(&word.as_str()) {
                german += 1;
            }
            if ENGLISH_STOPWORDS.contains(&word.as_str()) {
                english += 1;
            }
        }
        if english > german {
            Language::English
        } else {
            Language::German
        }
    }

    /// Resolves `Auto` for a given text.
    pub fn resolve_language(language: Language, text: &str) -> Language {
        match language {
            Language::Auto => Self::detect_language(text),
            fixed => fixed,
        }
    }

    /// True for stop words of the language.
    pub fn is_stopword(word: &str, language: Language) -> bool {
        match language {
            Language::English => ENGLISH_STOPWORDS.contains(&word),
            Language::German => GERMAN_STOPWORDS.contains(&word),
            Language::Auto => GERMAN_STOPWORDS.contains(&word) || ENGLISH_STOPWORDS.contains(&word),
        }
    }

    /// Stems one folded word.
    pub fn stem(&self, word: &str, language: Language) -> String {
        if word.chars().any(|character| character.is_ascii_digit()) {
            return word.to_string();
        }
        match language {
            Language::English => self.english.stem(word).into_owned(),
            _ => self.german.stem(word).into_owned(),
        }
    }

    /// Full analysis of a text. With a vocabulary, compounds are also
    /// decomposed into known parts (marked `derived`).
    pub fn analyze(
        &self,
        text: &str,
        language: Language,
        vocabulary: Option<&Vocabulary>,
    ) -> Vec<Term> {
        let language = Self::resolve_language(language, text);
        let mut terms = Vec::new();
        for word in Self::words(text) {
            self.analyze_word(&word, language, vocabulary, &mut terms);
        }
        terms
    }

    /// Analysis of one folded word (see [`Analyzer::analyze`]).
    pub fn analyze_word(
        &self,
        word: &str,
        language: Language,
        vocabulary: Option<&Vocabulary>,
        out: &mut Vec<Term>,
    ) {
        if word.chars().count() < 2 || Self::is_stopword(word, language) {
            return;
        }
        out.push(Term {
            stem: self.stem(word, language),
            surface: word.to_string(),
            derived: false,
        });
        if let Some(vocabulary) = vocabulary {
            for part in vocabulary.decompose(word) {
                out.push(Term {
                    stem: self.stem(&part, language),
                    surface: part,
                    derived: true,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stems(analyzer: &Analyzer, text: &str, vocabulary: Option<&Vocabulary>) -> Vec<String> {
        analyzer
            .analyze(text, Language::German, vocabulary)
            .into_iter()
            .map(|term| term.stem)
            .collect()
    }

    #[test]
    fn umlaut_folding_makes_kaese_and_kaese_equal() {
        let analyzer = Analyzer::new();
        assert_eq!(fold("Käse"), "kaese");
        assert_eq!(fold("Weißwein"), "weisswein");
        assert_eq!(fold("Rosé"), "rose");
        assert_eq!(
            stems(&analyzer, "Käse", None),
            stems(&analyzer, "Kaese", None)
        );
        assert_eq!(
            stems(&analyzer, "Käsefondue", None),
            stems(&analyzer, "KAESEFONDUE", None)
        );
    }

    #[test]
    fn german_stemming_conflates_plural() {
        let analyzer = Analyzer::new();
        assert_eq!(
            stems(&analyzer, "Weine", None),
            stems(&analyzer, "Wein", None)
        );
        assert_eq!(
            stems(&analyzer, "Tomaten", None),
            stems(&analyzer, "Tomate", None)
        );
    }

    #[test]
    fn english_stemming_and_detection() {
        let analyzer = Analyzer::new();
        assert_eq!(
            Analyzer::detect_language("a crisp wine with the taste of apples"),
            Language::English
        );
        assert_eq!(
            Analyzer::detect_language("ein frischer Wein mit Apfelnoten und der Frucht"),
            Language::German
        );
        let terms = analyzer.analyze("Grilled vegetables and the wines", Language::Auto, None);
        let stems: Vec<_> = terms.iter().map(|term| term.stem.as_str()).collect();
        assert_eq!(stems, vec!["grill", "veget", "wine"]);
    }

    #[test]
    fn stop_words_are_removed() {
        let analyzer = Analyzer::new();
        assert_eq!(
            stems(&analyzer, "Bruschetta mit Tomaten und Basilikum", None).len(),
            3
        );
    }

    #[test]
    fn hyphenated_words_yield_parts_and_joined_word() {
        assert_eq!(
            Analyzer::words("Weißwein-Schorle"),
            vec![
                "weisswein".to_string(),
                "schorle".to_string(),
                "weissweinschorle".to_string()
            ]
        );
    }

    #[test]
    fn compounds_split_against_vocabulary() {
        let analyzer = Analyzer::new();
        let mut vocabulary = Vocabulary::new();
        vocabulary.insert_text("Risotto mit Pilzen, Spargel, Weißwein, Schorle, Wein, Rinder");
        assert_eq!(
            vocabulary.decompose("spargelrisotto"),
            vec!["risotto", "spargel"]
        );
        assert_eq!(
            vocabulary.decompose("weissweinschorle"),
            vec!["schorle", "wein", "weisswein"]
        );
        let spargel_risotto = stems(&analyzer, "Spargelrisotto", Some(&vocabulary));
        assert!(spargel_risotto.contains(&analyzer.stem("risotto", Language::German)));
        // Linking element: "Rinder" + "s"? no; "Rinderbraten": known modifier, unknown head.
        assert_eq!(vocabulary.decompose("rinderbraten"), vec!["rinder"]);
        // Unknown parts are not invented.
        assert!(vocabulary.decompose("zwiebelkuchen").is_empty());
    }

    #[test]
    fn linking_s_is_removed() {
        let mut vocabulary = Vocabulary::new();
        vocabulary.insert_text("Hochzeit Torte");
        assert_eq!(
            vocabulary.decompose("hochzeitstorte"),
            vec!["hochzeit", "torte"]
        );
    }
}
