//! De-duplication of generated DACH customers with ground truth: the profile linkage configuration finds
//! most duplicates and keeps family members (same surname, address, e-mail) apart.

use std::collections::{HashMap, HashSet};

use kreislauf_engine::quality::{customer_row, linkage_config, RawCustomer, LINK_FIELDS};
use kreislauf_linkage::{accuracy, cluster, cluster_pairs, dedupe, Records};
use kreislauf_quality::Country;

#[test]
fn finds_duplicates_and_keeps_households_apart() {
    let config = kreislauf_testdata::GeneratorConfig {
        seed: 11,
        people: 5_000,
        ..Default::default()
    };
    let records = kreislauf_testdata::Generator::new(config)
        .expect("config")
        .generate();
    let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 25).expect("date");
    let rows = records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let raw = RawCustomer {
                email: r.email.as_deref(),
                phone: r.phone.as_deref(),
                first_name: r.first_name.as_deref(),
                last_name: r.last_name.as_deref(),
                street: r.street.as_deref(),
                house_number: r.house_number.as_deref(),
                postal_code: r.postal_code.as_deref(),
                country: r.country.as_deref(),
                birth_date: r.birth_date.as_deref(),
            };
            customer_row(i as i64, &raw, Country::CH, today)
        })
        .collect();
    let table = Records {
        columns: LINK_FIELDS.iter().map(|s| (*s).to_owned()).collect(),
        rows,
    };
    let result = dedupe(&table, &linkage_config(0.9)).expect("dedupe");
    let predicted = cluster_pairs(&cluster(records.len(), &result));
    let index: HashMap<u64, usize> = records
        .iter()
        .enumerate()
        .map(|(i, r)| (r.record_id, i))
        .collect();
    let to_index = |pairs: std::collections::BTreeSet<(u64, u64)>| -> HashSet<(usize, usize)> {
        pairs
            .into_iter()
            .map(|(a, b)| (index[&a].min(index[&b]), index[&a].max(index[&b])))
            .collect()
    };
    let acc = accuracy(
        &predicted,
        &to_index(kreislauf_testdata::true_pairs(&records)),
    );
    let households = to_index(kreislauf_testdata::household_pairs(&records));
    let wrongly_merged = predicted.intersection(&households).count();
    eprintln!(
        "{acc:?}; {wrongly_merged} of {} household pairs merged",
        households.len()
    );
    assert!(acc.f1 >= 0.8, "{acc:?}");
    assert!(acc.precision >= 0.85, "{acc:?}");
    assert!(
        (wrongly_merged as f64) < 0.02 * households.len() as f64,
        "{wrongly_merged} household pairs merged"
    );
}
