//! Which identifiers might be in the store.
//!
//! Most identifiers the writer has not cached are brand new (a first visit, a new customer). Asking the
//! store about them costs a read on the writer's path and, on the embedded store, waits for the group being
//! committed. A Bloom filter over every stored identifier answers "certainly new" from memory at about
//! 1.5 bytes per identifier; "maybe known" falls back to the store. Filters are added as it fills, each
//! twice the size of the last, so the false-positive rate stays bounded without a rebuild. Erased
//! identifiers stay in it: that only costs a store read.

use fastbloom::BloomFilter;
use kreislauf_core::Identifier;

const FALSE_POSITIVES: f64 = 0.01;
const FIRST_CAPACITY: usize = 1 << 20;

pub struct KnownIdentifiers {
    filters: Vec<(BloomFilter, usize)>,
    /// Items in the last filter.
    filled: usize,
}

fn key(id: &Identifier) -> u64 {
    let mut buf = Vec::with_capacity(id.value.len() + 16);
    buf.extend_from_slice(id.kind.as_str().as_bytes());
    buf.push(0);
    buf.extend_from_slice(id.value.as_bytes());
    xxhash_rust::xxh3::xxh3_64(&buf)
}

fn filter(capacity: usize) -> (BloomFilter, usize) {
    (
        BloomFilter::with_false_pos(FALSE_POSITIVES).expected_items(capacity),
        capacity,
    )
}

impl KnownIdentifiers {
    /// An empty filter sized for `expected` identifiers.
    pub fn with_capacity(expected: usize) -> Self {
        Self {
            filters: vec![filter(expected.max(FIRST_CAPACITY))],
            filled: 0,
        }
    }

    pub fn insert(&mut self, id: &Identifier) {
        let capacity = self.filters.last().map_or(0, |f| f.1);
        if self.filled >= capacity {
            self.filters.push(filter(capacity.max(FIRST_CAPACITY) * 2));
            self.filled = 0;
        }
        if let Some((f, _)) = self.filters.last_mut() {
            f.insert(&key(id));
            self.filled += 1;
        }
    }

    /// False only if `id` was certainly never inserted.
    pub fn might_contain(&self, id: &Identifier) -> bool {
        let k = key(id);
        self.filters.iter().any(|(f, _)| f.contains(&k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kreislauf_core::IdentifierKind;

    fn email(i: usize) -> Identifier {
        Identifier {
            kind: IdentifierKind::Email,
            value: format!("kunde{i}@example.ch"),
        }
    }

    #[test]
    fn never_forgets_and_rarely_guesses() {
        let mut known = KnownIdentifiers::with_capacity(0);
        for i in 0..3_000_000 {
            known.insert(&email(i));
        }
        assert!(known.filters.len() >= 2, "grew by adding filters");
        assert!((0..3_000_000)
            .step_by(997)
            .all(|i| known.might_contain(&email(i))));
        let false_positives = (3_000_000..3_100_000)
            .filter(|&i| known.might_contain(&email(i)))
            .count();
        assert!(false_positives < 3_000, "{false_positives} of 100000");
        let user = Identifier {
            kind: IdentifierKind::UserId,
            value: "kunde1@example.ch".into(),
        };
        assert!(!known.might_contain(&user) || false_positives > 0);
    }
}
