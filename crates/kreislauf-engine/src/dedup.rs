//! The in-memory `messageId` index.
//!
//! A UNIQUE index on random message ids costs a random B-tree write per event (12× slower in SQLite on
//! this machine). Instead every stored event carries a 64-bit hash of (source, messageId); this index maps
//! hash → seq. A hit is only a candidate: the caller confirms it against the stored messageId, so a hash
//! collision never drops an event.
//!
//! Memory matters at millions of events, so the index is two-tiered: new entries go to a small hash map;
//! when it holds [`RECENT_MAX`] entries they are sorted into one packed base array (16 bytes an entry, no
//! hash-table slack), merged in place from the back. The base is paged, so growing it never copies it (a
//! reallocated 160 MB array would briefly be held twice). A directory of the top 16 hash bits narrows a
//! lookup to a few dozen entries.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Entries kept in the hash map before they are merged into the sorted base.
pub const RECENT_MAX: usize = 1 << 20;
const DIRECTORY_BITS: u32 = 16;

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

type Recent = HashMap<u64, i64, BuildHasherDefault<PassThroughHasher>>;

const PAGE: usize = 1 << 16;

/// A growable array in fixed pages: growing adds pages and never moves what is there.
#[derive(Default)]
struct Paged<T> {
    pages: Vec<Vec<T>>,
    len: usize,
}

impl<T: Copy + Default> Paged<T> {
    fn get(&self, i: usize) -> Option<T> {
        (i < self.len)
            .then(|| self.pages.get(i / PAGE)?.get(i % PAGE).copied())
            .flatten()
    }

    fn set(&mut self, i: usize, value: T) {
        if let Some(slot) = self
            .pages
            .get_mut(i / PAGE)
            .and_then(|p| p.get_mut(i % PAGE))
        {
            *slot = value;
        }
    }

    fn grow_to(&mut self, len: usize) {
        while self.pages.len() * PAGE < len {
            self.pages.push(vec![T::default(); PAGE]);
        }
        self.len = len;
    }

    fn bytes(&self) -> usize {
        self.pages.len() * PAGE * std::mem::size_of::<T>()
    }
}

/// hash(source, messageId) → seq of the stored event(s).
#[derive(Default)]
pub struct DedupIndex {
    recent: Recent,
    /// Further seqs of recent hashes shared by different messages (rare).
    recent_extra: HashMap<u64, Vec<i64>>,
    recent_len: usize,
    /// Sorted by hash (equal hashes adjacent); `base_seqs[i]` belongs to `base_hashes[i]`.
    base_hashes: Paged<u64>,
    base_seqs: Paged<i64>,
    /// `directory[b]` is the first position whose hash has top bits `b`; one extra entry at the end.
    directory: Vec<u32>,
    len: usize,
}

fn bucket(hash: u64) -> usize {
    (hash >> (64 - DIRECTORY_BITS)) as usize
}

impl DedupIndex {
    /// The dedup hash of a message, as stored with the event.
    pub fn hash(source_id: i64, message_id: &str) -> u64 {
        let mut buf = Vec::with_capacity(message_id.len() + 9);
        buf.extend_from_slice(&source_id.to_le_bytes());
        buf.push(0);
        buf.extend_from_slice(message_id.as_bytes());
        xxhash_rust::xxh3::xxh3_64(&buf)
    }

    /// Seqs of stored events whose hash equals `hash`.
    pub fn candidates(&self, hash: u64) -> Vec<i64> {
        let mut out: Vec<i64> = self.recent.get(&hash).copied().into_iter().collect();
        if let Some(more) = self.recent_extra.get(&hash) {
            out.extend(more);
        }
        if let (Some(&lo), Some(&hi)) = (
            self.directory.get(bucket(hash)),
            self.directory.get(bucket(hash) + 1),
        ) {
            // The first position in lo..hi whose hash is not below `hash`.
            let (mut lo, mut hi) = (lo as usize, hi as usize);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if self.base_hashes.get(mid).is_some_and(|h| h < hash) {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            let mut i = lo;
            while self.base_hashes.get(i) == Some(hash) {
                if let Some(seq) = self.base_seqs.get(i) {
                    out.push(seq);
                }
                i += 1;
            }
        }
        out
    }

    pub fn insert(&mut self, hash: u64, seq: i64) {
        match self.recent.entry(hash) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(seq);
            }
            std::collections::hash_map::Entry::Occupied(o) => {
                let more = self.recent_extra.entry(hash).or_default();
                if *o.get() == seq || more.contains(&seq) {
                    return;
                }
                more.push(seq);
            }
        }
        self.recent_len += 1;
        self.len += 1;
        if self.recent_len >= RECENT_MAX {
            self.compact();
        }
    }

    /// Moves the recent entries into the sorted base.
    pub fn compact(&mut self) {
        let mut fresh: Vec<(u64, i64)> = self.recent.drain().collect();
        fresh.extend(
            self.recent_extra
                .drain()
                .flat_map(|(h, seqs)| seqs.into_iter().map(move |s| (h, s))),
        );
        self.recent_len = 0;
        self.recent.shrink_to(RECENT_MAX / 8);
        if fresh.is_empty() {
            return;
        }
        fresh.sort_unstable();
        // In-place merge from the back: grow both arrays by the new entries, then fill from the end.
        let old = self.base_hashes.len;
        let total = old + fresh.len();
        self.base_hashes.grow_to(total);
        self.base_seqs.grow_to(total);
        let (mut i, mut j, mut k) = (old, fresh.len(), total);
        while j > 0 {
            k -= 1;
            let newest = fresh.get(j - 1).copied().unwrap_or_default();
            let take_old = i > 0 && self.base_hashes.get(i - 1).is_some_and(|h| h > newest.0);
            if take_old {
                i -= 1;
                let (h, s) = (
                    self.base_hashes.get(i).unwrap_or_default(),
                    self.base_seqs.get(i).unwrap_or_default(),
                );
                self.base_hashes.set(k, h);
                self.base_seqs.set(k, s);
            } else {
                j -= 1;
                self.base_hashes.set(k, newest.0);
                self.base_seqs.set(k, newest.1);
            }
        }
        self.rebuild_directory();
    }

    fn rebuild_directory(&mut self) {
        let buckets = 1usize << DIRECTORY_BITS;
        let mut directory = vec![0u32; buckets + 1];
        let mut pos = 0usize;
        for (b, slot) in directory.iter_mut().enumerate().take(buckets) {
            while self.base_hashes.get(pos).is_some_and(|h| bucket(h) < b) {
                pos += 1;
            }
            *slot = pos as u32;
        }
        directory[buckets] = self.base_hashes.len as u32;
        self.directory = directory;
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes held, roughly (for the startup log and benchmarks).
    pub fn memory_bytes(&self) -> usize {
        self.base_hashes.bytes()
            + self.base_seqs.bytes()
            + self.directory.capacity() * 4
            + self.recent.capacity() * (8 + 8 + 1)
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
        idx.compact();
        let mut found = idx.candidates(42);
        found.sort_unstable();
        assert_eq!(found, vec![1, 7], "a compacted shared hash keeps both seqs");
        idx.insert(42, 9);
        let mut found = idx.candidates(42);
        found.sort_unstable();
        assert_eq!(found, vec![1, 7, 9], "recent and base together");
    }

    #[test]
    fn compaction_loses_nothing_and_finds_everything() {
        let mut idx = DedupIndex::default();
        let hash = |i: u64| xxhash_rust::xxh3::xxh3_64(&i.to_le_bytes());
        for round in 0..3u64 {
            for i in 0..50_000u64 {
                let n = round * 50_000 + i;
                idx.insert(hash(n), n as i64);
            }
            idx.compact();
        }
        // Extreme hashes land in the first and last directory buckets.
        idx.insert(0, -1);
        idx.insert(u64::MAX, -2);
        idx.compact();
        assert_eq!(idx.len(), 150_002);
        for n in (0..150_000u64).step_by(997) {
            assert_eq!(idx.candidates(hash(n)), vec![n as i64]);
        }
        assert_eq!(idx.candidates(0), vec![-1]);
        assert_eq!(idx.candidates(u64::MAX), vec![-2]);
        assert!(idx.candidates(hash(999_999)).is_empty());
        let sorted: Vec<u64> = (0..idx.base_hashes.len)
            .filter_map(|i| idx.base_hashes.get(i))
            .collect();
        assert!(sorted.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn hash_depends_on_source_and_id() {
        assert_ne!(DedupIndex::hash(1, "m"), DedupIndex::hash(2, "m"));
        assert_ne!(DedupIndex::hash(1, "m"), DedupIndex::hash(1, "n"));
        assert_eq!(DedupIndex::hash(1, "m"), DedupIndex::hash(1, "m"));
    }
}
