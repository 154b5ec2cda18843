//! The event log: where the embedded store keeps events.
//!
//! Events are appended to segment files beside the database (`kreislauf.db-events/`), one checksummed
//! frame per event, and fdatasync'd once per group before the group's metadata commits in SQLite. No
//! per-event B-tree write happens on the ingest path: that random write was what capped the old
//! events table (see BENCHMARKS.md).
//!
//! * The **active** segment is indexed in memory (profile, time and file position of each event).
//! * When it reaches the segment size it is **sealed**: its index is sorted by (profile, time, seq) and
//!   written once, sequentially, to `<first seq>.idx`. Only every 64th key of a sealed index stays in
//!   memory, so memory does not grow with the number of events.
//! * Reads (timeline, export, messageId verification) binary-search the sealed indexes and read the
//!   frames with positioned reads; they never block the writer.
//!
//! Invariants:
//! * Sequence numbers are contiguous, increasing in commit order. The store's `log_seq` watermark (in
//!   SQLite, committed with each group's metadata) says which frames are committed; frames after it are
//!   an unacknowledged group's and are cut off at open.
//! * Erasure overwrites a frame's message id, name and body with zeros in place, flags it as erased and
//!   rewrites the segment's index without it, so no copy of the person's events remains.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use kreislauf_core::ProfileId;
use kreislauf_store::{from_millis, NewEvent, Result, StoreError, StoredEvent, TimelineCursor};

/// Segments are sealed once they reach this size.
pub const DEFAULT_SEGMENT_BYTES: u64 = 128 << 20;
/// One key in this many of a sealed index is kept in memory.
const FENCE_EVERY: usize = 64;
const FRAME_HEADER: usize = 8;
/// Frames larger than this cannot be ours (an event is at most 32 KB, plus its fields).
const MAX_FRAME: usize = 4 << 20;
const FLAG_ERASED: u8 = 1;
const IDX_MAGIC: &[u8; 8] = b"KLIDX\0\0\x01";
const IDX_HEADER: u64 = 32;
const SEQ_ROW: u64 = 24;
const PROFILE_ROW: u64 = 40;

fn io_err(what: impl std::fmt::Display, e: std::io::Error) -> StoreError {
    StoreError::Backend(format!("event log: {what}: {e}"))
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("event log: {what}"))
}

fn checksum(payload: &[u8]) -> u32 {
    xxhash_rust::xxh3::xxh3_64(payload) as u32
}

/// One event as the log keeps it.
#[derive(Debug, Clone)]
struct Frame {
    flags: u8,
    seq: i64,
    source_id: i64,
    profile_id: i64,
    timestamp: i64,
    received_at: i64,
    dedup_hash: i64,
    kind: String,
    name: Option<String>,
    message_id: String,
    body: String,
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u32).to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
}

/// Appends the frame of `e` with sequence number `seq` to `buf`.
fn encode(buf: &mut Vec<u8>, seq: i64, e: &NewEvent) {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; FRAME_HEADER]);
    buf.push(0);
    for v in [
        seq,
        e.source_id,
        e.profile_id,
        e.timestamp.timestamp_millis(),
        e.received_at.timestamp_millis(),
        e.dedup_hash,
    ] {
        buf.extend_from_slice(&v.to_le_bytes());
    }
    put_str(buf, &e.kind);
    match &e.name {
        Some(name) => put_str(buf, name),
        None => buf.extend_from_slice(&u32::MAX.to_le_bytes()),
    }
    put_str(buf, &e.message_id);
    put_str(buf, &e.body);
    seal_frame(&mut buf[start..]);
}

/// Writes length and checksum into the header of a frame whose payload is in place.
fn seal_frame(frame: &mut [u8]) {
    let payload_len = (frame.len() - FRAME_HEADER) as u32;
    let sum = checksum(&frame[FRAME_HEADER..]);
    frame[0..4].copy_from_slice(&payload_len.to_le_bytes());
    frame[4..8].copy_from_slice(&sum.to_le_bytes());
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let out = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(out)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    /// A string and the position of its bytes within the payload.
    fn string(&mut self) -> Option<(Option<String>, usize, usize)> {
        let len = self.u32()?;
        if len == u32::MAX {
            return Some((None, self.at, 0));
        }
        let at = self.at;
        let raw = self.take(len as usize)?;
        Some((
            Some(String::from_utf8_lossy(raw).into_owned()),
            at,
            len as usize,
        ))
    }
}

/// Decodes a frame's payload (without the header).
fn decode(payload: &[u8]) -> Option<Frame> {
    let mut c = Cursor {
        bytes: payload,
        at: 0,
    };
    let flags = *c.take(1)?.first()?;
    let (seq, source_id, profile_id, timestamp, received_at, dedup_hash) =
        (c.i64()?, c.i64()?, c.i64()?, c.i64()?, c.i64()?, c.i64()?);
    let kind = c.string()?.0?;
    let name = c.string()?.0;
    let message_id = c.string()?.0?;
    let body = c.string()?.0?;
    Some(Frame {
        flags,
        seq,
        source_id,
        profile_id,
        timestamp,
        received_at,
        dedup_hash,
        kind,
        name,
        message_id,
        body,
    })
}

/// The payload with message id, name and body zeroed and the erased flag set.
fn erase_payload(payload: &mut [u8]) -> Option<()> {
    let mut spans = Vec::new();
    {
        let mut c = Cursor {
            bytes: payload,
            at: 0,
        };
        c.take(1 + 6 * 8)?;
        c.string()?; // kind: not personal
        for _ in 0..3 {
            let (_, at, len) = c.string()?;
            spans.push((at, len));
        }
    }
    *payload.first_mut()? |= FLAG_ERASED;
    for (at, len) in spans {
        payload.get_mut(at..at + len)?.fill(0);
    }
    Some(())
}

fn stored(frame: Frame) -> Result<StoredEvent> {
    Ok(StoredEvent {
        seq: frame.seq,
        source_id: frame.source_id,
        profile_id: frame.profile_id,
        message_id: frame.message_id,
        kind: frame.kind,
        name: frame.name,
        timestamp: from_millis(frame.timestamp),
        received_at: from_millis(frame.received_at),
        body: serde_json::from_str(&frame.body)
            .map_err(|e| corrupt(format!("event {} body: {e}", frame.seq)))?,
    })
}

/// Where an event is and what the indexes need of it.
#[derive(Debug, Clone, Copy)]
struct Entry {
    profile_id: i64,
    timestamp: i64,
    offset: u64,
    len: u32,
    dedup_hash: i64,
    erased: bool,
}

/// A key of the per-profile index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct ProfileKey {
    profile_id: i64,
    timestamp: i64,
    seq: i64,
}

/// A profile-index row: the key and where the frame is.
#[derive(Debug, Clone, Copy)]
struct Located {
    key: ProfileKey,
    offset: u64,
    len: u32,
}

struct Active {
    first_seq: i64,
    path: PathBuf,
    file: File,
    len: u64,
    /// In seq order: `entries[i]` is event `first_seq + i`.
    entries: Vec<Entry>,
    /// Profile → positions in `entries`, so that a timeline does not scan the segment.
    by_profile: std::collections::HashMap<ProfileId, Vec<u32>>,
}

impl Active {
    fn push(&mut self, entry: Entry) {
        self.by_profile
            .entry(entry.profile_id)
            .or_default()
            .push(self.entries.len() as u32);
        self.entries.push(entry);
    }
}

fn index_by_profile(entries: &[Entry]) -> std::collections::HashMap<ProfileId, Vec<u32>> {
    let mut by_profile: std::collections::HashMap<ProfileId, Vec<u32>> =
        std::collections::HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        by_profile.entry(e.profile_id).or_default().push(i as u32);
    }
    by_profile
}

struct Sealed {
    first_seq: i64,
    count: u64,
    log: File,
    idx_path: PathBuf,
    idx: File,
    /// Profile rows in the index (erased events are left out).
    rows: u64,
    /// `fences[i]` is the key of profile row `i * FENCE_EVERY`.
    fences: Vec<ProfileKey>,
}

struct State {
    sealed: Vec<Sealed>,
    active: Active,
    next_seq: i64,
    live: u64,
}

/// Frames written and synced but not yet visible: the group's SQLite commit decides.
pub struct PendingAppend {
    first_seq: i64,
    start: u64,
    entries: Vec<Entry>,
    bytes: u64,
}

impl PendingAppend {
    pub fn seqs(&self) -> Vec<i64> {
        (0..self.entries.len() as i64)
            .map(|i| self.first_seq + i)
            .collect()
    }
    pub fn last_seq(&self) -> Option<i64> {
        (!self.entries.is_empty()).then(|| self.first_seq + self.entries.len() as i64 - 1)
    }
}

/// The segment files of one store.
pub struct EventLog {
    dir: PathBuf,
    segment_bytes: u64,
    state: RwLock<State>,
}

fn segment_name(first_seq: i64, ext: &str) -> String {
    format!("{first_seq:020}.{ext}")
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(dir.display(), e))
}

impl EventLog {
    /// Opens the log in `dir`. `committed` is the store's watermark: frames after it are cut off.
    pub fn open(dir: &Path, committed: i64, segment_bytes: u64) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir.display(), e))?;
        let mut logs: Vec<i64> = std::fs::read_dir(dir)
            .map_err(|e| io_err(dir.display(), e))?
            .filter_map(|entry| {
                let name = entry.ok()?.file_name().into_string().ok()?;
                name.strip_suffix(".log")?.parse().ok()
            })
            .collect();
        logs.sort_unstable();
        let mut sealed = Vec::new();
        let mut active = None;
        for (i, &first_seq) in logs.iter().enumerate() {
            let log_path = dir.join(segment_name(first_seq, "log"));
            let idx_path = dir.join(segment_name(first_seq, "idx"));
            let is_last = i + 1 == logs.len();
            if is_last && !idx_path.exists() {
                active = Some(open_active(&log_path, first_seq, committed)?);
            } else {
                sealed.push(open_sealed(&log_path, &idx_path, first_seq)?);
            }
        }
        let sealed_end = sealed
            .last()
            .map(|s: &Sealed| s.first_seq + s.count as i64)
            .unwrap_or(committed.max(0) + 1);
        if sealed_end - 1 > committed.max(0) {
            return Err(corrupt(format!(
                "sealed segments reach event {} but the database has committed only up to {committed}",
                sealed_end - 1
            )));
        }
        let active = match active {
            Some(a) => a,
            None => create_active(dir, sealed_end)?,
        };
        let next_seq = active.first_seq + active.entries.len() as i64;
        let live = sealed.iter().map(|s| s.rows).sum::<u64>()
            + active.entries.iter().filter(|e| !e.erased).count() as u64;
        Ok(Self {
            dir: dir.to_owned(),
            segment_bytes,
            state: RwLock::new(State {
                sealed,
                active,
                next_seq,
                live,
            }),
        })
    }

    fn read_state(&self) -> Result<std::sync::RwLockReadGuard<'_, State>> {
        self.state
            .read()
            .map_err(|_| StoreError::Backend("event log lock poisoned".into()))
    }

    fn write_state(&self) -> Result<std::sync::RwLockWriteGuard<'_, State>> {
        self.state
            .write()
            .map_err(|_| StoreError::Backend("event log lock poisoned".into()))
    }

    /// Events stored and not erased.
    pub fn live_events(&self) -> Result<u64> {
        Ok(self.read_state()?.live)
    }

    /// The next sequence number to be given out.
    pub fn next_seq(&self) -> Result<i64> {
        Ok(self.read_state()?.next_seq)
    }

    /// Writes and syncs the frames of `events`. They become visible with [`Self::publish`]; call
    /// [`Self::abandon`] if the group does not commit. Only the store's single writer calls this.
    pub fn append(&self, events: &[NewEvent]) -> Result<PendingAppend> {
        let state = self.read_state()?;
        let first_seq = state.next_seq;
        let start = state.active.len;
        let mut buf = Vec::with_capacity(events.iter().map(|e| e.body.len() + 128).sum());
        let mut entries = Vec::with_capacity(events.len());
        for (i, e) in events.iter().enumerate() {
            let offset = start + buf.len() as u64;
            let before = buf.len();
            encode(&mut buf, first_seq + i as i64, e);
            entries.push(Entry {
                profile_id: e.profile_id,
                timestamp: e.timestamp.timestamp_millis(),
                offset,
                len: (buf.len() - before) as u32,
                dedup_hash: e.dedup_hash,
                erased: false,
            });
        }
        if !buf.is_empty() {
            let file = &state.active.file;
            file.write_all_at(&buf, start)
                .and_then(|()| file.sync_data())
                .map_err(|e| io_err(state.active.path.display(), e))?;
        }
        Ok(PendingAppend {
            first_seq,
            start,
            bytes: buf.len() as u64,
            entries,
        })
    }

    /// Makes a committed group visible; seals the active segment when it is full.
    pub fn publish(&self, pending: PendingAppend) -> Result<()> {
        if pending.entries.is_empty() {
            return Ok(());
        }
        let full = {
            let mut state = self.write_state()?;
            if state.next_seq != pending.first_seq || state.active.len != pending.start {
                return Err(corrupt("a group was published out of order"));
            }
            state.next_seq += pending.entries.len() as i64;
            state.live += pending.entries.len() as u64;
            state.active.len += pending.bytes;
            for entry in pending.entries {
                state.active.push(entry);
            }
            state.active.len >= self.segment_bytes
        };
        if full {
            // The group is committed whatever happens here; a failed seal is retried after the next group.
            if let Err(e) = self.seal() {
                tracing::warn!(error = %e, "sealing the active event segment failed; will retry");
            }
        }
        Ok(())
    }

    /// Forgets the frames of a group that did not commit.
    pub fn abandon(&self, pending: PendingAppend) -> Result<()> {
        let state = self.read_state()?;
        state
            .active
            .file
            .set_len(pending.start)
            .map_err(|e| io_err(state.active.path.display(), e))
    }

    /// Writes the active segment's sorted index and starts a new segment.
    fn seal(&self) -> Result<()> {
        let (first_seq, next_seq) = {
            let state = self.read_state()?;
            let a = &state.active;
            write_index(&self.dir, a.first_seq, &a.entries)?;
            (a.first_seq, state.next_seq)
        };
        let log_path = self.dir.join(segment_name(first_seq, "log"));
        let idx_path = self.dir.join(segment_name(first_seq, "idx"));
        let sealed = open_sealed(&log_path, &idx_path, first_seq)?;
        let fresh = create_active(&self.dir, next_seq)?;
        let mut state = self.write_state()?;
        state.sealed.push(sealed);
        state.active = fresh;
        tracing::info!(first_seq, next_seq, "sealed an event segment");
        Ok(())
    }

    /// The (seq, dedup hash) of live events after `after_seq`, in seq order.
    pub fn dedup_entries(&self, after_seq: i64, limit: usize) -> Result<Vec<(i64, i64)>> {
        let state = self.read_state()?;
        let mut out = Vec::new();
        for s in &state.sealed {
            if out.len() >= limit {
                return Ok(out);
            }
            let end = s.first_seq + s.count as i64;
            if end <= after_seq + 1 {
                continue;
            }
            let from = (after_seq + 1).max(s.first_seq);
            let n = ((end - from) as usize).min(limit - out.len());
            for (i, row) in s.seq_rows(from, n)?.into_iter().enumerate() {
                if !row.erased {
                    out.push((from + i as i64, row.dedup_hash));
                }
            }
        }
        let a = &state.active;
        let from = (after_seq + 1).max(a.first_seq);
        for (i, e) in a
            .entries
            .iter()
            .enumerate()
            .skip((from - a.first_seq) as usize)
        {
            if out.len() >= limit {
                break;
            }
            if !e.erased {
                out.push((a.first_seq + i as i64, e.dedup_hash));
            }
        }
        Ok(out)
    }

    /// Up to `limit` live events after `after_seq`, in seq order.
    pub fn events_after(&self, after_seq: i64, limit: usize) -> Result<Vec<StoredEvent>> {
        let state = self.read_state()?;
        let mut out = Vec::new();
        let mut seq = after_seq.max(0) + 1;
        while out.len() < limit && seq < state.next_seq {
            if let Some(frame) = state.frame_by_seq(seq)? {
                if frame.flags & FLAG_ERASED == 0 {
                    out.push(stored(frame)?);
                }
            }
            seq += 1;
        }
        Ok(out)
    }

    /// (seq, source, messageId) of live events among `seqs`.
    pub fn message_ids(&self, seqs: &[i64]) -> Result<Vec<(i64, i64, String)>> {
        let state = self.read_state()?;
        let mut out = Vec::with_capacity(seqs.len());
        for &seq in seqs {
            if let Some(frame) = state.frame_by_seq(seq)? {
                if frame.flags & FLAG_ERASED == 0 {
                    out.push((seq, frame.source_id, frame.message_id));
                }
            }
        }
        Ok(out)
    }

    /// Events of `members`, newest first, strictly before `before`.
    pub fn timeline(
        &self,
        members: &[ProfileId],
        before: Option<TimelineCursor>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>> {
        let cursor = before.map_or((i64::MAX, i64::MAX), |c| (c.timestamp_ms, c.seq));
        let state = self.read_state()?;
        let mut found: Vec<(Located, usize)> = state
            .locate(members)?
            .into_iter()
            .filter(|(l, _)| (l.key.timestamp, l.key.seq) < cursor)
            .collect();
        found.sort_by(|a, b| {
            (b.0.key.timestamp, b.0.key.seq).cmp(&(a.0.key.timestamp, a.0.key.seq))
        });
        found.truncate(limit);
        state.read_events(&found)
    }

    /// Every event of `members`, oldest first.
    pub fn events_of(&self, members: &[ProfileId]) -> Result<Vec<StoredEvent>> {
        let state = self.read_state()?;
        let mut found = state.locate(members)?;
        found.sort_by_key(|(l, _)| (l.key.timestamp, l.key.seq));
        state.read_events(&found)
    }

    /// Overwrites the events of `members` with zeros and drops them from the indexes. Returns how many.
    pub fn erase(&self, members: &[ProfileId]) -> Result<u64> {
        let (targets, touched) = {
            let state = self.read_state()?;
            let targets = state.locate(members)?;
            let mut touched: Vec<usize> = targets.iter().map(|(_, s)| *s).collect();
            touched.sort_unstable();
            touched.dedup();
            for (located, segment) in &targets {
                let (file, path) = state.segment_file(*segment);
                let mut frame = vec![0u8; located.len as usize];
                file.read_exact_at(&mut frame, located.offset)
                    .map_err(|e| io_err(&path, e))?;
                erase_payload(&mut frame[FRAME_HEADER..]).ok_or_else(|| {
                    corrupt(format!("event {} cannot be erased", located.key.seq))
                })?;
                seal_frame(&mut frame);
                // The log file handle is opened read-write for exactly this.
                file.write_all_at(&frame, located.offset)
                    .map_err(|e| io_err(&path, e))?;
            }
            for &segment in &touched {
                let (file, path) = state.segment_file(segment);
                file.sync_data().map_err(|e| io_err(&path, e))?;
            }
            (targets, touched)
        };
        let mut state = self.write_state()?;
        for (located, segment) in &targets {
            if *segment == usize::MAX {
                let a = &mut state.active;
                if let Some(e) = a.entries.get_mut((located.key.seq - a.first_seq) as usize) {
                    e.erased = true;
                }
            }
        }
        for segment in touched.into_iter().filter(|&s| s != usize::MAX) {
            let s = &state.sealed[segment];
            let entries = s.read_entries()?;
            let erased: std::collections::HashSet<i64> = targets
                .iter()
                .filter(|(_, seg)| *seg == segment)
                .map(|(l, _)| l.key.seq)
                .collect();
            let entries: Vec<Entry> = entries
                .into_iter()
                .enumerate()
                .map(|(i, mut e)| {
                    if erased.contains(&(s.first_seq + i as i64)) {
                        e.erased = true;
                    }
                    e
                })
                .collect();
            let first_seq = s.first_seq;
            write_index(&self.dir, first_seq, &entries)?;
            let log_path = self.dir.join(segment_name(first_seq, "log"));
            let idx_path = self.dir.join(segment_name(first_seq, "idx"));
            state.sealed[segment] = open_sealed(&log_path, &idx_path, first_seq)?;
        }
        state.live -= targets.len() as u64;
        Ok(targets.len() as u64)
    }
}

impl State {
    /// The frame file of a segment (`usize::MAX` is the active one) and its path for messages.
    fn segment_file(&self, segment: usize) -> (&File, String) {
        match self.sealed.get(segment) {
            Some(s) => (&s.log, format!("segment {}", s.first_seq)),
            None => (&self.active.file, self.active.path.display().to_string()),
        }
    }

    /// Every live event of `members` with the segment it is in (`usize::MAX` for the active one).
    fn locate(&self, members: &[ProfileId]) -> Result<Vec<(Located, usize)>> {
        let mut out = Vec::new();
        for (i, s) in self.sealed.iter().enumerate() {
            for &p in members {
                out.extend(s.profile_rows(p)?.into_iter().map(|l| (l, i)));
            }
        }
        let a = &self.active;
        let positions = members
            .iter()
            .filter_map(|p| a.by_profile.get(p))
            .flatten()
            .map(|&i| i as usize);
        for i in positions {
            let Some(e) = a.entries.get(i) else { continue };
            if !e.erased {
                out.push((
                    Located {
                        key: ProfileKey {
                            profile_id: e.profile_id,
                            timestamp: e.timestamp,
                            seq: a.first_seq + i as i64,
                        },
                        offset: e.offset,
                        len: e.len,
                    },
                    usize::MAX,
                ));
            }
        }
        Ok(out)
    }

    fn read_events(&self, found: &[(Located, usize)]) -> Result<Vec<StoredEvent>> {
        found
            .iter()
            .map(|(l, segment)| {
                let (file, path) = self.segment_file(*segment);
                let frame = read_frame(file, l.offset, l.len).map_err(|e| io_err(&path, e))?;
                let frame =
                    frame.ok_or_else(|| corrupt(format!("event {} is damaged", l.key.seq)))?;
                stored(frame)
            })
            .collect()
    }

    fn frame_by_seq(&self, seq: i64) -> Result<Option<Frame>> {
        let a = &self.active;
        if seq >= a.first_seq {
            let Some(e) = a.entries.get((seq - a.first_seq) as usize) else {
                return Ok(None);
            };
            return read_frame(&a.file, e.offset, e.len).map_err(|e| io_err(a.path.display(), e));
        }
        let i = self.sealed.partition_point(|s| s.first_seq <= seq);
        let Some(s) = i.checked_sub(1).and_then(|i| self.sealed.get(i)) else {
            return Ok(None);
        };
        if seq >= s.first_seq + s.count as i64 {
            return Ok(None);
        }
        let row = s.seq_rows(seq, 1)?;
        let Some(row) = row.first() else {
            return Ok(None);
        };
        read_frame(&s.log, row.offset, row.len).map_err(|e| io_err(s.first_seq, e))
    }
}

fn read_frame(file: &File, offset: u64, len: u32) -> std::io::Result<Option<Frame>> {
    let mut buf = vec![0u8; len as usize];
    file.read_exact_at(&mut buf, offset)?;
    Ok(check_frame(&buf).and_then(decode))
}

/// The payload of a complete, intact frame.
fn check_frame(frame: &[u8]) -> Option<&[u8]> {
    let len = u32::from_le_bytes(frame.get(0..4)?.try_into().ok()?) as usize;
    let sum = u32::from_le_bytes(frame.get(4..8)?.try_into().ok()?);
    let payload = frame.get(FRAME_HEADER..FRAME_HEADER + len)?;
    (checksum(payload) == sum).then_some(payload)
}

/// Reads the frames of a segment in order until the end, a damaged frame, a gap in the sequence or
/// `last_committed`. Returns the entries and the length of the good prefix.
fn scan(path: &Path, first_seq: i64, last_committed: i64) -> Result<(Vec<Entry>, u64)> {
    let file = File::open(path).map_err(|e| io_err(path.display(), e))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut entries = Vec::new();
    let mut offset = 0u64;
    let mut header = [0u8; FRAME_HEADER];
    loop {
        if reader.read_exact(&mut header).is_err() {
            break;
        }
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        if len > MAX_FRAME {
            break;
        }
        let mut frame = header.to_vec();
        frame.resize(FRAME_HEADER + len, 0);
        if reader.read_exact(&mut frame[FRAME_HEADER..]).is_err() {
            break;
        }
        let Some(f) = check_frame(&frame).and_then(decode) else {
            break;
        };
        let expected = first_seq + entries.len() as i64;
        if f.seq != expected || f.seq > last_committed {
            break;
        }
        entries.push(Entry {
            profile_id: f.profile_id,
            timestamp: f.timestamp,
            offset,
            len: frame.len() as u32,
            dedup_hash: f.dedup_hash,
            erased: f.flags & FLAG_ERASED != 0,
        });
        offset += frame.len() as u64;
    }
    Ok((entries, offset))
}

fn open_rw(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| io_err(path.display(), e))
}

fn open_active(path: &Path, first_seq: i64, committed: i64) -> Result<Active> {
    let (entries, good) = scan(path, first_seq, committed)?;
    let file = open_rw(path)?;
    let on_disk = file
        .metadata()
        .map_err(|e| io_err(path.display(), e))?
        .len();
    if on_disk != good {
        // An unacknowledged group's frames, or a torn write: never acknowledged, so cut off.
        tracing::warn!(
            segment = first_seq,
            cut_bytes = on_disk - good,
            "cutting uncommitted frames off the event log"
        );
        file.set_len(good)
            .and_then(|()| file.sync_all())
            .map_err(|e| io_err(path.display(), e))?;
    }
    Ok(Active {
        first_seq,
        path: path.to_owned(),
        file,
        len: good,
        by_profile: index_by_profile(&entries),
        entries,
    })
}

fn create_active(dir: &Path, first_seq: i64) -> Result<Active> {
    let path = dir.join(segment_name(first_seq, "log"));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| io_err(path.display(), e))?;
    sync_dir(dir)?;
    let len = file
        .metadata()
        .map_err(|e| io_err(path.display(), e))?
        .len();
    if len != 0 {
        return Err(corrupt(format!(
            "new segment {} is not empty",
            path.display()
        )));
    }
    Ok(Active {
        first_seq,
        path,
        file,
        len: 0,
        entries: Vec::new(),
        by_profile: std::collections::HashMap::new(),
    })
}

/// A row of a sealed index's seq table.
struct SeqRow {
    offset: u64,
    len: u32,
    erased: bool,
    dedup_hash: i64,
}

/// Writes `<first_seq>.idx` for `entries` (in seq order), atomically.
fn write_index(dir: &Path, first_seq: i64, entries: &[Entry]) -> Result<()> {
    let mut rows: Vec<Located> = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| !e.erased)
        .map(|(i, e)| Located {
            key: ProfileKey {
                profile_id: e.profile_id,
                timestamp: e.timestamp,
                seq: first_seq + i as i64,
            },
            offset: e.offset,
            len: e.len,
        })
        .collect();
    rows.sort_unstable_by_key(|l| l.key);
    let mut buf = Vec::with_capacity(
        IDX_HEADER as usize + entries.len() * SEQ_ROW as usize + rows.len() * PROFILE_ROW as usize,
    );
    buf.extend_from_slice(IDX_MAGIC);
    buf.extend_from_slice(&first_seq.to_le_bytes());
    buf.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    buf.extend_from_slice(&(rows.len() as u64).to_le_bytes());
    for e in entries {
        buf.extend_from_slice(&e.offset.to_le_bytes());
        buf.extend_from_slice(&e.len.to_le_bytes());
        buf.extend_from_slice(&u32::from(e.erased).to_le_bytes());
        buf.extend_from_slice(&e.dedup_hash.to_le_bytes());
    }
    for l in &rows {
        for v in [l.key.profile_id, l.key.timestamp, l.key.seq] {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        buf.extend_from_slice(&l.offset.to_le_bytes());
        buf.extend_from_slice(&u64::from(l.len).to_le_bytes());
    }
    let path = dir.join(segment_name(first_seq, "idx"));
    let tmp = dir.join(segment_name(first_seq, "idx.tmp"));
    let mut file = File::create(&tmp).map_err(|e| io_err(tmp.display(), e))?;
    file.write_all(&buf)
        .and_then(|()| file.sync_all())
        .map_err(|e| io_err(tmp.display(), e))?;
    std::fs::rename(&tmp, &path).map_err(|e| io_err(path.display(), e))?;
    sync_dir(dir)
}

fn open_sealed(log_path: &Path, idx_path: &Path, first_seq: i64) -> Result<Sealed> {
    let log = open_rw(log_path)?;
    let opened = File::open(idx_path).ok().and_then(|idx| {
        let mut header = [0u8; IDX_HEADER as usize];
        idx.read_exact_at(&mut header, 0).ok()?;
        let word = |i: usize| u64::from_le_bytes(header[i..i + 8].try_into().unwrap_or([0; 8]));
        let (stored_first, count, rows) = (word(8) as i64, word(16), word(24));
        let expected = IDX_HEADER + count * SEQ_ROW + rows * PROFILE_ROW;
        let len = idx.metadata().ok()?.len();
        (&header[0..8] == IDX_MAGIC && stored_first == first_seq && len == expected)
            .then_some((idx, count, rows))
    });
    let (idx, count, rows) = match opened {
        Some(found) => found,
        None => {
            // Sealing was interrupted: the frames are all there, the index is rebuilt from them.
            tracing::warn!(
                segment = first_seq,
                "rebuilding a missing event segment index"
            );
            let (entries, _) = scan(log_path, first_seq, i64::MAX)?;
            let dir = log_path.parent().unwrap_or(Path::new("."));
            write_index(dir, first_seq, &entries)?;
            return open_sealed(log_path, idx_path, first_seq);
        }
    };
    let mut sealed = Sealed {
        first_seq,
        count,
        log,
        idx_path: idx_path.to_owned(),
        idx,
        rows,
        fences: Vec::new(),
    };
    let mut fences = Vec::with_capacity(rows as usize / FENCE_EVERY + 1);
    for row in (0..rows).step_by(FENCE_EVERY) {
        if let Some(l) = sealed.read_profile_rows(row, 1)?.first() {
            fences.push(l.key);
        }
    }
    sealed.fences = fences;
    Ok(sealed)
}

impl Sealed {
    fn io(&self, e: std::io::Error) -> StoreError {
        io_err(self.idx_path.display(), e)
    }

    fn seq_rows(&self, from_seq: i64, n: usize) -> Result<Vec<SeqRow>> {
        let at = IDX_HEADER + (from_seq - self.first_seq) as u64 * SEQ_ROW;
        let mut buf = vec![0u8; n * SEQ_ROW as usize];
        self.idx
            .read_exact_at(&mut buf, at)
            .map_err(|e| self.io(e))?;
        Ok(buf
            .chunks_exact(SEQ_ROW as usize)
            .map(|c| {
                let word = |i: usize| u64::from_le_bytes(c[i..i + 8].try_into().unwrap_or([0; 8]));
                let half = |i: usize| u32::from_le_bytes(c[i..i + 4].try_into().unwrap_or([0; 4]));
                SeqRow {
                    offset: word(0),
                    len: half(8),
                    erased: half(12) != 0,
                    dedup_hash: word(16) as i64,
                }
            })
            .collect())
    }

    fn read_entries(&self) -> Result<Vec<Entry>> {
        // Profile and time are not needed to rewrite the index of erased rows: they come from the rows.
        let rows = self.seq_rows(self.first_seq, self.count as usize)?;
        let mut keys = std::collections::HashMap::with_capacity(self.rows as usize);
        for l in self.read_profile_rows(0, self.rows as usize)? {
            keys.insert(l.key.seq, (l.key.profile_id, l.key.timestamp));
        }
        Ok(rows
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                let (profile_id, timestamp) = keys
                    .get(&(self.first_seq + i as i64))
                    .copied()
                    .unwrap_or((0, 0));
                Entry {
                    profile_id,
                    timestamp,
                    offset: r.offset,
                    len: r.len,
                    dedup_hash: r.dedup_hash,
                    erased: r.erased || !keys.contains_key(&(self.first_seq + i as i64)),
                }
            })
            .collect())
    }

    fn read_profile_rows(&self, from_row: u64, n: usize) -> Result<Vec<Located>> {
        let n = n.min(self.rows.saturating_sub(from_row) as usize);
        let at = IDX_HEADER + self.count * SEQ_ROW + from_row * PROFILE_ROW;
        let mut buf = vec![0u8; n * PROFILE_ROW as usize];
        self.idx
            .read_exact_at(&mut buf, at)
            .map_err(|e| self.io(e))?;
        Ok(buf
            .chunks_exact(PROFILE_ROW as usize)
            .map(|c| {
                let word = |i: usize| u64::from_le_bytes(c[i..i + 8].try_into().unwrap_or([0; 8]));
                Located {
                    key: ProfileKey {
                        profile_id: word(0) as i64,
                        timestamp: word(8) as i64,
                        seq: word(16) as i64,
                    },
                    offset: word(24),
                    len: word(32) as u32,
                }
            })
            .collect())
    }

    /// The index rows of one profile.
    fn profile_rows(&self, profile: ProfileId) -> Result<Vec<Located>> {
        let block = self
            .fences
            .partition_point(|k| k.profile_id < profile)
            .saturating_sub(1);
        let mut row = (block * FENCE_EVERY) as u64;
        let mut out = Vec::new();
        while row < self.rows {
            let chunk = self.read_profile_rows(row, FENCE_EVERY)?;
            row += chunk.len() as u64;
            for l in chunk {
                match l.key.profile_id.cmp(&profile) {
                    std::cmp::Ordering::Less => {}
                    std::cmp::Ordering::Equal => out.push(l),
                    std::cmp::Ordering::Greater => return Ok(out),
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn event(profile: i64, message: &str, secs: i64) -> NewEvent {
        NewEvent {
            source_id: 1,
            profile_id: profile,
            message_id: message.into(),
            dedup_hash: message.len() as i64,
            kind: "track".into(),
            name: Some("Order Completed".into()),
            timestamp: Utc.timestamp_opt(secs, 0).unwrap(),
            received_at: Utc.timestamp_opt(secs, 0).unwrap(),
            body: format!(r#"{{"messageId":"{message}","secret":"geheim-{message}"}}"#),
        }
    }

    fn append_all(log: &EventLog, events: &[NewEvent]) -> i64 {
        let pending = log.append(events).unwrap();
        let last = pending.last_seq().unwrap();
        log.publish(pending).unwrap();
        last
    }

    fn files_contain(dir: &Path, needle: &str) -> bool {
        std::fs::read_dir(dir).unwrap().any(|f| {
            let bytes = std::fs::read(f.unwrap().path()).unwrap();
            bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
        })
    }

    #[test]
    fn frames_round_trip_and_reject_damage() {
        let mut buf = Vec::new();
        encode(&mut buf, 7, &event(3, "m-1", 100));
        let frame = decode(check_frame(&buf).unwrap()).unwrap();
        assert_eq!(
            (frame.seq, frame.profile_id, frame.message_id.as_str()),
            (7, 3, "m-1")
        );
        let last = buf.len() - 1;
        buf[last] ^= 1;
        assert!(check_frame(&buf).is_none());
    }

    #[test]
    fn timelines_span_sealed_and_active_segments_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(dir.path(), 0, 600).unwrap();
        let mut last = 0;
        for i in 0..40 {
            last = append_all(&log, &[event(i % 3, &format!("m-{i}"), 1000 - i)]);
        }
        assert!(
            log.read_state().unwrap().sealed.len() > 3,
            "small segments seal"
        );
        let newest = log.timeline(&[1], None, 5).unwrap();
        let times: Vec<i64> = newest.iter().map(|e| e.timestamp.timestamp()).collect();
        assert_eq!(times, [999, 996, 993, 990, 987]);
        let cursor = TimelineCursor {
            timestamp_ms: newest[4].timestamp.timestamp_millis(),
            seq: newest[4].seq,
        };
        let next = log.timeline(&[1], Some(cursor), 2).unwrap();
        assert_eq!(next[0].timestamp.timestamp(), 984);
        assert_eq!(log.events_of(&[0, 2]).unwrap().len(), 27);
        drop(log);

        let reopened = EventLog::open(dir.path(), last, 600).unwrap();
        assert_eq!(reopened.live_events().unwrap(), 40);
        assert_eq!(reopened.next_seq().unwrap(), 41);
        let ids = reopened.message_ids(&[1, 20, 40, 41]).unwrap();
        let found: Vec<&str> = ids.iter().map(|(_, _, m)| m.as_str()).collect();
        assert_eq!(found, ["m-0", "m-19", "m-39"]);
        let dedup = reopened.dedup_entries(10, 100).unwrap();
        assert_eq!(dedup.first().map(|d| d.0), Some(11));
        assert_eq!(dedup.len(), 30);
    }

    #[test]
    fn uncommitted_and_torn_frames_are_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(dir.path(), 0, DEFAULT_SEGMENT_BYTES).unwrap();
        let committed = append_all(&log, &[event(1, "a", 1), event(1, "b", 2)]);
        // Written and synced, but the group never committed.
        let _pending = log.append(&[event(1, "c", 3)]).unwrap();
        drop(log);
        let path = dir.path().join(segment_name(1, "log"));
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[1, 2, 3]).unwrap();
        drop(f);

        let log = EventLog::open(dir.path(), committed, DEFAULT_SEGMENT_BYTES).unwrap();
        assert_eq!(log.live_events().unwrap(), 2);
        assert_eq!(log.next_seq().unwrap(), 3);
        let again = append_all(&log, &[event(1, "d", 4)]);
        assert_eq!(again, 3);
        let names: Vec<String> = log
            .events_of(&[1])
            .unwrap()
            .into_iter()
            .map(|e| e.message_id)
            .collect();
        assert_eq!(names, ["a", "b", "d"]);
    }

    #[test]
    fn abandoned_groups_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(dir.path(), 0, DEFAULT_SEGMENT_BYTES).unwrap();
        append_all(&log, &[event(1, "a", 1)]);
        let pending = log.append(&[event(1, "b", 2)]).unwrap();
        log.abandon(pending).unwrap();
        assert_eq!(append_all(&log, &[event(1, "c", 3)]), 2);
        assert!(!files_contain(dir.path(), "geheim-b"));
    }

    #[test]
    fn erasure_zeroes_frames_everywhere() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(dir.path(), 0, 400).unwrap();
        let mut last = 0;
        for i in 0..12 {
            last = append_all(&log, &[event(i % 2, &format!("m-{i}"), i)]);
        }
        assert!(files_contain(dir.path(), "geheim-m-3"));
        assert_eq!(log.erase(&[1]).unwrap(), 6);
        assert!(!files_contain(dir.path(), "geheim-m-3"));
        assert!(!files_contain(dir.path(), "geheim-m-11"));
        assert!(files_contain(dir.path(), "geheim-m-4"), "others stay");
        assert!(log.events_of(&[1]).unwrap().is_empty());
        assert_eq!(log.events_of(&[0]).unwrap().len(), 6);
        assert_eq!(log.live_events().unwrap(), 6);
        assert!(log.message_ids(&[2]).unwrap().is_empty());
        drop(log);
        let log = EventLog::open(dir.path(), last, 400).unwrap();
        assert_eq!(log.live_events().unwrap(), 6);
        assert_eq!(log.dedup_entries(0, 100).unwrap().len(), 6);
    }

    #[test]
    fn a_lost_index_is_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(dir.path(), 0, 300).unwrap();
        let mut last = 0;
        for i in 0..10 {
            last = append_all(&log, &[event(5, &format!("m-{i}"), i)]);
        }
        drop(log);
        let idx = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|f| f.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "idx"))
            .unwrap();
        std::fs::remove_file(idx).unwrap();
        let log = EventLog::open(dir.path(), last, 300).unwrap();
        assert_eq!(log.events_of(&[5]).unwrap().len(), 10);
    }
}
