//! Accuracy on the Febrl benchmark files in ../shared/datasets/febrl (see its README): linkage of
//! dataset4a ↔ dataset4b must reach at least Splink's F1 (0.9991), de-duplication of dataset3 is reported.

use std::path::PathBuf;
use std::time::Instant;

use kreislauf_linkage::{accuracy, cluster, cluster_pairs, dedupe, febrl, link};

fn febrl_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("KREISLAUF_FEBRL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets/febrl")
        });
    if dir.join("dataset4a.csv").exists() {
        return Some(dir);
    }
    let message = format!("the Febrl data is missing: expected {} (the shared/ folder beside the checkout) or KREISLAUF_FEBRL_DIR", dir.display());
    assert!(
        !std::env::var("KREISLAUF_REQUIRE_SERVICES").is_ok_and(|v| v == "1"),
        "{message}"
    );
    eprintln!("SKIPPED: {message}");
    None
}

#[test]
fn febrl4_linkage_reaches_splink_f1() {
    let Some(dir) = febrl_dir() else { return };
    let a = febrl::load(&dir.join("dataset4a.csv")).expect("dataset4a");
    let b = febrl::load(&dir.join("dataset4b.csv")).expect("dataset4b");
    let started = Instant::now();
    let result = link(&a.records, &b.records, &febrl::config()).expect("link");
    let predicted = result.matches().map(|p| (p.left, p.right)).collect();
    let acc = accuracy(&predicted, &febrl::true_pairs_between(&a, &b));
    eprintln!(
        "febrl4: {} candidate pairs, {acc:?}, {:?}",
        result.candidate_pairs,
        started.elapsed()
    );
    assert!(
        acc.f1 >= 0.9991,
        "F1 {:.4} below Splink's 0.9991: {acc:?}",
        acc.f1
    );
    // Every pair is explained field by field.
    let explanation = result.explain(0, &a.records, &b.records);
    assert_eq!(explanation.len(), febrl::config().comparisons.len());
}

#[test]
fn febrl3_deduplication() {
    let Some(dir) = febrl_dir() else { return };
    let file = febrl::load(&dir.join("dataset3.csv")).expect("dataset3");
    let result = dedupe(&file.records, &febrl::config()).expect("dedupe");
    let truth = febrl::true_pairs_within(&file);
    let pairwise = accuracy(
        &result
            .matches()
            .map(|p| (p.left.min(p.right), p.left.max(p.right)))
            .collect(),
        &truth,
    );
    let clusters = cluster(file.records.rows.len(), &result);
    let clustered = accuracy(&cluster_pairs(&clusters), &truth);
    eprintln!(
        "febrl3: {} candidate pairs, pairwise {pairwise:?}, clustered {clustered:?}",
        result.candidate_pairs
    );
    assert!(clustered.f1 >= 0.95, "{clustered:?}");
}
