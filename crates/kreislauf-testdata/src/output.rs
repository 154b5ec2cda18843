//! CSV output, ground-truth pairs and a summary.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::io;

use serde::{Deserialize, Serialize};

use crate::record::Record;
use crate::Error;

/// The CSV header. The first 15 columns are what the code under test may see; the rest
/// ([`GROUND_TRUTH_COLUMNS`]) are the answer and debugging aids.
pub const CSV_COLUMNS: [&str; 19] = [
    "record_id",
    "source",
    "customer_id",
    "salutation",
    "first_name",
    "last_name",
    "email",
    "phone",
    "street",
    "house_number",
    "postal_code",
    "city",
    "country",
    "birth_date",
    "loyalty_card",
    "person_id",
    "household_id",
    "duplicate_of",
    "corruptions",
];

/// The columns a linker must not read.
pub const GROUND_TRUTH_COLUMNS: [&str; 4] =
    ["person_id", "household_id", "duplicate_of", "corruptions"];

/// Writes the records as CSV with a header row ([`CSV_COLUMNS`]).
///
/// Absent values and empty strings both become empty cells (CSV cannot tell them apart);
/// whitespace-only values are kept. `corruptions` lists what was done to a duplicate,
/// separated by `;` (`typo:last_name;old_address`).
pub fn write_csv<W: io::Write>(records: &[Record], writer: W) -> Result<(), Error> {
    let mut w = csv::Writer::from_writer(writer);
    w.write_record(CSV_COLUMNS)?;
    let mut buf = String::with_capacity(64);
    for r in records {
        buf.clear();
        let _ = write!(buf, "{}", r.record_id);
        w.write_field(&buf)?;
        w.write_field(r.source.as_str())?;
        for value in [
            &r.customer_id,
            &r.salutation,
            &r.first_name,
            &r.last_name,
            &r.email,
            &r.phone,
            &r.street,
            &r.house_number,
            &r.postal_code,
            &r.city,
            &r.country,
            &r.birth_date,
            &r.loyalty_card,
        ] {
            w.write_field(value.as_deref().unwrap_or(""))?;
        }
        buf.clear();
        let _ = write!(buf, "{}", r.person_id);
        w.write_field(&buf)?;
        buf.clear();
        let _ = write!(buf, "{}", r.household_id);
        w.write_field(&buf)?;
        buf.clear();
        if let Some(d) = r.duplicate_of {
            let _ = write!(buf, "{d}");
        }
        w.write_field(&buf)?;
        buf.clear();
        for (i, c) in r.corruptions.iter().enumerate() {
            if i > 0 {
                buf.push(';');
            }
            let _ = write!(buf, "{c}");
        }
        w.write_field(&buf)?;
        w.write_record(None::<&[u8]>)?;
    }
    w.flush()?;
    Ok(())
}

/// All pairs of records `(a, b)` with `a < b` (record ids) that belong to the same person:
/// what a perfect de-duplication links.
pub fn true_pairs(records: &[Record]) -> BTreeSet<(u64, u64)> {
    let mut by_person: HashMap<u64, Vec<u64>> = HashMap::new();
    for r in records {
        by_person.entry(r.person_id).or_default().push(r.record_id);
    }
    let mut pairs = BTreeSet::new();
    for ids in by_person.values_mut() {
        add_pairs(ids, &mut pairs);
    }
    pairs
}

/// All pairs of records `(a, b)` with `a < b` that belong to the same household but to
/// different persons: the hard non-matches a linker must keep apart.
pub fn household_pairs(records: &[Record]) -> BTreeSet<(u64, u64)> {
    let mut by_household: HashMap<u64, Vec<(u64, u64)>> = HashMap::new();
    for r in records {
        by_household
            .entry(r.household_id)
            .or_default()
            .push((r.person_id, r.record_id));
    }
    let mut pairs = BTreeSet::new();
    for members in by_household.values() {
        for (i, &(pa, a)) in members.iter().enumerate() {
            for &(pb, b) in &members[i + 1..] {
                if pa != pb {
                    pairs.insert((a.min(b), a.max(b)));
                }
            }
        }
    }
    pairs
}

fn add_pairs(ids: &mut [u64], pairs: &mut BTreeSet<(u64, u64)>) {
    ids.sort_unstable();
    for (i, &a) in ids.iter().enumerate() {
        for &b in &ids[i + 1..] {
            pairs.insert((a, b));
        }
    }
}

/// A summary of a generated data set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub records: usize,
    /// Distinct persons (`person_id`).
    pub persons: usize,
    /// Records that are duplicates of an earlier record of the same person.
    pub duplicates: usize,
    /// Distinct households.
    pub households: usize,
    /// Households with two or more persons.
    pub multi_person_households: usize,
    /// Pairs of records of the same person ([`true_pairs`]).
    pub true_pairs: u64,
    /// Pairs of records of different persons in one household ([`household_pairs`]).
    pub household_pairs: u64,
    /// Records per source.
    pub by_source: BTreeMap<String, usize>,
    /// How often each corruption kind was applied ([`crate::Corruption::name`]).
    pub corruptions: BTreeMap<String, usize>,
}

impl Stats {
    /// Counts everything in one pass (no pair lists are built).
    pub fn of(records: &[Record]) -> Stats {
        let mut per_person: HashMap<u64, (u64, u64)> = HashMap::new(); // person → (household, records)
        let mut by_source = BTreeMap::new();
        let mut corruptions = BTreeMap::new();
        let mut duplicates = 0;
        for r in records {
            per_person
                .entry(r.person_id)
                .or_insert((r.household_id, 0))
                .1 += 1;
            *by_source.entry(r.source.as_str().to_owned()).or_insert(0) += 1;
            if r.is_duplicate() {
                duplicates += 1;
            }
            for c in &r.corruptions {
                *corruptions.entry(c.name().to_owned()).or_insert(0) += 1;
            }
        }
        // household → (persons, records, Σ records² over its persons)
        let mut per_household: HashMap<u64, (u64, u64, u64)> = HashMap::new();
        let mut true_pairs = 0;
        for &(household, n) in per_person.values() {
            true_pairs += n * (n - 1) / 2;
            let h = per_household.entry(household).or_default();
            h.0 += 1;
            h.1 += n;
            h.2 += n * n;
        }
        let household_pairs = per_household
            .values()
            .map(|&(_, n, sq)| (n * n - sq) / 2)
            .sum();
        Stats {
            records: records.len(),
            persons: per_person.len(),
            duplicates,
            households: per_household.len(),
            multi_person_households: per_household.values().filter(|h| h.0 > 1).count(),
            true_pairs,
            household_pairs,
            by_source,
            corruptions,
        }
    }
}
