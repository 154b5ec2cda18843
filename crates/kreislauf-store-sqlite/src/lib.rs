//! The embedded default store: profiles, identities, traits, merges and everything else in one SQLite
//! database in WAL mode with `synchronous = FULL`; events in the append-only [`eventlog`] beside it.
//! Both are synced before `apply` returns, so a committed group survives a process kill and a power loss.
//!
//! One writer connection (the ingest writer serialises all writes anyway) and a few reader connections;
//! every call runs on tokio's blocking pool.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kreislauf_core::{
    Identifier, IdentifierKind, IdentityGraph, IdentityMapping, ProfileId, Source, SourceId,
};
use kreislauf_store::{
    from_millis, to_millis, AudienceRecord, AudienceWrite, AuditEntry, ConflictRecord,
    DefinitionRecord, EraseReport, IdentityRecord, MergeRecord, NewEvent, NewReview, NewSource,
    ProfileExport, ProfileRecord, Result, ReviewRecord, Store, StoreError, StoreStats, StoredEvent,
    TimelineCursor, TokenRecord, TraitValue, WriteBatch, WriteKey,
};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row, Transaction};
use serde_json::Value;

pub mod eventlog;

use eventlog::EventLog;

const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_reviews.sql"),
    include_str!("../migrations/0003_events_to_log.sql"),
    include_str!("../migrations/0004_audiences.sql"),
    include_str!("../migrations/0005_trait_quality.sql"),
    include_str!("../migrations/0006_report_snapshots.sql"),
];
/// The `meta` key of the audience watermark.
const AUDIENCE_WATERMARK: &str = "audience_seq";
/// The migration that moves events out of SQLite into the event log.
const EVENTS_TO_LOG: usize = 2;
/// The `meta` key of the last event seq whose group committed.
const LOG_WATERMARK: &str = "log_seq";
const READERS: usize = 4;

fn db_err(e: rusqlite::Error) -> StoreError {
    StoreError::backend(e)
}

/// The SQLite store. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

/// Tuning of the embedded store.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Event-log segments are sealed (indexed and closed) at this size.
    pub segment_bytes: u64,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            segment_bytes: eventlog::DEFAULT_SEGMENT_BYTES,
        }
    }
}

/// The event-log folder of the database at `path`.
pub fn events_dir(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}-events", path.display()))
}

struct Inner {
    path: PathBuf,
    log: EventLog,
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and runs pending migrations.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// [`Self::open`] with explicit tuning.
    pub fn open_with(path: &Path, options: SqliteOptions) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Backend(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let mut writer = Connection::open(path).map_err(db_err)?;
        configure(&writer, true)?;
        let log = EventLog::open(
            &events_dir(path),
            log_watermark(&writer)?,
            options.segment_bytes,
        )?;
        migrate(&mut writer, &log)?;
        let readers = (0..READERS)
            .map(|_| {
                let conn = Connection::open(path).map_err(db_err)?;
                configure(&conn, false)?;
                Ok(Mutex::new(conn))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                log,
                writer: Mutex::new(writer),
                readers,
                next_reader: AtomicUsize::new(0),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner
                .writer
                .lock()
                .map_err(|_| StoreError::Backend("writer lock poisoned".into()))?;
            f(&mut conn)
        })
        .await
        .map_err(StoreError::backend)?
    }

    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let i = inner.next_reader.fetch_add(1, Ordering::Relaxed) % inner.readers.len();
            let conn = inner.readers[i]
                .lock()
                .map_err(|_| StoreError::Backend("reader lock poisoned".into()))?;
            f(&conn)
        })
        .await
        .map_err(StoreError::backend)?
    }
}

fn configure(conn: &Connection, writer: bool) -> Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(db_err)?;
    conn.set_prepared_statement_cache_capacity(128);
    // WAL + FULL: a commit is fsynced before it returns. secure_delete zeroes freed pages so that erased
    // personal data does not linger in the file.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA secure_delete = ON;
         PRAGMA temp_store = MEMORY;
         PRAGMA wal_autocheckpoint = 8192;
         PRAGMA journal_size_limit = 67108864;",
    )
    .map_err(db_err)?;
    // Events live in the event log, so the database holds only metadata: small caches suffice.
    let cache_kib = if writer { 32 * 1024 } else { 8 * 1024 };
    conn.execute_batch(&format!("PRAGMA cache_size = -{cache_kib};"))
        .map_err(db_err)?;
    Ok(())
}

/// The committed end of the event log, 0 for a new database.
fn log_watermark(conn: &Connection) -> Result<i64> {
    let has_meta: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
            [],
            |r| r.get(0),
        )
        .map_err(db_err)?;
    if !has_meta {
        return Ok(0);
    }
    let value: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [LOG_WATERMARK],
            |r| r.get(0),
        )
        .optional()
        .map_err(db_err)?;
    value.map_or(Ok(0), |v| {
        v.parse()
            .map_err(|_| StoreError::Corrupt(format!("meta {LOG_WATERMARK} = {v:?}")))
    })
}

fn set_log_watermark(conn: &Connection, seq: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    )
    .and_then(|mut stmt| stmt.execute(params![LOG_WATERMARK, seq.to_string()]))
    .map_err(db_err)?;
    Ok(())
}

/// Moves the events of a store written before the event log into it, renumbered in seq order.
fn copy_events_to_log(tx: &Transaction<'_>, log: &EventLog) -> Result<()> {
    let mut after = 0i64;
    let mut copied = 0u64;
    loop {
        let rows: Vec<(i64, NewEvent)> = {
            let mut stmt = tx
                .prepare(
                    "SELECT seq, source_id, profile_id, message_id, dedup_hash, kind, name, timestamp, received_at, body
                     FROM events WHERE seq > ?1 ORDER BY seq LIMIT 10000",
                )
                .map_err(db_err)?;
            let rows = stmt
                .query_map([after], |r| {
                    Ok((
                        r.get(0)?,
                        NewEvent {
                            source_id: r.get(1)?,
                            profile_id: r.get(2)?,
                            message_id: r.get(3)?,
                            dedup_hash: r.get(4)?,
                            kind: r.get(5)?,
                            name: r.get(6)?,
                            timestamp: from_millis(r.get(7)?),
                            received_at: from_millis(r.get(8)?),
                            body: r.get(9)?,
                        },
                    ))
                })
                .map_err(db_err)?;
            rows.collect::<rusqlite::Result<_>>().map_err(db_err)?
        };
        let Some(&(last, _)) = rows.last() else { break };
        after = last;
        copied += rows.len() as u64;
        let events: Vec<NewEvent> = rows.into_iter().map(|(_, e)| e).collect();
        let pending = log.append(&events)?;
        if let Some(seq) = pending.last_seq() {
            set_log_watermark(tx, seq)?;
        }
        log.publish(pending)?;
    }
    if copied > 0 {
        tracing::info!(
            events = copied,
            "moved events from the database into the event log"
        );
    }
    Ok(())
}

fn migrate(conn: &mut Connection, log: &EventLog) -> Result<()> {
    let current: usize = conn
        .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
        .map_err(db_err)? as usize;
    if current > MIGRATIONS.len() {
        return Err(StoreError::Corrupt(format!(
            "database schema version {current} is newer than this binary knows ({}); upgrade kreislauf",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction().map_err(db_err)?;
        if i == EVENTS_TO_LOG {
            copy_events_to_log(&tx, log)?;
        }
        tx.execute_batch(sql).map_err(db_err)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))
            .map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        tracing::info!(version = i + 1, "applied sqlite migration");
    }
    Ok(())
}

fn opt_millis(v: Option<i64>) -> Option<DateTime<Utc>> {
    v.map(from_millis)
}

fn parse_kind(s: &str) -> rusqlite::Result<IdentifierKind> {
    s.parse()
        .map_err(|e: kreislauf_core::identity::UnknownIdentifierKind| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })
}

fn parse_json<T: serde::de::DeserializeOwned>(s: &str) -> rusqlite::Result<T> {
    serde_json::from_str(s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn source_from_row(r: &Row<'_>) -> rusqlite::Result<Source> {
    let mapping: String = r.get(4)?;
    let origins: String = r.get(5)?;
    Ok(Source {
        id: r.get(0)?,
        name: r.get(1)?,
        brand: r.get(2)?,
        channel: r.get(3)?,
        identity_mapping: parse_json::<IdentityMapping>(&mapping)?,
        allowed_origins: parse_json(&origins)?,
    })
}

fn token_from_row(r: &Row<'_>) -> rusqlite::Result<TokenRecord> {
    Ok(TokenRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        created_at: from_millis(r.get(2)?),
        revoked_at: opt_millis(r.get(3)?),
    })
}

const MERGE_COLUMNS: &str =
    "id, winner, loser, identifier_kind, identifier_value, reason, message_id, created_at, reverted_at, revert_reason";

fn merge_from_row(r: &Row<'_>) -> rusqlite::Result<MergeRecord> {
    let kind: String = r.get(3)?;
    Ok(MergeRecord {
        id: r.get(0)?,
        winner: r.get(1)?,
        loser: r.get(2)?,
        identifier: Identifier {
            kind: parse_kind(&kind)?,
            value: r.get(4)?,
        },
        reason: r.get(5)?,
        message_id: r.get(6)?,
        created_at: from_millis(r.get(7)?),
        reverted_at: opt_millis(r.get(8)?),
        revert_reason: r.get(9)?,
    })
}

fn conflict_from_row(r: &Row<'_>) -> rusqlite::Result<ConflictRecord> {
    let kind: String = r.get(1)?;
    Ok(ConflictRecord {
        id: r.get(0)?,
        identifier: Identifier {
            kind: parse_kind(&kind)?,
            value: r.get(2)?,
        },
        kept_on: r.get(3)?,
        event_profile: r.get(4)?,
        reason: r.get(5)?,
        created_at: from_millis(r.get(6)?),
    })
}

/// `?,?,?` for `n` parameters.
fn placeholders(n: usize) -> String {
    vec!["?"; n].join(",")
}

fn root_of(conn: &Connection, mut profile: ProfileId) -> Result<Option<ProfileId>> {
    let mut stmt = conn
        .prepare_cached("SELECT merged_into FROM profiles WHERE id = ?1")
        .map_err(db_err)?;
    for _ in 0..64 {
        let next: Option<Option<ProfileId>> = stmt
            .query_row([profile], |r| r.get(0))
            .optional()
            .map_err(db_err)?;
        match next {
            None => return Ok(None),
            Some(None) => return Ok(Some(profile)),
            Some(Some(next)) => profile = next,
        }
    }
    Err(StoreError::Corrupt(format!(
        "merge chain of profile {profile} is too long"
    )))
}

/// The root and every profile merged into it, directly or not.
fn members(conn: &Connection, root: ProfileId) -> Result<Vec<ProfileId>> {
    let mut stmt = conn
        .prepare_cached(
            "WITH RECURSIVE m(id) AS (SELECT ?1 UNION SELECT p.id FROM profiles p JOIN m ON p.merged_into = m.id)
             SELECT id FROM m ORDER BY id",
        )
        .map_err(db_err)?;
    let rows = stmt.query_map([root], |r| r.get(0)).map_err(db_err)?;
    rows.collect::<rusqlite::Result<Vec<ProfileId>>>()
        .map_err(db_err)
}

fn profile_record(conn: &Connection, root: ProfileId) -> Result<Option<ProfileRecord>> {
    let created: Option<(Option<ProfileId>, i64)> = conn
        .prepare_cached("SELECT merged_into, created_at FROM profiles WHERE id = ?1")
        .and_then(|mut stmt| {
            stmt.query_row([root], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(db_err)?;
    let Some((None, created_at)) = created else {
        return Ok(None);
    };
    let members = members(conn, root)?;
    let in_list = placeholders(members.len());
    let mut identities = Vec::new();
    {
        // Cached: the text differs only by the number of members, mostly one.
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT kind, value, profile_id, source_id, first_seen FROM identities WHERE profile_id IN ({in_list}) ORDER BY kind, value"
            ))
            .map_err(db_err)?;
        let rows = stmt
            .query_map(params_from_iter(&members), |r| {
                let kind: String = r.get(0)?;
                Ok(IdentityRecord {
                    kind: parse_kind(&kind)?,
                    value: r.get(1)?,
                    profile_id: r.get(2)?,
                    source_id: r.get(3)?,
                    first_seen: from_millis(r.get(4)?),
                })
            })
            .map_err(db_err)?;
        for row in rows {
            identities.push(row.map_err(db_err)?);
        }
    }
    identities.sort_by(|a, b| (a.kind, &a.value).cmp(&(b.kind, &b.value)));
    let mut traits: BTreeMap<String, TraitValue> = BTreeMap::new();
    {
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT key, value, source_id, event_time, profile_id, raw, status FROM traits WHERE profile_id IN ({in_list})"
            ))
            .map_err(db_err)?;
        let rows = stmt
            .query_map(params_from_iter(&members), |r| {
                let key: String = r.get(0)?;
                let value: String = r.get(1)?;
                Ok((
                    key,
                    TraitValue {
                        value: parse_json(&value)?,
                        source_id: r.get(2)?,
                        updated_at: from_millis(r.get(3)?),
                        profile_id: r.get(4)?,
                        raw: r
                            .get::<_, Option<String>>(5)?
                            .map(|v| parse_json(&v))
                            .transpose()?,
                        status: r
                            .get::<_, Option<String>>(6)?
                            .map(|v| parse_json(&v))
                            .transpose()?,
                    },
                ))
            })
            .map_err(db_err)?;
        for row in rows {
            let (key, value) = row.map_err(db_err)?;
            let newer = traits.get(&key).is_none_or(|old| {
                (value.updated_at, value.profile_id) > (old.updated_at, old.profile_id)
            });
            if newer {
                traits.insert(key, value);
            }
        }
    }
    Ok(Some(ProfileRecord {
        id: root,
        created_at: from_millis(created_at),
        members,
        identities,
        traits,
    }))
}

fn load_graph(conn: &Connection, identifiers: &[Identifier]) -> Result<IdentityGraph> {
    let mut graph = IdentityGraph::default();
    let mut roots = HashSet::new();
    let mut link_stmt = conn
        .prepare_cached("SELECT profile_id FROM identities WHERE kind = ?1 AND value = ?2")
        .map_err(db_err)?;
    let mut parent_stmt = conn
        .prepare_cached("SELECT merged_into FROM profiles WHERE id = ?1")
        .map_err(db_err)?;
    for id in identifiers {
        let Some(profile) = link_stmt
            .query_row(params![id.kind.as_str(), id.value], |r| {
                r.get::<_, ProfileId>(0)
            })
            .optional()
            .map_err(db_err)?
        else {
            continue;
        };
        graph.links.insert(id.clone(), profile);
        let mut current = profile;
        for _ in 0..64 {
            if graph.merged_into.contains_key(&current) {
                current = graph.root(current);
                break;
            }
            let parent: Option<Option<ProfileId>> = parent_stmt
                .query_row([current], |r| r.get(0))
                .optional()
                .map_err(db_err)?;
            match parent {
                Some(Some(next)) => {
                    graph.merged_into.insert(current, next);
                    current = next;
                }
                _ => break,
            }
        }
        roots.insert(current);
    }
    let mut uniques_stmt = conn
        .prepare_cached(
            "WITH RECURSIVE m(id) AS (SELECT ?1 UNION SELECT p.id FROM profiles p JOIN m ON p.merged_into = m.id)
             SELECT kind, value FROM identities WHERE kind = 'user_id' AND profile_id IN (SELECT id FROM m)",
        )
        .map_err(db_err)?;
    let mut blocked_stmt = conn
        .prepare_cached("SELECT winner, loser FROM merges WHERE reverted_at IS NOT NULL AND (winner = ?1 OR loser = ?1)")
        .map_err(db_err)?;
    for root in roots {
        let uniques = uniques_stmt
            .query_map([root], |r| {
                let kind: String = r.get(0)?;
                Ok(Identifier {
                    kind: parse_kind(&kind)?,
                    value: r.get(1)?,
                })
            })
            .map_err(db_err)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(db_err)?;
        if !uniques.is_empty() {
            graph.uniques.insert(root, uniques);
        }
        let pairs = blocked_stmt
            .query_map([root], |r| {
                Ok((r.get::<_, ProfileId>(0)?, r.get::<_, ProfileId>(1)?))
            })
            .map_err(db_err)?;
        for pair in pairs {
            let (a, b) = pair.map_err(db_err)?;
            graph.blocked.insert((a.min(b), a.max(b)));
        }
    }
    Ok(graph)
}

/// Writes everything of `batch` but its events, which go to the event log.
fn apply(tx: &Transaction<'_>, batch: &WriteBatch) -> Result<()> {
    {
        let mut stmt = tx
            .prepare_cached(
                "INSERT INTO profiles (id, merged_into, created_at) VALUES (?1, NULL, ?2)",
            )
            .map_err(db_err)?;
        let mut high = 0;
        for (id, at) in &batch.new_profiles {
            stmt.execute(params![id, to_millis(*at)]).map_err(db_err)?;
            high = high.max(*id);
        }
        if high > 0 {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('max_profile_id', ?1)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value WHERE CAST(excluded.value AS INTEGER) > CAST(meta.value AS INTEGER)",
                [high.to_string()],
            )
            .map_err(db_err)?;
        }
    }
    {
        let mut stmt = tx
            .prepare_cached(
                "INSERT INTO identities (kind, value, profile_id, source_id, first_seen) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (kind, value) DO NOTHING",
            )
            .map_err(db_err)?;
        for link in &batch.links {
            stmt.execute(params![
                link.identifier.kind.as_str(),
                link.identifier.value,
                link.profile_id,
                link.source_id,
                to_millis(link.at)
            ])
            .map_err(db_err)?;
        }
    }
    {
        let mut point = tx
            .prepare_cached(
                "UPDATE profiles SET merged_into = ?1 WHERE id = ?2 AND merged_into IS NULL",
            )
            .map_err(db_err)?;
        let mut record = tx
            .prepare_cached(
                "INSERT INTO merges (winner, loser, identifier_kind, identifier_value, reason, message_id, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(db_err)?;
        for m in &batch.merges {
            let changed = point.execute(params![m.winner, m.loser]).map_err(db_err)?;
            if changed != 1 {
                return Err(StoreError::Corrupt(format!(
                    "profile {} cannot be merged: it is not a root",
                    m.loser
                )));
            }
            record
                .execute(params![
                    m.winner,
                    m.loser,
                    m.identifier.kind.as_str(),
                    m.identifier.value,
                    m.reason,
                    m.message_id,
                    to_millis(m.at)
                ])
                .map_err(db_err)?;
        }
    }
    {
        let mut stmt = tx
            .prepare_cached(
                "INSERT INTO identity_conflicts (identifier_kind, identifier_value, kept_on, event_profile, reason, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(db_err)?;
        for c in &batch.conflicts {
            stmt.execute(params![
                c.identifier.kind.as_str(),
                c.identifier.value,
                c.kept_on,
                c.event_profile,
                c.reason,
                to_millis(c.at)
            ])
            .map_err(db_err)?;
        }
    }
    {
        let mut stmt = tx
            .prepare_cached(
                "INSERT INTO traits (profile_id, key, value, source_id, event_time, raw, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (profile_id, key) DO UPDATE SET value = excluded.value, source_id = excluded.source_id,
                     event_time = excluded.event_time, raw = excluded.raw, status = excluded.status
                 WHERE excluded.event_time >= traits.event_time
                   AND (excluded.value IS NOT traits.value OR excluded.source_id IS NOT traits.source_id)",
            )
            .map_err(db_err)?;
        for t in &batch.traits {
            stmt.execute(params![
                t.profile_id,
                t.key,
                t.value.to_string(),
                t.source_id,
                to_millis(t.event_time),
                t.raw.as_ref().map(Value::to_string),
                t.status.as_ref().map(Value::to_string)
            ])
            .map_err(db_err)?;
        }
    }
    Ok(())
}

fn member_clause(members: &[ProfileId]) -> String {
    members
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn export(conn: &Connection, log: &EventLog, root: ProfileId) -> Result<Option<ProfileExport>> {
    let Some(profile) = profile_record(conn, root)? else {
        return Ok(None);
    };
    let ids = member_clause(&profile.members);
    let events = log.events_of(&profile.members)?;
    let merges = collect(
        conn,
        &format!("SELECT {MERGE_COLUMNS} FROM merges WHERE winner IN ({ids}) OR loser IN ({ids}) ORDER BY id"),
        merge_from_row,
    )?;
    let conflicts = collect(
        conn,
        &format!(
            "SELECT id, identifier_kind, identifier_value, kept_on, event_profile, reason, created_at FROM identity_conflicts
             WHERE kept_on IN ({ids}) OR event_profile IN ({ids}) ORDER BY id"
        ),
        conflict_from_row,
    )?;
    Ok(Some(ProfileExport {
        profile,
        events,
        merges,
        conflicts,
    }))
}

fn collect<T>(
    conn: &Connection,
    sql: &str,
    f: fn(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = conn.prepare(sql).map_err(db_err)?;
    let rows = stmt.query_map([], f).map_err(db_err)?;
    rows.collect::<rusqlite::Result<Vec<T>>>().map_err(db_err)
}

fn erase(
    tx: &Transaction<'_>,
    members: &[ProfileId],
    erased_events: u64,
    hashes: &[String],
    audit: &AuditEntry,
) -> Result<EraseReport> {
    let ids = member_clause(members);
    let run = |sql: String| tx.execute(&sql, []).map(|n| n as u64).map_err(db_err);
    let report = EraseReport {
        events: erased_events,
        identities: run(format!(
            "DELETE FROM identities WHERE profile_id IN ({ids})"
        ))?,
        traits: run(format!("DELETE FROM traits WHERE profile_id IN ({ids})"))?,
        merges: run(format!(
            "DELETE FROM merges WHERE winner IN ({ids}) OR loser IN ({ids})"
        ))?,
        conflicts: run(format!(
            "DELETE FROM identity_conflicts WHERE kept_on IN ({ids}) OR event_profile IN ({ids})"
        ))?,
        profiles: run(format!("DELETE FROM profiles WHERE id IN ({ids})"))?,
    };
    run(format!(
        "DELETE FROM review_pairs WHERE profile_a IN ({ids}) OR profile_b IN ({ids})"
    ))?;
    run(format!(
        "DELETE FROM audience_states WHERE profile_id IN ({ids})"
    ))?;
    run(format!(
        "DELETE FROM segment_members WHERE profile_id IN ({ids})"
    ))?;
    {
        let mut stmt = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO erased_identifiers (hash, erased_at) VALUES (?1, ?2)",
            )
            .map_err(db_err)?;
        for h in hashes {
            stmt.execute(params![h, to_millis(audit.at)])
                .map_err(db_err)?;
        }
    }
    insert_audit(tx, audit)?;
    Ok(report)
}

const REVIEW_COLUMNS: &str =
    "id, profile_a, profile_b, probability, explanation, status, created_at, decided_at, decided_by, merge_id";

fn review_from_row(r: &Row<'_>) -> rusqlite::Result<ReviewRecord> {
    let explanation: String = r.get(4)?;
    Ok(ReviewRecord {
        id: r.get(0)?,
        profile_a: r.get(1)?,
        profile_b: r.get(2)?,
        probability: r.get(3)?,
        explanation: parse_json(&explanation)?,
        status: r.get(5)?,
        created_at: from_millis(r.get(6)?),
        decided_at: opt_millis(r.get(7)?),
        decided_by: r.get(8)?,
        merge_id: r.get(9)?,
    })
}

fn insert_audit(conn: &Connection, e: &AuditEntry) -> Result<()> {
    conn.execute(
        "INSERT INTO audit_log (at, actor, action, subject, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            to_millis(e.at),
            e.actor,
            e.action,
            e.subject,
            e.detail.to_string()
        ],
    )
    .map_err(db_err)?;
    Ok(())
}

fn not_found_if_zero(changed: usize, what: impl Into<String>) -> Result<()> {
    if changed == 0 {
        Err(StoreError::not_found(what))
    } else {
        Ok(())
    }
}

fn unique_violation(e: rusqlite::Error, what: String) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            StoreError::Conflict { what }
        }
        other => db_err(other),
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend_name(&self) -> &'static str {
        "sqlite"
    }

    async fn secret(&self, name: &str, fresh: &str) -> Result<String> {
        let key = format!("secret:{name}");
        let fresh = fresh.to_owned();
        self.write(move |c| {
            c.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES (?1, ?2)",
                params![key, fresh],
            )
            .map_err(db_err)?;
            c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .map_err(db_err)
        })
        .await
    }

    async fn create_source(&self, source: NewSource) -> Result<Source> {
        self.write(move |c| {
            let mapping = serde_json::to_string(&source.identity_mapping).map_err(StoreError::backend)?;
            let origins = serde_json::to_string(&source.allowed_origins).map_err(StoreError::backend)?;
            c.execute(
                "INSERT INTO sources (name, brand, channel, identity_mapping, allowed_origins, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![source.name, source.brand, source.channel, mapping, origins, Utc::now().timestamp_millis()],
            )
            .map_err(|e| unique_violation(e, format!("source {:?}", source.name)))?;
            Ok(Source {
                id: c.last_insert_rowid(),
                name: source.name,
                brand: source.brand,
                channel: source.channel,
                identity_mapping: source.identity_mapping,
                allowed_origins: source.allowed_origins,
            })
        })
        .await
    }

    async fn update_source(&self, source: Source) -> Result<Source> {
        self.write(move |c| {
            let mapping = serde_json::to_string(&source.identity_mapping).map_err(StoreError::backend)?;
            let origins = serde_json::to_string(&source.allowed_origins).map_err(StoreError::backend)?;
            let changed = c
                .execute(
                    "UPDATE sources SET name = ?2, brand = ?3, channel = ?4, identity_mapping = ?5, allowed_origins = ?6 WHERE id = ?1",
                    params![source.id, source.name, source.brand, source.channel, mapping, origins],
                )
                .map_err(|e| unique_violation(e, format!("source {:?}", source.name)))?;
            not_found_if_zero(changed, format!("source {}", source.id))?;
            Ok(source)
        })
        .await
    }

    async fn sources(&self) -> Result<Vec<Source>> {
        self.read(|c| {
            collect(c, "SELECT id, name, brand, channel, identity_mapping, allowed_origins FROM sources ORDER BY id", source_from_row)
        })
        .await
    }

    async fn add_write_key(
        &self,
        source_id: SourceId,
        key: &str,
        at: DateTime<Utc>,
    ) -> Result<WriteKey> {
        let key = key.to_owned();
        self.write(move |c| {
            let exists: Option<i64> = c
                .query_row("SELECT id FROM sources WHERE id = ?1", [source_id], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(db_err)?;
            if exists.is_none() {
                return Err(StoreError::not_found(format!("source {source_id}")));
            }
            c.execute(
                "INSERT INTO write_keys (key, source_id, created_at) VALUES (?1, ?2, ?3)",
                params![key, source_id, to_millis(at)],
            )
            .map_err(|e| unique_violation(e, "write key".into()))?;
            Ok(WriteKey {
                key,
                source_id,
                created_at: at,
                revoked_at: None,
            })
        })
        .await
    }

    async fn revoke_write_key(&self, key: &str, at: DateTime<Utc>) -> Result<()> {
        let key = key.to_owned();
        self.write(move |c| {
            let changed = c
                .execute(
                    "UPDATE write_keys SET revoked_at = ?2 WHERE key = ?1 AND revoked_at IS NULL",
                    params![key, to_millis(at)],
                )
                .map_err(db_err)?;
            not_found_if_zero(changed, "active write key")
        })
        .await
    }

    async fn write_keys(&self) -> Result<Vec<WriteKey>> {
        self.read(|c| {
            collect(c, "SELECT key, source_id, created_at, revoked_at FROM write_keys ORDER BY created_at, key", |r| {
                Ok(WriteKey { key: r.get(0)?, source_id: r.get(1)?, created_at: from_millis(r.get(2)?), revoked_at: opt_millis(r.get(3)?) })
            })
        })
        .await
    }

    async fn create_token(
        &self,
        name: &str,
        token_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<TokenRecord> {
        let (name, hash) = (name.to_owned(), token_hash.to_owned());
        self.write(move |c| {
            c.execute(
                "INSERT INTO admin_tokens (name, token_hash, created_at) VALUES (?1, ?2, ?3)",
                params![name, hash, to_millis(at)],
            )
            .map_err(|e| unique_violation(e, "token".into()))?;
            Ok(TokenRecord {
                id: c.last_insert_rowid(),
                name,
                created_at: at,
                revoked_at: None,
            })
        })
        .await
    }

    async fn token_by_hash(&self, token_hash: &str) -> Result<Option<TokenRecord>> {
        let hash = token_hash.to_owned();
        self.read(move |c| {
            c.query_row(
                "SELECT id, name, created_at, revoked_at FROM admin_tokens WHERE token_hash = ?1",
                [hash],
                token_from_row,
            )
            .optional()
            .map_err(db_err)
        })
        .await
    }

    async fn tokens(&self) -> Result<Vec<TokenRecord>> {
        self.read(|c| {
            collect(
                c,
                "SELECT id, name, created_at, revoked_at FROM admin_tokens ORDER BY id",
                token_from_row,
            )
        })
        .await
    }

    async fn revoke_token(&self, id: i64, at: DateTime<Utc>) -> Result<()> {
        self.write(move |c| {
            let changed = c
                .execute(
                    "UPDATE admin_tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                    params![id, to_millis(at)],
                )
                .map_err(db_err)?;
            not_found_if_zero(changed, format!("active token {id}"))
        })
        .await
    }

    async fn dedup_entries(&self, after_seq: i64, limit: usize) -> Result<Vec<(i64, i64)>> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.log.dedup_entries(after_seq, limit))
            .await
            .map_err(StoreError::backend)?
    }

    async fn message_ids(&self, seqs: &[i64]) -> Result<Vec<(i64, SourceId, String)>> {
        let (inner, seqs) = (self.inner.clone(), seqs.to_vec());
        tokio::task::spawn_blocking(move || inner.log.message_ids(&seqs))
            .await
            .map_err(StoreError::backend)?
    }

    async fn load_graph(&self, identifiers: &[Identifier]) -> Result<IdentityGraph> {
        let ids = identifiers.to_vec();
        // A reader, so that the ingest writer can decide the next group while this store commits the last
        // one: the writer's own cache holds everything the group in flight changed.
        self.write(move |c| load_graph(c, &ids)).await
    }

    async fn identifiers_after(
        &self,
        after: Option<&Identifier>,
        limit: usize,
    ) -> Result<Vec<Identifier>> {
        let (kind, value) = after.map_or((String::new(), String::new()), |i| {
            (i.kind.as_str().to_owned(), i.value.clone())
        });
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT kind, value FROM identities WHERE (kind, value) > (?1, ?2) ORDER BY kind, value LIMIT ?3",
                )
                .map_err(db_err)?;
            let rows = stmt
                .query_map(params![kind, value, limit as i64], |r| {
                    Ok(Identifier {
                        kind: parse_kind(&r.get::<_, String>(0)?)?,
                        value: r.get(1)?,
                    })
                })
                .map_err(db_err)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)
        })
        .await
    }

    async fn max_profile_id(&self) -> Result<ProfileId> {
        self.write(|c| {
            c.query_row(
                "SELECT max(COALESCE((SELECT max(id) FROM profiles), 0),
                            COALESCE((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'max_profile_id'), 0))",
                [],
                |r| r.get(0),
            )
            .map_err(db_err)
        })
        .await
    }

    async fn apply(&self, batch: WriteBatch) -> Result<Vec<i64>> {
        let inner = self.inner.clone();
        self.write(move |c| {
            // Events first: once their frames are synced, the metadata commit (with the new watermark) is
            // the group's commit point. A group that fails to commit leaves no frames behind.
            let started = std::time::Instant::now();
            let pending = inner.log.append(&batch.events)?;
            let logged = started.elapsed();
            let committed = c.transaction().map_err(db_err).and_then(|tx| {
                apply(&tx, &batch)?;
                if let Some(last) = pending.last_seq() {
                    set_log_watermark(&tx, last)?;
                }
                tx.commit().map_err(db_err)
            });
            tracing::debug!(
                events = batch.events.len(),
                links = batch.links.len(),
                traits = batch.traits.len(),
                profiles = batch.new_profiles.len(),
                log_ms = logged.as_secs_f64() * 1e3,
                sqlite_ms = (started.elapsed() - logged).as_secs_f64() * 1e3,
                "applied a group"
            );
            match committed {
                Ok(()) => {
                    let seqs = pending.seqs();
                    inner.log.publish(pending)?;
                    Ok(seqs)
                }
                Err(e) => {
                    inner.log.abandon(pending)?;
                    Err(e)
                }
            }
        })
        .await
    }

    async fn erased_hashes(&self) -> Result<Vec<String>> {
        self.read(|c| collect(c, "SELECT hash FROM erased_identifiers", |r| r.get(0)))
            .await
    }

    async fn unified_profiles(&self, profiles: &[ProfileId]) -> Result<Vec<Option<ProfileRecord>>> {
        let profiles = profiles.to_vec();
        self.read(move |c| {
            let mut out = Vec::with_capacity(profiles.len());
            let mut seen: std::collections::HashMap<ProfileId, Option<ProfileRecord>> =
                std::collections::HashMap::new();
            for p in profiles {
                let record = match root_of(c, p)? {
                    Some(root) => match seen.get(&root) {
                        Some(r) => r.clone(),
                        None => {
                            let r = profile_record(c, root)?;
                            seen.insert(root, r.clone());
                            r
                        }
                    },
                    None => None,
                };
                out.push(record);
            }
            Ok(out)
        })
        .await
    }

    async fn root_of(&self, profile: ProfileId) -> Result<Option<ProfileId>> {
        self.read(move |c| root_of(c, profile)).await
    }

    async fn profile_by_identifier(&self, identifier: &Identifier) -> Result<Option<ProfileId>> {
        let id = identifier.clone();
        self.read(move |c| {
            let linked: Option<ProfileId> = c
                .query_row(
                    "SELECT profile_id FROM identities WHERE kind = ?1 AND value = ?2",
                    params![id.kind.as_str(), id.value],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db_err)?;
            match linked {
                Some(p) => root_of(c, p),
                None => Ok(None),
            }
        })
        .await
    }

    async fn profile(&self, root: ProfileId) -> Result<Option<ProfileRecord>> {
        self.read(move |c| profile_record(c, root)).await
    }

    async fn profiles_after(&self, after: ProfileId, limit: usize) -> Result<Vec<ProfileRecord>> {
        self.read(move |c| {
            let ids: Vec<ProfileId> = {
                let mut stmt = c
                    .prepare_cached("SELECT id FROM profiles WHERE id > ?1 AND merged_into IS NULL ORDER BY id LIMIT ?2")
                    .map_err(db_err)?;
                let rows = stmt.query_map(params![after, limit as i64], |r| r.get(0)).map_err(db_err)?;
                rows.collect::<rusqlite::Result<_>>().map_err(db_err)?
            };
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                out.extend(profile_record(c, id)?);
            }
            Ok(out)
        })
        .await
    }

    async fn timeline(
        &self,
        root: ProfileId,
        before: Option<TimelineCursor>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>> {
        let inner = self.inner.clone();
        self.read(move |c| {
            let members = members(c, root)?;
            inner.log.timeline(&members, before, limit)
        })
        .await
    }

    async fn search_by_trait(
        &self,
        key: &str,
        value: &Value,
        limit: usize,
    ) -> Result<Vec<ProfileId>> {
        let (key, value) = (key.to_owned(), value.clone());
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT DISTINCT profile_id FROM traits WHERE key = ?1 AND value = ?2",
                )
                .map_err(db_err)?;
            let candidates = stmt
                .query_map(params![key, value.to_string()], |r| {
                    r.get::<_, ProfileId>(0)
                })
                .map_err(db_err)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(db_err)?;
            let mut roots = Vec::new();
            for candidate in candidates {
                let Some(root) = root_of(c, candidate)? else {
                    continue;
                };
                if roots.contains(&root) {
                    continue;
                }
                // The unified value decides: a member's older value may have been overwritten.
                let matches = profile_record(c, root)?
                    .and_then(|p| p.traits.get(&key).map(|t| t.value == value))
                    .unwrap_or(false);
                if matches {
                    roots.push(root);
                    if roots.len() >= limit {
                        break;
                    }
                }
            }
            roots.sort_unstable();
            Ok(roots)
        })
        .await
    }

    async fn merges(&self, root: ProfileId) -> Result<Vec<MergeRecord>> {
        self.read(move |c| {
            let ids = member_clause(&members(c, root)?);
            collect(c, &format!("SELECT {MERGE_COLUMNS} FROM merges WHERE winner IN ({ids}) OR loser IN ({ids}) ORDER BY id DESC"), merge_from_row)
        })
        .await
    }

    async fn merge(&self, id: i64) -> Result<Option<MergeRecord>> {
        self.read(move |c| {
            c.query_row(
                &format!("SELECT {MERGE_COLUMNS} FROM merges WHERE id = ?1"),
                [id],
                merge_from_row,
            )
            .optional()
            .map_err(db_err)
        })
        .await
    }

    async fn conflicts(&self, root: ProfileId) -> Result<Vec<ConflictRecord>> {
        self.read(move |c| {
            let ids = member_clause(&members(c, root)?);
            collect(
                c,
                &format!(
                    "SELECT id, identifier_kind, identifier_value, kept_on, event_profile, reason, created_at FROM identity_conflicts
                     WHERE kept_on IN ({ids}) OR event_profile IN ({ids}) ORDER BY id DESC"
                ),
                conflict_from_row,
            )
        })
        .await
    }

    async fn unmerge(&self, merge_id: i64, reason: &str, at: DateTime<Utc>) -> Result<MergeRecord> {
        let reason = reason.to_owned();
        self.write(move |c| {
            let tx = c.transaction().map_err(db_err)?;
            let record = tx
                .query_row(
                    &format!("SELECT {MERGE_COLUMNS} FROM merges WHERE id = ?1"),
                    [merge_id],
                    merge_from_row,
                )
                .optional()
                .map_err(db_err)?
                .ok_or_else(|| StoreError::not_found(format!("merge {merge_id}")))?;
            if record.reverted_at.is_some() {
                return Err(StoreError::Conflict {
                    what: format!("revert of merge {merge_id}: it was reverted already"),
                });
            }
            let changed = tx
                .execute(
                    "UPDATE profiles SET merged_into = NULL WHERE id = ?1 AND merged_into = ?2",
                    params![record.loser, record.winner],
                )
                .map_err(db_err)?;
            if changed != 1 {
                return Err(StoreError::Corrupt(format!(
                    "profile {} is not merged into {}",
                    record.loser, record.winner
                )));
            }
            tx.execute(
                "UPDATE merges SET reverted_at = ?2, revert_reason = ?3 WHERE id = ?1",
                params![merge_id, to_millis(at), reason],
            )
            .map_err(db_err)?;
            tx.commit().map_err(db_err)?;
            Ok(MergeRecord {
                reverted_at: Some(at),
                revert_reason: Some(reason),
                ..record
            })
        })
        .await
    }

    async fn export(&self, root: ProfileId) -> Result<Option<ProfileExport>> {
        let inner = self.inner.clone();
        self.read(move |c| export(c, &inner.log, root)).await
    }

    async fn erase(
        &self,
        root: ProfileId,
        erased_hashes: &[String],
        audit: AuditEntry,
    ) -> Result<EraseReport> {
        let (inner, hashes) = (self.inner.clone(), erased_hashes.to_vec());
        self.write(move |c| {
            if root_of(c, root)? != Some(root) {
                return Err(StoreError::not_found(format!("profile {root}")));
            }
            let members = members(c, root)?;
            // The events go first: if the process dies before the commit below, the erasure is repeated.
            let erased_events = inner.log.erase(&members)?;
            let tx = c.transaction().map_err(db_err)?;
            let report = erase(&tx, &members, erased_events, &hashes, &audit)?;
            tx.commit().map_err(db_err)?;
            // Move the (zeroed) pages out of the WAL into the main file so no copy of the erased data lingers.
            c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                .map_err(db_err)?;
            Ok(report)
        })
        .await
    }

    async fn queue_reviews(&self, reviews: &[NewReview]) -> Result<usize> {
        let reviews = reviews.to_vec();
        self.write(move |c| {
            let tx = c.transaction().map_err(db_err)?;
            let mut added = 0;
            {
                let mut find = tx.prepare_cached("SELECT status FROM review_pairs WHERE profile_a = ?1 AND profile_b = ?2").map_err(db_err)?;
                let mut insert = tx
                    .prepare_cached(
                        "INSERT INTO review_pairs (profile_a, profile_b, probability, explanation, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    )
                    .map_err(db_err)?;
                let mut refresh = tx
                    .prepare_cached("UPDATE review_pairs SET probability = ?3, explanation = ?4 WHERE profile_a = ?1 AND profile_b = ?2")
                    .map_err(db_err)?;
                for r in &reviews {
                    let (a, b) = (r.profile_a.min(r.profile_b), r.profile_a.max(r.profile_b));
                    let explanation = r.explanation.to_string();
                    let status: Option<String> = find.query_row(params![a, b], |row| row.get(0)).optional().map_err(db_err)?;
                    match status.as_deref() {
                        None => {
                            insert.execute(params![a, b, r.probability, explanation, to_millis(r.at)]).map_err(db_err)?;
                            added += 1;
                        }
                        // A pending pair gets the latest evidence; a decided one keeps its decision.
                        Some("pending") => {
                            refresh.execute(params![a, b, r.probability, explanation]).map_err(db_err)?;
                        }
                        Some(_) => {}
                    }
                }
            }
            tx.commit().map_err(db_err)?;
            Ok(added)
        })
        .await
    }

    async fn reviews(&self, status: Option<&str>, limit: usize) -> Result<Vec<ReviewRecord>> {
        let status = status.map(str::to_owned);
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {REVIEW_COLUMNS} FROM review_pairs WHERE (?1 IS NULL OR status = ?1) ORDER BY id DESC LIMIT ?2"
                ))
                .map_err(db_err)?;
            let rows = stmt.query_map(params![status, limit as i64], review_from_row).map_err(db_err)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)
        })
        .await
    }

    async fn review(&self, id: i64) -> Result<Option<ReviewRecord>> {
        self.read(move |c| {
            c.query_row(
                &format!("SELECT {REVIEW_COLUMNS} FROM review_pairs WHERE id = ?1"),
                [id],
                review_from_row,
            )
            .optional()
            .map_err(db_err)
        })
        .await
    }

    async fn review_of_pair(&self, a: ProfileId, b: ProfileId) -> Result<Option<ReviewRecord>> {
        self.read(move |c| {
            c.query_row(
                &format!("SELECT {REVIEW_COLUMNS} FROM review_pairs WHERE profile_a = ?1 AND profile_b = ?2"),
                params![a.min(b), a.max(b)],
                review_from_row,
            )
            .optional()
            .map_err(db_err)
        })
        .await
    }

    async fn decide_review(
        &self,
        id: i64,
        status: &str,
        actor: &str,
        at: DateTime<Utc>,
        merge_id: Option<i64>,
    ) -> Result<ReviewRecord> {
        let (status, actor) = (status.to_owned(), actor.to_owned());
        self.write(move |c| {
            let changed = c
                .execute(
                    "UPDATE review_pairs SET status = ?2, decided_by = ?3, decided_at = ?4, merge_id = ?5
                     WHERE id = ?1 AND status = 'pending'",
                    params![id, status, actor, to_millis(at), merge_id],
                )
                .map_err(db_err)?;
            let record = c
                .query_row(&format!("SELECT {REVIEW_COLUMNS} FROM review_pairs WHERE id = ?1"), [id], review_from_row)
                .optional()
                .map_err(db_err)?
                .ok_or_else(|| StoreError::not_found(format!("review {id}")))?;
            if changed == 0 {
                return Err(StoreError::Conflict { what: format!("a decision on review {id} ({})", record.status) });
            }
            Ok(record)
        })
        .await
    }

    async fn save_report_snapshot(
        &self,
        kind: &str,
        at: DateTime<Utc>,
        body: &Value,
    ) -> Result<()> {
        let (kind, body) = (kind.to_owned(), body.to_string());
        self.write(move |c| {
            c.execute(
                "INSERT INTO report_snapshots (kind, at, body) VALUES (?1, ?2, ?3)
                 ON CONFLICT (kind, at) DO UPDATE SET body = excluded.body",
                params![kind, to_millis(at), body],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn latest_report_snapshot(&self, kind: &str) -> Result<Option<(DateTime<Utc>, Value)>> {
        let kind = kind.to_owned();
        self.read(move |c| {
            c.query_row(
                "SELECT at, body FROM report_snapshots WHERE kind = ?1 ORDER BY at DESC LIMIT 1",
                [kind],
                |r| Ok((from_millis(r.get(0)?), parse_json(&r.get::<_, String>(1)?)?)),
            )
            .optional()
            .map_err(db_err)
        })
        .await
    }

    async fn put_definition(&self, record: DefinitionRecord) -> Result<()> {
        self.write(move |c| {
            let inserted = c
                .execute(
                    "INSERT INTO audience_definitions (kind, name, version, hash, body, created_at, created_by)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
                    params![
                        record.kind,
                        record.name,
                        record.version,
                        record.hash,
                        record.body.to_string(),
                        to_millis(record.created_at),
                        record.created_by
                    ],
                )
                .map_err(db_err)?;
            if inserted == 0 {
                return Err(StoreError::Conflict {
                    what: format!("{} {} version {}", record.kind, record.name, record.version),
                });
            }
            Ok(())
        })
        .await
    }

    async fn definitions(&self) -> Result<Vec<DefinitionRecord>> {
        self.read(|c| {
            collect(
                c,
                "SELECT kind, name, version, hash, body, created_at, created_by FROM audience_definitions
                 ORDER BY kind, name, version",
                |r| {
                    Ok(DefinitionRecord {
                        kind: r.get(0)?,
                        name: r.get(1)?,
                        version: r.get(2)?,
                        hash: r.get(3)?,
                        body: parse_json(&r.get::<_, String>(4)?)?,
                        created_at: from_millis(r.get(5)?),
                        created_by: r.get(6)?,
                    })
                },
            )
        })
        .await
    }

    async fn audience(&self, profiles: &[ProfileId]) -> Result<Vec<AudienceRecord>> {
        if profiles.is_empty() {
            return Ok(Vec::new());
        }
        let ids = member_clause(profiles);
        self.read(move |c| {
            collect(
                c,
                &format!(
                    "SELECT profile_id, covers, states, segments, wake_at FROM audience_states
                     WHERE profile_id IN ({ids}) ORDER BY profile_id"
                ),
                |r| {
                    Ok(AudienceRecord {
                        profile_id: r.get(0)?,
                        covers: parse_json(&r.get::<_, String>(1)?)?,
                        states: r.get(2)?,
                        segments: parse_json(&r.get::<_, String>(3)?)?,
                        wake_at: opt_millis(r.get(4)?),
                    })
                },
            )
        })
        .await
    }

    async fn write_audience(&self, write: AudienceWrite) -> Result<()> {
        self.write(move |c| {
            let tx = c.transaction().map_err(db_err)?;
            {
                let mut upsert = tx
                    .prepare_cached(
                        "INSERT INTO audience_states (profile_id, covers, states, segments, wake_at)
                         VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (profile_id) DO UPDATE SET covers = excluded.covers, states = excluded.states,
                             segments = excluded.segments, wake_at = excluded.wake_at",
                    )
                    .map_err(db_err)?;
                for a in &write.upserts {
                    upsert
                        .execute(params![
                            a.profile_id,
                            Value::from(a.covers.clone()).to_string(),
                            a.states,
                            Value::from(a.segments.clone()).to_string(),
                            a.wake_at.map(to_millis)
                        ])
                        .map_err(db_err)?;
                }
                let mut delete = tx
                    .prepare_cached("DELETE FROM audience_states WHERE profile_id = ?1")
                    .map_err(db_err)?;
                for p in &write.deletes {
                    delete.execute([p]).map_err(db_err)?;
                }
                let mut enter = tx
                    .prepare_cached(
                        "INSERT INTO segment_members (segment, profile_id, entered_at) VALUES (?1, ?2, ?3)
                         ON CONFLICT DO NOTHING",
                    )
                    .map_err(db_err)?;
                let mut exit = tx
                    .prepare_cached("DELETE FROM segment_members WHERE segment = ?1 AND profile_id = ?2")
                    .map_err(db_err)?;
                for m in &write.changes {
                    if m.entered {
                        enter
                            .execute(params![m.segment, m.profile_id, to_millis(m.at)])
                            .map_err(db_err)?;
                    } else {
                        exit.execute(params![m.segment, m.profile_id]).map_err(db_err)?;
                    }
                }
            }
            if let Some(seq) = write.watermark {
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2)
                     ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    params![AUDIENCE_WATERMARK, seq.to_string()],
                )
                .map_err(db_err)?;
            }
            tx.commit().map_err(db_err)
        })
        .await
    }

    async fn audience_due(&self, until: DateTime<Utc>, limit: usize) -> Result<Vec<ProfileId>> {
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT profile_id FROM audience_states WHERE wake_at <= ?1 ORDER BY wake_at LIMIT ?2",
                )
                .map_err(db_err)?;
            let rows = stmt
                .query_map(params![to_millis(until), limit as i64], |r| r.get(0))
                .map_err(db_err)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)
        })
        .await
    }

    async fn next_audience_wake(&self) -> Result<Option<DateTime<Utc>>> {
        self.read(|c| {
            c.query_row(
                "SELECT min(wake_at) FROM audience_states WHERE wake_at IS NOT NULL",
                [],
                |r| r.get::<_, Option<i64>>(0),
            )
            .map(opt_millis)
            .map_err(db_err)
        })
        .await
    }

    async fn audience_watermark(&self) -> Result<i64> {
        self.read(|c| {
            let value: Option<String> = c
                .query_row(
                    "SELECT value FROM meta WHERE key = ?1",
                    [AUDIENCE_WATERMARK],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db_err)?;
            Ok(value.and_then(|v| v.parse().ok()).unwrap_or(0))
        })
        .await
    }

    async fn segment_members(
        &self,
        segment: &str,
        after: ProfileId,
        limit: usize,
    ) -> Result<Vec<ProfileId>> {
        let segment = segment.to_owned();
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT profile_id FROM segment_members WHERE segment = ?1 AND profile_id > ?2
                     ORDER BY profile_id LIMIT ?3",
                )
                .map_err(db_err)?;
            let rows = stmt
                .query_map(params![segment, after, limit as i64], |r| r.get(0))
                .map_err(db_err)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)
        })
        .await
    }

    async fn segment_sizes(&self) -> Result<Vec<(String, u64)>> {
        self.read(|c| {
            collect(
                c,
                "SELECT segment, count(*) FROM segment_members GROUP BY segment ORDER BY segment",
                |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)),
            )
        })
        .await
    }

    async fn record_segment_sizes(&self, at: DateTime<Utc>, sizes: &[(String, u64)]) -> Result<()> {
        let sizes = sizes.to_vec();
        self.write(move |c| {
            let tx = c.transaction().map_err(db_err)?;
            {
                let mut stmt = tx
                    .prepare_cached(
                        "INSERT INTO segment_sizes (segment, at, members) VALUES (?1, ?2, ?3)
                         ON CONFLICT (segment, at) DO UPDATE SET members = excluded.members",
                    )
                    .map_err(db_err)?;
                for (segment, n) in &sizes {
                    stmt.execute(params![segment, to_millis(at), *n as i64])
                        .map_err(db_err)?;
                }
            }
            tx.commit().map_err(db_err)
        })
        .await
    }

    async fn segment_size_history(
        &self,
        segment: &str,
        limit: usize,
    ) -> Result<Vec<(DateTime<Utc>, u64)>> {
        let segment = segment.to_owned();
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT at, members FROM segment_sizes WHERE segment = ?1 ORDER BY at DESC LIMIT ?2",
                )
                .map_err(db_err)?;
            let rows = stmt
                .query_map(params![segment, limit as i64], |r| {
                    Ok((from_millis(r.get(0)?), r.get::<_, i64>(1)? as u64))
                })
                .map_err(db_err)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)
        })
        .await
    }

    async fn events_after(&self, after_seq: i64, limit: usize) -> Result<Vec<StoredEvent>> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.log.events_after(after_seq, limit))
            .await
            .map_err(StoreError::backend)?
    }

    async fn audit(&self, entry: AuditEntry) -> Result<()> {
        self.write(move |c| insert_audit(c, &entry)).await
    }

    async fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>> {
        self.read(move |c| {
            let mut stmt = c.prepare("SELECT at, actor, action, subject, detail FROM audit_log ORDER BY id DESC LIMIT ?1").map_err(db_err)?;
            let rows = stmt
                .query_map([limit as i64], |r| {
                    let detail: String = r.get(4)?;
                    Ok(AuditEntry { at: from_millis(r.get(0)?), actor: r.get(1)?, action: r.get(2)?, subject: r.get(3)?, detail: parse_json(&detail)? })
                })
                .map_err(db_err)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_err)
        })
        .await
    }

    async fn stats(&self) -> Result<StoreStats> {
        let inner = self.inner.clone();
        self.read(move |c| {
            let count = |sql: &str| {
                c.query_row(sql, [], |r| r.get::<_, i64>(0))
                    .map(|n| n as u64)
                    .map_err(db_err)
            };
            Ok(StoreStats {
                events: inner.log.live_events()?,
                profiles: count("SELECT count(*) FROM profiles WHERE merged_into IS NULL")?,
                identities: count("SELECT count(*) FROM identities")?,
            })
        })
        .await
    }
}
