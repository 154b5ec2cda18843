//! Loading the Febrl benchmark files (`rec_id, given_name, surname, …`, ground truth in `rec_id`) and the
//! configuration Kreislauf uses for them.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::{BlockingRule, Comparison, ComparisonKind, KeyPart, LinkageConfig, Records};

/// A Febrl file: normalised records and each record's true entity.
pub struct FebrlFile {
    pub records: Records,
    pub entity: Vec<String>,
}

/// Reads a Febrl CSV file.
pub fn load(path: &Path) -> Result<FebrlFile, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .ok_or("empty file")?
        .split(',')
        .map(|h| h.trim().to_owned())
        .collect();
    let columns: Vec<String> = header.iter().skip(1).cloned().collect();
    let mut rows = Vec::new();
    let mut entity = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let mut fields = line.split(',').map(str::trim);
        let rec_id = fields.next().unwrap_or_default();
        entity.push(rec_id.split('-').nth(1).unwrap_or(rec_id).to_owned());
        rows.push(fields.map(crate::fold).collect());
    }
    Ok(FebrlFile {
        records: Records { columns, rows },
        entity,
    })
}

/// True pairs within one file (de-duplication).
pub fn true_pairs_within(file: &FebrlFile) -> HashSet<(usize, usize)> {
    let mut by: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, e) in file.entity.iter().enumerate() {
        by.entry(e).or_default().push(i);
    }
    let mut pairs = HashSet::new();
    for group in by.values() {
        for (i, &a) in group.iter().enumerate() {
            for &b in &group[i + 1..] {
                pairs.insert((a.min(b), a.max(b)));
            }
        }
    }
    pairs
}

/// True pairs between two files (linkage).
pub fn true_pairs_between(left: &FebrlFile, right: &FebrlFile) -> HashSet<(usize, usize)> {
    let mut by: HashMap<&str, Vec<usize>> = HashMap::new();
    for (j, e) in right.entity.iter().enumerate() {
        by.entry(e).or_default().push(j);
    }
    let mut pairs = HashSet::new();
    for (i, e) in left.entity.iter().enumerate() {
        for &j in by.get(e.as_str()).map(Vec::as_slice).unwrap_or(&[]) {
            pairs.insert((i, j));
        }
    }
    pairs
}

/// The comparisons and blocking rules for Febrl's person records.
pub fn config() -> LinkageConfig {
    let cmp = |field: &str, kind, tf| Comparison {
        field: field.into(),
        kind,
        term_frequency: tf,
    };
    let prefix = |field: &str, chars| KeyPart::Prefix {
        field: field.into(),
        chars,
    };
    LinkageConfig::new(
        vec![
            cmp("given_name", ComparisonKind::Name, true),
            cmp("surname", ComparisonKind::Name, true),
            cmp("street_number", ComparisonKind::Code, false),
            cmp("address_1", ComparisonKind::Text, false),
            cmp("address_2", ComparisonKind::Text, false),
            cmp("suburb", ComparisonKind::Name, true),
            cmp("postcode", ComparisonKind::Code, false),
            cmp("state", ComparisonKind::Code, false),
            cmp("date_of_birth", ComparisonKind::Date, false),
            cmp("soc_sec_id", ComparisonKind::Code, false),
        ],
        vec![
            BlockingRule::exact(&["soc_sec_id"]),
            BlockingRule::exact(&["date_of_birth"]),
            BlockingRule {
                parts: vec![prefix("given_name", 3), prefix("surname", 3)],
            },
            BlockingRule::exact(&["postcode", "street_number"]),
            BlockingRule {
                parts: vec![
                    prefix("surname", 4),
                    KeyPart::Exact {
                        field: "suburb".into(),
                    },
                ],
            },
        ],
    )
}
