//! Ranking metrics. `scripts/als_baseline.py` implements exactly the same
//! definitions; keep them in sync.
//!
//! For one profile with recommended list `R` (in rank order, possibly
//! shorter than k) and relevant set `T` (non-empty):
//!
//! * precision@k = |R[..k] ∩ T| / k (k, not |R|: short lists are not
//!   rewarded);
//! * recall@k = |R[..k] ∩ T| / |T|;
//! * NDCG@k = DCG / IDCG with binary gains, DCG = Σ_{i=1..k, R_i ∈ T}
//!   1 / log2(i + 1), IDCG = Σ_{i=1..min(k, |T|)} 1 / log2(i + 1);
//!
//! each averaged over evaluated profiles, and
//!
//! * coverage = |∪ R[..k] over profiles| / number of recommendable
//!   (available) items.

use std::collections::HashSet;
use std::hash::Hash;

/// Hits of the first `k` recommendations.
fn hits<T: Eq + Hash>(recommended: &[T], relevant: &HashSet<T>, k: usize) -> usize {
    recommended
        .iter()
        .take(k)
        .filter(|item| relevant.contains(item))
        .count()
}

/// precision@k (see module docs).
pub fn precision_at_k<T: Eq + Hash>(recommended: &[T], relevant: &HashSet<T>, k: usize) -> f64 {
    if k == 0 {
        return 0.0;
    }
    hits(recommended, relevant, k) as f64 / k as f64
}

/// recall@k (see module docs); 0 for an empty relevant set.
pub fn recall_at_k<T: Eq + Hash>(recommended: &[T], relevant: &HashSet<T>, k: usize) -> f64 {
    if relevant.is_empty() {
        return 0.0;
    }
    hits(recommended, relevant, k) as f64 / relevant.len() as f64
}

/// NDCG@k with binary gains (see module docs).
pub fn ndcg_at_k<T: Eq + Hash>(recommended: &[T], relevant: &HashSet<T>, k: usize) -> f64 {
    let dcg: f64 = recommended
        .iter()
        .take(k)
        .enumerate()
        .filter(|(_, item)| relevant.contains(item))
        .map(|(rank, _)| 1.0 / ((rank + 2) as f64).log2())
        .sum();
    let ideal: f64 = (0..k.min(relevant.len()))
        .map(|rank| 1.0 / ((rank + 2) as f64).log2())
        .sum();
    if ideal == 0.0 {
        0.0
    } else {
        dcg / ideal
    }
}

/// Catalog coverage: distinct recommended items / recommendable items.
pub fn coverage(distinct_recommended: usize, recommendable_items: usize) -> f64 {
    if recommendable_items == 0 {
        0.0
    } else {
        distinct_recommended as f64 / recommendable_items as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&'static str]) -> HashSet<&'static str> {
        items.iter().copied().collect()
    }

    #[test]
    fn hand_computed_examples() {
        let recommended = ["a", "b", "c", "d"];
        let relevant = set(&["b", "d", "x"]);
        assert!((precision_at_k(&recommended, &relevant, 4) - 0.5).abs() < 1e-12);
        assert!((precision_at_k(&recommended, &relevant, 2) - 0.5).abs() < 1e-12);
        assert!((recall_at_k(&recommended, &relevant, 4) - 2.0 / 3.0).abs() < 1e-12);
        // DCG = 1/log2(3) + 1/log2(5); IDCG = 1 + 1/log2(3) + 1/log2(4).
        let dcg = 1.0 / 3f64.log2() + 1.0 / 5f64.log2();
        let idcg = 1.0 + 1.0 / 3f64.log2() + 0.5;
        assert!((ndcg_at_k(&recommended, &relevant, 4) - dcg / idcg).abs() < 1e-12);
        assert!((ndcg_at_k(&recommended, &relevant, 4) - 0.4982).abs() < 1e-4);
    }

    #[test]
    fn perfect_and_empty_rankings() {
        let relevant = set(&["a", "b"]);
        assert!((ndcg_at_k(&["a", "b", "z"], &relevant, 10) - 1.0).abs() < 1e-12);
        assert!((ndcg_at_k(&["b", "a"], &relevant, 10) - 1.0).abs() < 1e-12);
        // Short list: precision divides by k.
        assert!((precision_at_k(&["a"], &relevant, 10) - 0.1).abs() < 1e-12);
        assert_eq!(ndcg_at_k::<&str>(&[], &relevant, 10), 0.0);
        assert_eq!(recall_at_k(&["a"], &HashSet::new(), 10), 0.0);
        // A relevant item beyond k does not count.
        assert_eq!(precision_at_k(&["z", "a"], &relevant, 1), 0.0);
        assert!((coverage(25, 100) - 0.25).abs() < 1e-12);
    }

    #[test]
    fn single_hit_at_rank_two_with_one_relevant() {
        let relevant = set(&["b"]);
        // DCG = 1/log2(3), IDCG = 1.
        assert!((ndcg_at_k(&["a", "b"], &relevant, 10) - 1.0 / 3f64.log2()).abs() < 1e-12);
    }
}
