//! De-duplication of generated DACH customers with ground truth: the profile linkage configuration finds
//! most duplicates and keeps family members (same surname, address, e-mail) apart.

use std::collections::{HashMap, HashSet};

use kreislauf_engine::quality::{assess_raw, linkage_config, linkage_row, LINK_FIELDS};
use kreislauf_linkage::{accuracy, cluster, cluster_pairs, dedupe, Records};
use kreislauf_quality::{Country, Field};

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
            let street = match (&r.street, &r.house_number) {
                (Some(s), Some(n)) => Some(format!("{s} {n}")),
                (s, _) => s.clone(),
            };
            let country = r
                .country
                .as_deref()
                .and_then(Country::parse)
                .unwrap_or(Country::CH);
            let values: Vec<(Field, &str)> = [
                (Field::Email, r.email.as_deref()),
                (Field::Phone, r.phone.as_deref()),
                (Field::FirstName, r.first_name.as_deref()),
                (Field::LastName, r.last_name.as_deref()),
                (Field::Street, street.as_deref()),
                (Field::PostalCode, r.postal_code.as_deref()),
                (Field::Country, r.country.as_deref()),
                (Field::BirthDate, r.birth_date.as_deref()),
            ]
            .into_iter()
            .filter_map(|(f, v)| v.map(|v| (f, v)))
            .collect();
            linkage_row(&assess_raw(i as i64, &values, country, today))
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
            .filter_map(|(a, b)| Some((index[&a].min(index[&b]), index[&a].max(index[&b]))))
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
