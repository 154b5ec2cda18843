//! German-aware analysis properties.
#![allow(clippy::unwrap_used)]

use kreislauf_recs::analysis::fold;
use kreislauf_recs::{Analyzer, Language, Vocabulary};
use proptest::prelude::*;

#[test]
fn examples_from_the_issue() {
    let analyzer = Analyzer::new();
    let stems = |text: &str, vocabulary: Option<&Vocabulary>| -> Vec<String> {
        analyzer
            .analyze(text, Language::German, vocabulary)
            .into_iter()
            .map(|term| term.stem)
            .collect()
    };
    assert_eq!(stems("Käse", None), stems("Kaese", None));
    assert_eq!(stems("Weine", None), stems("Wein", None));
    let mut vocabulary = Vocabulary::new();
    vocabulary.insert_text("Risotto Weißwein Schorle Spargel");
    assert!(stems("Spargelrisotto", Some(&vocabulary)).contains(&stems("Risotto", None)[0]));
    let schorle = stems("Weißweinschorle", Some(&vocabulary));
    assert!(
        schorle.contains(&stems("Weißwein", None)[0])
            && schorle.contains(&stems("Schorle", None)[0]),
        "{schorle:?}"
    );
    // NFD input (decomposed umlaut) folds like NFC input.
    assert_eq!(fold("Ka\u{0308}se"), "kaese");
}

proptest! {
    #[test]
    fn folding_is_lowercase_ascii_for_latin_text(text in "[A-Za-zÄÖÜäöüßéèáàçñ -]{0,40}") {
        let folded = fold(&text);
        prop_assert!(folded.is_ascii(), "{}", folded);
        prop_assert!(!folded.chars().any(|character| character.is_ascii_uppercase()));
        prop_assert_eq!(fold(&folded), folded.clone());
    }

    #[test]
    fn analysis_never_panics_and_terms_are_folded(text in ".{0,80}") {
        let analyzer = Analyzer::new();
        let mut vocabulary = Vocabulary::new();
        vocabulary.insert_text(&text);
        for term in analyzer.analyze(&text, Language::Auto, Some(&vocabulary)) {
            prop_assert!(!term.stem.is_empty());
            prop_assert!(!term.stem.contains(['ä', 'ö', 'ü', 'ß']));
        }
    }

    #[test]
    fn compound_parts_are_known_words(left in "[a-z]{4,7}", right in "[a-z]{4,7}") {
        let mut vocabulary = Vocabulary::new();
        vocabulary.insert(&left);
        vocabulary.insert(&right);
        let parts = vocabulary.decompose(&format!("{left}{right}"));
        prop_assert!(parts.iter().all(|part| vocabulary.contains(part)));
        prop_assert!(!parts.is_empty());
    }
}
