//! The in-memory `messageId` index.
//!
//! A UNIQUE index on random message ids costs a random B-tree write per event (12× slower in SQLite on
//! this machine). Instead every stored event carries a 64-bit hash of (source, messageId); this index maps
//! hash → seq. A hit is only a candidate: the caller confirms it against the stored messageId, so a hash
//! collision never drops an event. Sharded so that growth rehashes one small shard at a time.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

const SHARDS: usize = 256;

/// The keys are already uniform hashes: hash them no further.
#[derive(Default)]
pub struct PassThroughHasher(u64);

impl Hasher for PassThroughHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Shard = HashMap<u64, i64, BuildHasherDefault<PassThroughHasher>>;

/// hash(source, messageId) → seq of the stored event(s).
pub struct DedupIndex {
    shards: Vec<Shard>,
    /// Extra seqs for the rare hashes shared by different messages.
    collisions: HashMap<u64, Vec<i64>>,
    len: usize,
}

impl Default for DedupIndex {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            collisions: HashMap::new(),
            len: 0,
        }
    }
}

impl DedupIndex {
    /// The dedup hash of a message, as stored in the events table.
    pub fn hash(source_id: i64, message_id: &str) -> u64 {
        let mut buf = Vec::with_capacity(message_id.len() + 9);
        buf.extend_from_slice(&source_id.to_le_bytes());
        buf.push(0);
        buf.extend_from_slice(message_id.as_bytes());
        xxhash_rust::xxh3::xxh3_64(&buf)
    }

    fn shard(&self, hash: u64) -> usize {
        // The low bits pick the bucket inside a shard; the high bits pick the shard.
        (hash >> 56) as usize % SHARDS
    }

    /// Seqs of stored events whose hash equals `hash`.
    pub fn candidates(&self, hash: u64) -> Vec<i64> {
        let mut out = Vec::new();
        if let Some(&seq) = self.shards[self.shard(hash)].get(&hash) {
            out.push(seq);
            if let Some(more) = self.collisions.get(&hash) {
                out.extend(more);
            }
        }
        out
    }

    pub fn insert(&mut self, hash: u64, seq: i64) {
        let shard = self.shard(hash);
        match self.shards[shard].entry(hash) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(seq);
            }
            std::collections::hash_map::Entry::Occupied(o) => {
                let more = self.collisions.entry(hash).or_default();
                if *o.get() == seq || more.contains(&seq) {
                    return;
                }
                more.push(seq);
            }
        }
        self.len += 1;
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_every_seq_of_a_shared_hash() {
        let mut idx = DedupIndex::default();
        idx.insert(42, 1);
        idx.insert(42, 7);
        idx.insert(42, 7);
        idx.insert(43, 2);
        assert_eq!(idx.candidates(42), vec![1, 7]);
        assert_eq!(idx.candidates(44), Vec::<i64>::new());
        assert_eq!(idx.len(), 3);
    }

    #[test]
    fn hash_depends_on_source_and_id() {
        assert_ne!(DedupIndex::hash(1, "m"), DedupIndex::hash(2, "m"));
        assert_ne!(DedupIndex::hash(1, "m"), DedupIndex::hash(1, "n"));
        assert_eq!(DedupIndex::hash(1, "m"), DedupIndex::hash(1, "m"));
    }
}
