//! Runs the offline evaluation and prints the Markdown table.
//!
//! `cargo run --release -p kreislauf-recs --example eval -- [--seed N] [--small]
//!  [--script crates/kreislauf-recs/scripts/als_baseline.py] [--export DIR] [--max-profiles N]`

use std::path::PathBuf;
use std::process::ExitCode;

use kreislauf_recs::eval::{run_evaluation, EvalConfig};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|arg| arg == flag)
            .and_then(|index| args.get(index + 1))
            .cloned()
    };
    let seed = value("--seed")
        .and_then(|seed| seed.parse().ok())
        .unwrap_or(7);
    let mut config = if args.iter().any(|arg| arg == "--small") {
        EvalConfig::small(seed)
    } else {
        EvalConfig::standard(seed)
    };
    config.als_script = value("--script").map(PathBuf::from);
    if let Some(trips) = value("--trips").and_then(|trips| trips.parse().ok()) {
        config.generator.trips_per_profile = trips;
    }
    if let Some(profiles) = value("--profiles").and_then(|profiles| profiles.parse().ok()) {
        config.generator.profiles = profiles;
    }
    config.export_dir = value("--export").map(PathBuf::from);
    config.max_profiles = value("--max-profiles").and_then(|limit| limit.parse().ok());
    if let Some(weights) = value("--blend") {
        let parts: Vec<f32> = weights
            .split(',')
            .filter_map(|part| part.parse().ok())
            .collect();
        if let [pairing, cooccurrence, similarity, popularity] = parts[..] {
            config.model.recommend.blend = kreislauf_recs::BlendWeights {
                pairing,
                cooccurrence,
                similarity,
                popularity,
            };
        }
    }
    if let Some(lambda) = value("--lambda").and_then(|lambda| lambda.parse().ok()) {
        config.model.recommend.diversity_lambda = lambda;
    }
    if let Some(days) = value("--window").and_then(|days| days.parse().ok()) {
        config.model.cooc.window_days = days;
    }
    if let Some(days) = value("--proximity").and_then(|days| days.parse::<f64>().ok()) {
        config.model.cooc.proximity_half_life_days = (days > 0.0).then_some(days);
    }
    if let Some(shrinkage) = value("--shrinkage").and_then(|value| value.parse().ok()) {
        config.model.cooc.shrinkage = shrinkage;
    }
    if let Some(days) = value("--pop-half-life").and_then(|days| days.parse().ok()) {
        config.model.popularity_half_life_days = Some(days);
    }
    if let Some(anchors) = value("--sim-anchors").and_then(|anchors| anchors.parse().ok()) {
        config.model.recommend.similarity_anchors = anchors;
    }
    if let Some(days) = value("--anchor-half-life").and_then(|days| days.parse().ok()) {
        config.model.recommend.anchor_half_life_days = days;
    }
    if let Some(weight) = value("--attr-weight").and_then(|weight| weight.parse().ok()) {
        config.model.recommend.attribute_weight = weight;
    }
    if let Some(facets) = value("--taste-facets").and_then(|facets| facets.parse().ok()) {
        config.model.recommend.taste_facets = facets;
    }
    if let Some(tolerance) = value("--price-tolerance").and_then(|tolerance| tolerance.parse().ok())
    {
        config.model.recommend.price_tolerance = tolerance;
    }
    if let Some(share) = value("--seasonal").and_then(|share| share.parse::<f32>().ok()) {
        config.model.seasonality = Some(kreislauf_recs::Seasonality {
            share,
            ..Default::default()
        });
    }
    if let Some(days) = value("--cooc-half-life").and_then(|days| days.parse::<f64>().ok()) {
        config.model.cooc.half_life_days = (days > 0.0).then_some(days);
    }
    if let Some(support) = value("--min-support").and_then(|support| support.parse().ok()) {
        config.model.cooc.min_support = support;
    }
    if let Some(neighbours) = value("--neighbours").and_then(|neighbours| neighbours.parse().ok()) {
        config.model.cooc.max_neighbours = neighbours;
    }
    if let Some(smoothing) = value("--taste-smoothing").and_then(|value| value.parse().ok()) {
        config.model.recommend.taste_smoothing = smoothing;
    }
    if let Some(exponent) = value("--taste-pop").and_then(|value| value.parse().ok()) {
        config.model.recommend.taste_popularity_exponent = exponent;
    }
    if let Some(anchors) = value("--anchors").and_then(|anchors| anchors.parse().ok()) {
        config.model.recommend.max_anchors = anchors;
    }
    config.target_catalog = value("--catalog");
    if args.iter().any(|arg| arg == "--blend-only") {
        config.strategies = vec![kreislauf_recs::Strategy::Blend];
    }
    match run_evaluation(&config) {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("evaluation failed: {error}");
            ExitCode::FAILURE
        }
    }
}
