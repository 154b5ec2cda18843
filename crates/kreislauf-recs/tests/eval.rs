//! Offline evaluation: generator, split, export, and the blend beating the
//! most-popular baseline on a small world.
#![allow(clippy::unwrap_used)]

use kreislauf_recs::bench::{self, BenchConfig};
use kreislauf_recs::eval::{
    run_evaluation, split_by_time, write_split_csv, EvalConfig, Generator, GeneratorConfig,
};
use kreislauf_recs::Strategy;

#[test]
fn generator_is_deterministic_and_has_the_promised_structure() {
    let config = GeneratorConfig {
        profiles: 200,
        ..GeneratorConfig::small(3)
    };
    let first = Generator::new(config.clone());
    let second = Generator::new(config.clone());
    let interactions = first.interactions();
    assert_eq!(interactions, second.interactions());
    assert_eq!(first.rules(), second.rules());
    assert_ne!(
        interactions,
        Generator::new(GeneratorConfig {
            seed: 4,
            ..config.clone()
        })
        .interactions()
    );
    let catalogs = first.catalogs();
    for name in ["wines", "deli", "recipes"] {
        assert!(
            catalogs
                .get(name)
                .is_some_and(|catalog| !catalog.is_empty()),
            "{name}"
        );
    }
    // German recipe titles with compounds, wine attributes, DACH regions.
    let recipes = catalogs.get("recipes").unwrap();
    assert!(recipes.items().any(|item| item.title.contains(" mit ")));
    let wines = catalogs.get("wines").unwrap();
    let countries: std::collections::BTreeSet<String> = wines
        .items()
        .filter_map(|item| item.attributes.get("country"))
        .flat_map(|value| value.values())
        .collect();
    for country in ["Deutschland", "Österreich", "Italien", "Frankreich"] {
        assert!(countries.contains(country), "{countries:?}");
    }
    // New vintages replace old ones: some wines are sold out.
    assert!(wines.items().any(|item| !item.available));
    // The marketer's rules validate against the catalogs and miss some truth.
    first.rules().validate(catalogs).unwrap();
    assert!(first.rules().rules.len() < first.truth().len() + 2);
    // Seasonality: sparkling is bought more in late December than in March.
    let sparkling_in = |month: u32| {
        interactions
            .iter()
            .filter(|interaction| interaction.item.catalog == "wines")
            .filter(|interaction| chrono::Datelike::month(&interaction.timestamp) == month)
            .filter(|interaction| {
                catalogs.item(&interaction.item).is_some_and(|item| {
                    item.categories
                        .first()
                        .is_some_and(|category| category == "Schaumwein")
                })
            })
            .count()
    };
    assert!(
        sparkling_in(12) as f64 > 1.5 * sparkling_in(3) as f64,
        "{} vs {}",
        sparkling_in(12),
        sparkling_in(3)
    );
}

#[test]
fn split_is_by_time_and_exports_csv() {
    let generator = Generator::new(GeneratorConfig {
        profiles: 100,
        ..GeneratorConfig::small(5)
    });
    let interactions = generator.interactions();
    let split = split_by_time(&interactions, generator.config().split_time());
    assert_eq!(split.train.len() + split.test.len(), interactions.len());
    assert!(split
        .train
        .iter()
        .all(|interaction| interaction.timestamp < split.split_time));
    assert!(split
        .test
        .iter()
        .all(|interaction| interaction.timestamp >= split.split_time));
    assert!(!split.test.is_empty());
    let dir = tempfile::tempdir().unwrap();
    let files = write_split_csv(&split, generator.catalogs(), dir.path()).unwrap();
    let train = std::fs::read_to_string(&files.train).unwrap();
    let mut lines = train.lines();
    assert_eq!(lines.next(), Some("profile,item,kind,timestamp"));
    let first = lines.next().unwrap();
    let fields: Vec<&str> = first.split(',').collect();
    assert_eq!(fields.len(), 4);
    assert!(fields[1].contains(':'));
    assert!(fields[3].parse::<i64>().is_ok());
    assert_eq!(train.lines().count(), split.train.len() + 1);
    let items = std::fs::read_to_string(&files.items).unwrap();
    assert_eq!(items.lines().count(), generator.catalogs().item_count() + 1);
}

#[test]
fn blend_beats_most_popular_on_a_small_world() {
    let mut config = EvalConfig::small(11);
    config.strategies = vec![Strategy::Pairing, Strategy::Blend];
    config.max_profiles = Some(600);
    let report = run_evaluation(&config).unwrap();
    let blend = report.row("kreislauf blend").unwrap();
    let popular = report.row("most-popular").unwrap();
    assert_eq!(blend.profiles, popular.profiles);
    assert!(blend.profiles > 100, "{report}");
    assert!(blend.ndcg > popular.ndcg, "{report}");
    assert!(blend.coverage > popular.coverage, "{report}");
    // The ablations are reported next to the full blend.
    assert!(report
        .row("kreislauf blend without co-occurrence")
        .is_some());
    let table = report.to_string();
    assert!(
        table.contains("| recommender | P@10 | R@10 | NDCG@10 | coverage | profiles |"),
        "{table}"
    );
    assert!(table.contains("| most-popular |"), "{table}");
}

#[test]
fn missing_script_is_reported_not_panicked() {
    let mut config = EvalConfig::small(2);
    config.generator.profiles = 60;
    config.strategies = vec![Strategy::Blend];
    config.ablations = false;
    config.als_script = Some("/nonexistent/als_baseline.py".into());
    let dir = tempfile::tempdir().unwrap();
    config.export_dir = Some(dir.path().to_path_buf());
    let error = run_evaluation(&config).unwrap_err().to_string();
    assert!(error.contains("/nonexistent/als_baseline.py"), "{error}");
}

#[test]
fn bench_small_mode_runs() {
    let mut config = BenchConfig::small(1);
    config.requests = 100;
    let report = bench::run(config).unwrap();
    assert!(report.items > 1000, "{report}");
    assert_eq!(report.interactions, 60_000);
    assert_eq!(report.overall.requests, 100);
    assert!(report.cooc_edges > 0);
    assert!(report.model_bytes > 0);
    assert!(report
        .during_refresh
        .as_ref()
        .is_some_and(|latency| latency.requests > 0));
    assert!(report.to_string().contains("p99"));
}
