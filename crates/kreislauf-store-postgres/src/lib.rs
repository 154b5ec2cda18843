//! The PostgreSQL store, for deployments that keep their data on a database server.
//!
//! A small deadpool connection pool; every statement is prepared once per connection and cached. The ingest
//! hot path ([`Store::apply`]) writes each table with one array (`unnest`) statement per batch, all in one
//! transaction, so a batch costs a handful of round trips whatever its size.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};
use kreislauf_core::{
    Identifier, IdentifierKind, IdentityGraph, IdentityMapping, ProfileId, Source, SourceId,
};
use kreislauf_store::{
    from_millis, to_millis, AudienceRecord, AudienceWrite, AuditEntry, ConflictRecord,
    DefinitionRecord, EraseReport, IdentityRecord, MergeRecord, NewReview, NewSource,
    ProfileExport, ProfileRecord, Result, ReviewRecord, Store, StoreError, StoreStats, StoredEvent,
    TimelineCursor, TokenRecord, TraitValue, WriteBatch, WriteKey,
};
use serde_json::Value;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{FromSql, Json, ToSql};
use tokio_postgres::{IsolationLevel, NoTls, Row};

/// Versioned migrations, applied in order; the version is the position in this list, starting at 1.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_reviews.sql"),
    include_str!("../migrations/0003_audiences.sql"),
    include_str!("../migrations/0004_trait_quality.sql"),
    include_str!("../migrations/0005_report_snapshots.sql"),
];
/// The `meta` key of the audience watermark.
const AUDIENCE_WATERMARK: &str = "audience_seq";
/// Key of the advisory lock that serialises migrations of processes starting at the same time.
const MIGRATION_LOCK: i64 = 0x6b72_6569_736c_6175; // "kreislau"
const POOL_SIZE: usize = 8;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Tables holding personal data; vacuumed after an erasure.
const ERASE_VACUUM: &str =
    "VACUUM events, identities, traits, merges, identity_conflicts, profiles, review_pairs";

type Params<'a> = [&'a (dyn ToSql + Sync)];

/// The PostgreSQL store. Cheap to clone: clones share the pool.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
}

/// The exclusive right to run the ingest writer on one database schema, held while this value lives
/// (a session-level advisory lock on a connection taken out of the pool).
pub struct WriterLease {
    /// Detached from the pool: dropping it closes the session, which releases the lock.
    _client: deadpool_postgres::ClientWrapper,
}

/// First advisory-lock key of the writer lease (the second is the schema's hash), the same in every process.
const WRITER_LOCK_CLASS: i32 = 0x4b72_6569; // "Krei"

impl PostgresStore {
    /// Claims the single-writer role for this store's schema; fails if another process holds it.
    pub async fn acquire_writer_lease(&self) -> Result<WriterLease> {
        let client = self.pool.get().await.map_err(StoreError::backend)?;
        // Advisory locks are database-wide; fold the schema in so that separate schemas do not collide.
        let row = client
            .query_one(
                "SELECT pg_try_advisory_lock($1, hashtext(current_schema()))",
                &[&WRITER_LOCK_CLASS],
            )
            .await
            .map_err(StoreError::backend)?;
        let granted: bool = row.try_get(0).map_err(StoreError::backend)?;
        if !granted {
            return Err(StoreError::Locked(
                "another kreislauf process is the ingest writer of this PostgreSQL schema".into(),
            ));
        }
        Ok(WriterLease {
            _client: deadpool_postgres::Object::take(client),
        })
    }

    /// Connects to `url` (`postgres://user@host:port/db`) and runs pending migrations in the default schema.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::open(url, None).await
    }

    /// Like [`PostgresStore::connect`], but keeps every table in `schema` (created if missing), which every
    /// pooled connection gets as its `search_path`. `schema` must be a plain lower-case SQL identifier.
    pub async fn connect_with_schema(url: &str, schema: &str) -> Result<Self> {
        check_schema_name(schema)?;
        Self::open(url, Some(schema)).await
    }

    async fn open(url: &str, schema: Option<&str>) -> Result<Self> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Backend(format!("invalid PostgreSQL URL: {e}")))?;
        if config.get_connect_timeout().is_none() {
            // Without a timeout an unreachable host blocks start-up for minutes.
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if let Some(schema) = schema {
            let options = match config.get_options() {
                Some(existing) if !existing.trim().is_empty() => {
                    format!("{existing} -c search_path={schema}")
                }
                _ => format!("-c search_path={schema}"),
            };
            config.options(options);
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(StoreError::backend)?;
        let store = Self { pool };
        store.migrate(schema).await?;
        Ok(store)
    }

    async fn client(&self) -> Result<deadpool_postgres::Client> {
        self.pool.get().await.map_err(StoreError::backend)
    }

    async fn migrate(&self, schema: Option<&str>) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        // Held until commit: a second process starting now waits, then finds the work done.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(pg_err)?;
        if let Some(schema) = schema {
            // The name was checked by check_schema_name, so it is safe to splice in.
            tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .await
                .map_err(pg_err)?;
        }
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    INT PRIMARY KEY,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(pg_err)?;
        let row = tx
            .query_one(
                "SELECT COALESCE(max(version), 0) FROM schema_migrations",
                &[],
            )
            .await
            .map_err(pg_err)?;
        let current: i32 = col(&row, 0)?;
        let known = i32::try_from(MIGRATIONS.len())
            .map_err(|_| StoreError::Backend("too many migrations".into()))?;
        if current > known {
            return Err(StoreError::Corrupt(format!(
                "database schema version {current} is newer than this binary knows ({known}); upgrade kreislauf"
            )));
        }
        for (version, sql) in (1..)
            .zip(MIGRATIONS)
            .skip(usize::try_from(current).unwrap_or(0))
        {
            tx.batch_execute(sql).await.map_err(pg_err)?;
            tx.execute(
                "INSERT INTO schema_migrations (version) VALUES ($1)",
                &[&version],
            )
            .await
            .map_err(pg_err)?;
            tracing::info!(version, "applied postgres migration");
        }
        tx.commit().await.map_err(pg_err)
    }
}

/// Only plain lower-case identifiers: they mean the same quoted or not, in SQL and in `search_path`.
fn check_schema_name(schema: &str) -> Result<()> {
    let mut chars = schema.chars();
    let valid = schema.len() <= 63
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(StoreError::Backend(format!(
            "invalid schema name {schema:?}: use lower-case letters, digits and _ (at most 63)"
        )))
    }
}

fn pg_err(e: tokio_postgres::Error) -> StoreError {
    if let Some(db) = e.as_db_error() {
        if *db.code() == SqlState::UNIQUE_VIOLATION {
            // The constraint name only: the error detail would repeat the key, which may be personal data.
            return StoreError::Conflict {
                what: format!("row ({})", db.constraint().unwrap_or("unique key")),
            };
        }
    }
    StoreError::backend(e)
}

fn unique_violation(e: tokio_postgres::Error, what: impl FnOnce() -> String) -> StoreError {
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        StoreError::Conflict { what: what() }
    } else {
        pg_err(e)
    }
}

/// A column of `row`, with a type mismatch reported as corrupt data instead of a panic.
fn col<'a, T: FromSql<'a>>(row: &'a Row, idx: usize) -> Result<T> {
    row.try_get(idx)
        .map_err(|e| StoreError::Corrupt(format!("column {idx}: {e}")))
}

fn opt_millis(v: Option<i64>) -> Option<DateTime<Utc>> {
    v.map(from_millis)
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn parse_kind(s: &str) -> Result<IdentifierKind> {
    s.parse()
        .map_err(|e: kreislauf_core::identity::UnknownIdentifierKind| {
            StoreError::Corrupt(e.to_string())
        })
}

fn parse_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("stored JSON: {e}")))
}

async fn query<C: GenericClient>(c: &C, sql: &str, params: &Params<'_>) -> Result<Vec<Row>> {
    let stmt = c.prepare_cached(sql).await.map_err(pg_err)?;
    c.query(&stmt, params).await.map_err(pg_err)
}

async fn query_opt<C: GenericClient>(c: &C, sql: &str, params: &Params<'_>) -> Result<Option<Row>> {
    let stmt = c.prepare_cached(sql).await.map_err(pg_err)?;
    c.query_opt(&stmt, params).await.map_err(pg_err)
}

async fn execute<C: GenericClient>(c: &C, sql: &str, params: &Params<'_>) -> Result<u64> {
    let stmt = c.prepare_cached(sql).await.map_err(pg_err)?;
    c.execute(&stmt, params).await.map_err(pg_err)
}

const SOURCE_COLUMNS: &str = "id, name, brand, channel, identity_mapping, allowed_origins";

fn source_from_row(r: &Row) -> Result<Source> {
    let Json(identity_mapping): Json<IdentityMapping> = col(r, 4)?;
    let Json(allowed_origins): Json<Vec<String>> = col(r, 5)?;
    Ok(Source {
        id: col(r, 0)?,
        name: col(r, 1)?,
        brand: col(r, 2)?,
        channel: col(r, 3)?,
        identity_mapping,
        allowed_origins,
    })
}

const TOKEN_COLUMNS: &str = "id, name, created_at, revoked_at";

fn token_from_row(r: &Row) -> Result<TokenRecord> {
    Ok(TokenRecord {
        id: col(r, 0)?,
        name: col(r, 1)?,
        created_at: from_millis(col(r, 2)?),
        revoked_at: opt_millis(col(r, 3)?),
    })
}

fn event_from_row(r: &Row) -> Result<StoredEvent> {
    let body: &str = col(r, 8)?;
    Ok(StoredEvent {
        seq: col(r, 0)?,
        source_id: col(r, 1)?,
        profile_id: col(r, 2)?,
        message_id: col(r, 3)?,
        kind: col(r, 4)?,
        name: col(r, 5)?,
        timestamp: from_millis(col(r, 6)?),
        received_at: from_millis(col(r, 7)?),
        body: parse_json(body)?,
    })
}

const MERGE_COLUMNS: &str = "id, winner, loser, identifier_kind, identifier_value, reason, message_id, created_at, reverted_at, revert_reason";

fn merge_from_row(r: &Row) -> Result<MergeRecord> {
    Ok(MergeRecord {
        id: col(r, 0)?,
        winner: col(r, 1)?,
        loser: col(r, 2)?,
        identifier: Identifier {
            kind: parse_kind(col(r, 3)?)?,
            value: col(r, 4)?,
        },
        reason: col(r, 5)?,
        message_id: col(r, 6)?,
        created_at: from_millis(col(r, 7)?),
        reverted_at: opt_millis(col(r, 8)?),
        revert_reason: col(r, 9)?,
    })
}

const REVIEW_COLUMNS: &str =
    "id, profile_a, profile_b, probability, explanation, status, created_at, decided_at, decided_by, merge_id";

fn review_from_row(r: &Row) -> Result<ReviewRecord> {
    let explanation: String = col(r, 4)?;
    Ok(ReviewRecord {
        id: col(r, 0)?,
        profile_a: col(r, 1)?,
        profile_b: col(r, 2)?,
        probability: col(r, 3)?,
        explanation: serde_json::from_str(&explanation)
            .map_err(|e| StoreError::Corrupt(format!("review explanation: {e}")))?,
        status: col(r, 5)?,
        created_at: from_millis(col(r, 6)?),
        decided_at: opt_millis(col(r, 7)?),
        decided_by: col(r, 8)?,
        merge_id: col(r, 9)?,
    })
}

const CONFLICT_COLUMNS: &str =
    "id, identifier_kind, identifier_value, kept_on, event_profile, reason, created_at";

fn conflict_from_row(r: &Row) -> Result<ConflictRecord> {
    Ok(ConflictRecord {
        id: col(r, 0)?,
        identifier: Identifier {
            kind: parse_kind(col(r, 1)?)?,
            value: col(r, 2)?,
        },
        kept_on: col(r, 3)?,
        event_profile: col(r, 4)?,
        reason: col(r, 5)?,
        created_at: from_millis(col(r, 6)?),
    })
}

fn audit_from_row(r: &Row) -> Result<AuditEntry> {
    Ok(AuditEntry {
        at: from_millis(col(r, 0)?),
        actor: col(r, 1)?,
        action: col(r, 2)?,
        subject: col(r, 3)?,
        detail: col(r, 4)?,
    })
}

fn rows<T>(rows: Vec<Row>, f: fn(&Row) -> Result<T>) -> Result<Vec<T>> {
    rows.iter().map(f).collect()
}

/// Walks `merged_into` up from the rows of `seed` (id, merged_into) to the root; the deepest row wins.
macro_rules! root_walk {
    ($seed:literal) => {
        concat!(
            "WITH RECURSIVE up(id, parent, depth) AS (",
            $seed,
            " UNION ALL
               SELECT p.id, p.merged_into, up.depth + 1 FROM up JOIN profiles p ON p.id = up.parent
               WHERE up.depth < 64)
             SELECT id, parent, depth FROM up ORDER BY depth DESC LIMIT 1"
        )
    };
}

/// Interprets a [`root_walk!`] result like the SQLite backend: a dangling pointer means no profile.
fn root_from_walk(row: Option<Row>) -> Result<Option<ProfileId>> {
    let Some(row) = row else {
        return Ok(None);
    };
    let id: ProfileId = col(&row, 0)?;
    let parent: Option<ProfileId> = col(&row, 1)?;
    let depth: i32 = col(&row, 2)?;
    match parent {
        None => Ok(Some(id)),
        Some(_) if depth >= 64 => Err(StoreError::Corrupt(format!(
            "merge chain of profile {id} is too long"
        ))),
        Some(_) => Ok(None),
    }
}

async fn root_of<C: GenericClient>(c: &C, profile: ProfileId) -> Result<Option<ProfileId>> {
    let row = query_opt(
        c,
        root_walk!("SELECT id, merged_into, 0 FROM profiles WHERE id = $1"),
        &[&profile],
    )
    .await?;
    root_from_walk(row)
}

/// The root and every profile merged into it, directly or not, in id order.
async fn members<C: GenericClient>(c: &C, root: ProfileId) -> Result<Vec<ProfileId>> {
    let found = query(
        c,
        "WITH RECURSIVE m(id) AS (
             SELECT $1::bigint UNION SELECT p.id FROM profiles p JOIN m ON p.merged_into = m.id)
         SELECT id FROM m ORDER BY id",
        &[&root],
    )
    .await?;
    found.iter().map(|r| col(r, 0)).collect()
}

async fn profile_record<C: GenericClient>(c: &C, root: ProfileId) -> Result<Option<ProfileRecord>> {
    let Some(row) = query_opt(
        c,
        "SELECT merged_into, created_at FROM profiles WHERE id = $1",
        &[&root],
    )
    .await?
    else {
        return Ok(None);
    };
    let merged_into: Option<ProfileId> = col(&row, 0)?;
    if merged_into.is_some() {
        return Ok(None);
    }
    let created_at: i64 = col(&row, 1)?;
    let members = members(c, root).await?;
    let mut identities = query(
        c,
        "SELECT kind, value, profile_id, source_id, first_seen FROM identities WHERE profile_id = ANY($1)",
        &[&members],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(IdentityRecord {
            kind: parse_kind(col(r, 0)?)?,
            value: col(r, 1)?,
            profile_id: col(r, 2)?,
            source_id: col(r, 3)?,
            first_seen: from_millis(col(r, 4)?),
        })
    })
    .collect::<Result<Vec<_>>>()?;
    // By kind strength, not kind name, as the SQLite backend does.
    identities.sort_by(|a, b| (a.kind, &a.value).cmp(&(b.kind, &b.value)));
    // The unified value: latest event time, ties to the higher member id (same rule as SQLite).
    let traits = query(
        c,
        "SELECT DISTINCT ON (key) key, value, source_id, event_time, profile_id, raw, status FROM traits
         WHERE profile_id = ANY($1) ORDER BY key, event_time DESC, profile_id DESC",
        &[&members],
    )
    .await?
    .iter()
    .map(|r| {
        let value: &str = col(r, 1)?;
        Ok((
            col::<String>(r, 0)?,
            TraitValue {
                value: parse_json(value)?,
                source_id: col(r, 2)?,
                updated_at: from_millis(col(r, 3)?),
                profile_id: col(r, 4)?,
                raw: col::<Option<&str>>(r, 5)?.map(parse_json).transpose()?,
                status: col::<Option<&str>>(r, 6)?.map(parse_json).transpose()?,
            },
        ))
    })
    .collect::<Result<BTreeMap<_, _>>>()?;
    Ok(Some(ProfileRecord {
        id: root,
        created_at: from_millis(created_at),
        members,
        identities,
        traits,
    }))
}

const EVENTS_OF: &str =
    "SELECT seq, source_id, profile_id, message_id, kind, name, \"timestamp\", received_at, body
     FROM events WHERE profile_id = ANY($1) ORDER BY \"timestamp\", seq";
const MERGES_OF: &str =
    "SELECT id, winner, loser, identifier_kind, identifier_value, reason, message_id, created_at,
            reverted_at, revert_reason
     FROM merges WHERE winner = ANY($1) OR loser = ANY($1) ORDER BY id";
const CONFLICTS_OF: &str =
    "SELECT id, identifier_kind, identifier_value, kept_on, event_profile, reason, created_at
     FROM identity_conflicts WHERE kept_on = ANY($1) OR event_profile = ANY($1) ORDER BY id";

async fn load_graph<C: GenericClient>(c: &C, identifiers: &[Identifier]) -> Result<IdentityGraph> {
    let mut graph = IdentityGraph::default();
    if identifiers.is_empty() {
        return Ok(graph);
    }
    let kinds: Vec<&str> = identifiers.iter().map(|i| i.kind.as_str()).collect();
    let values: Vec<&str> = identifiers.iter().map(|i| i.value.as_str()).collect();
    // One round trip for all links instead of one per identifier.
    let linked = query(
        c,
        "SELECT q.ord, i.profile_id
         FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS q(kind, value, ord)
         JOIN identities i ON i.kind = q.kind AND i.value = q.value",
        &[&kinds, &values],
    )
    .await?;
    let mut profiles = Vec::with_capacity(linked.len());
    for row in &linked {
        let ord: i64 = col(row, 0)?;
        let profile: ProfileId = col(row, 1)?;
        let identifier = usize::try_from(ord - 1)
            .ok()
            .and_then(|i| identifiers.get(i))
            .ok_or_else(|| StoreError::Corrupt(format!("link query returned position {ord}")))?;
        graph.links.insert(identifier.clone(), profile);
        profiles.push(profile);
    }
    if profiles.is_empty() {
        return Ok(graph);
    }
    // UNION (not UNION ALL) ends the walk on a corrupt cycle.
    let chains = query(
        c,
        "WITH RECURSIVE up(id, parent) AS (
             SELECT id, merged_into FROM profiles WHERE id = ANY($1)
             UNION
             SELECT p.id, p.merged_into FROM up JOIN profiles p ON p.id = up.parent)
         SELECT id, parent FROM up WHERE parent IS NOT NULL",
        &[&profiles],
    )
    .await?;
    for row in &chains {
        graph.merged_into.insert(col(row, 0)?, col(row, 1)?);
    }
    let roots: Vec<ProfileId> = profiles
        .iter()
        .map(|&p| graph.root(p))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let unique_kinds: Vec<&str> = IdentifierKind::ALL
        .into_iter()
        .filter(|k| k.is_unique())
        .map(IdentifierKind::as_str)
        .collect();
    let uniques = query(
        c,
        "WITH RECURSIVE m(root, id) AS (
             SELECT r, r FROM unnest($1::bigint[]) AS u(r)
             UNION
             SELECT m.root, p.id FROM m JOIN profiles p ON p.merged_into = m.id)
         SELECT m.root, i.kind, i.value FROM m JOIN identities i ON i.profile_id = m.id
         WHERE i.kind = ANY($2) ORDER BY m.root, i.kind, i.value",
        &[&roots, &unique_kinds],
    )
    .await?;
    for row in &uniques {
        let root: ProfileId = col(row, 0)?;
        let identifier = Identifier {
            kind: parse_kind(col(row, 1)?)?,
            value: col(row, 2)?,
        };
        graph.uniques.entry(root).or_default().push(identifier);
    }
    let blocked = query(
        c,
        "SELECT winner, loser FROM merges
         WHERE reverted_at IS NOT NULL AND (winner = ANY($1) OR loser = ANY($1))",
        &[&roots],
    )
    .await?;
    for row in &blocked {
        let (a, b): (ProfileId, ProfileId) = (col(row, 0)?, col(row, 1)?);
        graph.blocked.insert((a.min(b), a.max(b)));
    }
    Ok(graph)
}

async fn apply_batch(
    tx: &deadpool_postgres::Transaction<'_>,
    batch: &WriteBatch,
) -> Result<Vec<i64>> {
    if !batch.new_profiles.is_empty() {
        let ids: Vec<ProfileId> = batch.new_profiles.iter().map(|(id, _)| *id).collect();
        let created: Vec<i64> = batch
            .new_profiles
            .iter()
            .map(|(_, at)| to_millis(*at))
            .collect();
        execute(
            tx,
            "INSERT INTO profiles (id, created_at) SELECT * FROM unnest($1::bigint[], $2::bigint[])",
            &[&ids, &created],
        )
        .await?;
        let high = ids.iter().copied().max().unwrap_or(0);
        // Kept apart from the profiles table so that erased ids are never given out again.
        execute(
            tx,
            "INSERT INTO meta (key, value) VALUES ('max_profile_id', $1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value
             WHERE excluded.value::bigint > meta.value::bigint",
            &[&high.to_string()],
        )
        .await?;
    }
    if !batch.links.is_empty() {
        let kinds: Vec<&str> = batch
            .links
            .iter()
            .map(|l| l.identifier.kind.as_str())
            .collect();
        let values: Vec<&str> = batch
            .links
            .iter()
            .map(|l| l.identifier.value.as_str())
            .collect();
        let profiles: Vec<ProfileId> = batch.links.iter().map(|l| l.profile_id).collect();
        let sources: Vec<SourceId> = batch.links.iter().map(|l| l.source_id).collect();
        let at: Vec<i64> = batch.links.iter().map(|l| to_millis(l.at)).collect();
        // First link of an identifier wins, within the batch too (DO NOTHING skips later duplicates).
        execute(
            tx,
            "INSERT INTO identities (kind, value, profile_id, source_id, first_seen)
             SELECT k, v, p, s, f
             FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[])
                  WITH ORDINALITY AS u(k, v, p, s, f, ord)
             ORDER BY ord
             ON CONFLICT (kind, value) DO NOTHING",
            &[&kinds, &values, &profiles, &sources, &at],
        )
        .await?;
    }
    if !batch.merges.is_empty() {
        let winners: Vec<ProfileId> = batch.merges.iter().map(|m| m.winner).collect();
        let losers: Vec<ProfileId> = batch.merges.iter().map(|m| m.loser).collect();
        // Every loser must be a root and appear once: then exactly one row changes per merge, which is
        // what applying the merges one by one would demand.
        let changed = execute(
            tx,
            "UPDATE profiles p SET merged_into = m.winner
             FROM unnest($1::bigint[], $2::bigint[]) AS m(winner, loser)
             WHERE p.id = m.loser AND p.merged_into IS NULL",
            &[&winners, &losers],
        )
        .await?;
        if changed != batch.merges.len() as u64 {
            return Err(StoreError::Corrupt(format!(
                "profiles cannot be merged: not every one of {losers:?} is a root"
            )));
        }
        let kinds: Vec<&str> = batch
            .merges
            .iter()
            .map(|m| m.identifier.kind.as_str())
            .collect();
        let values: Vec<&str> = batch
            .merges
            .iter()
            .map(|m| m.identifier.value.as_str())
            .collect();
        let reasons: Vec<&str> = batch.merges.iter().map(|m| m.reason.as_str()).collect();
        let messages: Vec<&str> = batch.merges.iter().map(|m| m.message_id.as_str()).collect();
        let at: Vec<i64> = batch.merges.iter().map(|m| to_millis(m.at)).collect();
        execute(
            tx,
            "INSERT INTO merges (winner, loser, identifier_kind, identifier_value, reason, message_id, created_at)
             SELECT w, l, k, v, r, m, c
             FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[])
                  WITH ORDINALITY AS u(w, l, k, v, r, m, c, ord)
             ORDER BY ord",
            &[&winners, &losers, &kinds, &values, &reasons, &messages, &at],
        )
        .await?;
    }
    if !batch.conflicts.is_empty() {
        let kinds: Vec<&str> = batch
            .conflicts
            .iter()
            .map(|c| c.identifier.kind.as_str())
            .collect();
        let values: Vec<&str> = batch
            .conflicts
            .iter()
            .map(|c| c.identifier.value.as_str())
            .collect();
        let kept_on: Vec<Option<ProfileId>> = batch.conflicts.iter().map(|c| c.kept_on).collect();
        let event_profiles: Vec<ProfileId> =
            batch.conflicts.iter().map(|c| c.event_profile).collect();
        let reasons: Vec<&str> = batch.conflicts.iter().map(|c| c.reason.as_str()).collect();
        let at: Vec<i64> = batch.conflicts.iter().map(|c| to_millis(c.at)).collect();
        execute(
            tx,
            "INSERT INTO identity_conflicts (identifier_kind, identifier_value, kept_on, event_profile, reason, created_at)
             SELECT k, v, o, p, r, c
             FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::bigint[])
                  WITH ORDINALITY AS u(k, v, o, p, r, c, ord)
             ORDER BY ord",
            &[&kinds, &values, &kept_on, &event_profiles, &reasons, &at],
        )
        .await?;
    }
    let seqs = insert_events(tx, batch).await?;
    if !batch.traits.is_empty() {
        upsert_traits(tx, batch).await?;
    }
    Ok(seqs)
}

async fn insert_events(
    tx: &deadpool_postgres::Transaction<'_>,
    batch: &WriteBatch,
) -> Result<Vec<i64>> {
    let events = &batch.events;
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let sources: Vec<SourceId> = events.iter().map(|e| e.source_id).collect();
    let profiles: Vec<ProfileId> = events.iter().map(|e| e.profile_id).collect();
    let messages: Vec<&str> = events.iter().map(|e| e.message_id.as_str()).collect();
    let hashes: Vec<i64> = events.iter().map(|e| e.dedup_hash).collect();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    let names: Vec<Option<&str>> = events.iter().map(|e| e.name.as_deref()).collect();
    let timestamps: Vec<i64> = events.iter().map(|e| to_millis(e.timestamp)).collect();
    let received: Vec<i64> = events.iter().map(|e| to_millis(e.received_at)).collect();
    let bodies: Vec<&str> = events.iter().map(|e| e.body.as_str()).collect();
    // Rows are inserted in batch order, so the sequence hands out increasing seqs in that order.
    let returned = query(
        tx,
        "INSERT INTO events (source_id, profile_id, message_id, dedup_hash, kind, name, \"timestamp\", received_at, body)
         SELECT s, p, m, d, k, n, t, r, b
         FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::bigint[],
                     $8::bigint[], $9::text[])
              WITH ORDINALITY AS u(s, p, m, d, k, n, t, r, b, ord)
         ORDER BY ord
         RETURNING seq",
        &[&sources, &profiles, &messages, &hashes, &kinds, &names, &timestamps, &received, &bodies],
    )
    .await?;
    let mut seqs = returned
        .iter()
        .map(|r| col(r, 0))
        .collect::<Result<Vec<i64>>>()?;
    if seqs.len() != events.len() {
        return Err(StoreError::Corrupt(format!(
            "inserted {} events but got {} seqs back",
            events.len(),
            seqs.len()
        )));
    }
    // RETURNING order is not promised by PostgreSQL; seq order is batch order.
    seqs.sort_unstable();
    Ok(seqs)
}

async fn upsert_traits(tx: &deadpool_postgres::Transaction<'_>, batch: &WriteBatch) -> Result<()> {
    // One statement may not update a row twice, so settle repeated (profile, key) writes here first with
    // the rule applying them in order would follow: the latest event time wins, a later write wins a tie.
    let mut winners: HashMap<(ProfileId, &str), usize> = HashMap::new();
    for (i, t) in batch.traits.iter().enumerate() {
        winners
            .entry((t.profile_id, t.key.as_str()))
            .and_modify(|w| {
                if t.event_time >= batch.traits[*w].event_time {
                    *w = i;
                }
            })
            .or_insert(i);
    }
    let mut chosen: Vec<usize> = winners.into_values().collect();
    chosen.sort_unstable();
    let writes: Vec<_> = chosen.iter().map(|&i| &batch.traits[i]).collect();
    let profiles: Vec<ProfileId> = writes.iter().map(|t| t.profile_id).collect();
    let keys: Vec<&str> = writes.iter().map(|t| t.key.as_str()).collect();
    let values: Vec<String> = writes.iter().map(|t| t.value.to_string()).collect();
    let sources: Vec<SourceId> = writes.iter().map(|t| t.source_id).collect();
    let times: Vec<i64> = writes.iter().map(|t| to_millis(t.event_time)).collect();
    let raws: Vec<Option<String>> = writes
        .iter()
        .map(|t| t.raw.as_ref().map(Value::to_string))
        .collect();
    let statuses: Vec<Option<String>> = writes
        .iter()
        .map(|t| t.status.as_ref().map(Value::to_string))
        .collect();
    execute(
        tx,
        "INSERT INTO traits (profile_id, key, value, source_id, event_time, raw, status)
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::text[])
         ON CONFLICT (profile_id, key) DO UPDATE SET value = excluded.value, source_id = excluded.source_id,
             event_time = excluded.event_time, raw = excluded.raw, status = excluded.status
         WHERE excluded.event_time >= traits.event_time
           AND (excluded.value IS DISTINCT FROM traits.value OR excluded.source_id IS DISTINCT FROM traits.source_id)",
        &[&profiles, &keys, &values, &sources, &times, &raws, &statuses],
    )
    .await?;
    Ok(())
}

async fn insert_audit<C: GenericClient>(c: &C, e: &AuditEntry) -> Result<()> {
    execute(
        c,
        "INSERT INTO audit_log (at, actor, action, subject, detail) VALUES ($1, $2, $3, $4, $5)",
        &[&to_millis(e.at), &e.actor, &e.action, &e.subject, &e.detail],
    )
    .await?;
    Ok(())
}

fn not_found_if_zero(changed: u64, what: impl Into<String>) -> Result<()> {
    if changed == 0 {
        Err(StoreError::not_found(what))
    } else {
        Ok(())
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn backend_name(&self) -> &'static str {
        "postgres"
    }

    async fn secret(&self, name: &str, fresh: &str) -> Result<String> {
        let key = format!("secret:{name}");
        let c = self.client().await?;
        execute(
            &c,
            "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            &[&key, &fresh],
        )
        .await?;
        // A separate statement, so that it sees a value a concurrent caller committed first.
        let row = query_opt(&c, "SELECT value FROM meta WHERE key = $1", &[&key])
            .await?
            .ok_or_else(|| StoreError::not_found(format!("secret {name}")))?;
        col(&row, 0)
    }

    async fn create_source(&self, source: NewSource) -> Result<Source> {
        let c = self.client().await?;
        let row = query_opt(
            &c,
            "INSERT INTO sources (name, brand, channel, identity_mapping, allowed_origins, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            &[
                &source.name,
                &source.brand,
                &source.channel,
                &Json(&source.identity_mapping),
                &Json(&source.allowed_origins),
                &Utc::now().timestamp_millis(),
            ],
        )
        .await
        .map_err(|e| match e {
            StoreError::Conflict { .. } => StoreError::Conflict {
                what: format!("source {:?}", source.name),
            },
            other => other,
        })?
        .ok_or_else(|| StoreError::Backend("INSERT returned no id".into()))?;
        Ok(Source {
            id: col(&row, 0)?,
            name: source.name,
            brand: source.brand,
            channel: source.channel,
            identity_mapping: source.identity_mapping,
            allowed_origins: source.allowed_origins,
        })
    }

    async fn update_source(&self, source: Source) -> Result<Source> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "UPDATE sources SET name = $2, brand = $3, channel = $4, identity_mapping = $5, allowed_origins = $6
                 WHERE id = $1",
            )
            .await
            .map_err(pg_err)?;
        let changed = c
            .execute(
                &stmt,
                &[
                    &source.id,
                    &source.name,
                    &source.brand,
                    &source.channel,
                    &Json(&source.identity_mapping),
                    &Json(&source.allowed_origins),
                ],
            )
            .await
            .map_err(|e| unique_violation(e, || format!("source {:?}", source.name)))?;
        not_found_if_zero(changed, format!("source {}", source.id))?;
        Ok(source)
    }

    async fn sources(&self) -> Result<Vec<Source>> {
        let c = self.client().await?;
        let found = query(
            &c,
            &format!("SELECT {SOURCE_COLUMNS} FROM sources ORDER BY id"),
            &[],
        )
        .await?;
        rows(found, source_from_row)
    }

    async fn add_write_key(
        &self,
        source_id: SourceId,
        key: &str,
        at: DateTime<Utc>,
    ) -> Result<WriteKey> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "INSERT INTO write_keys (key, source_id, created_at) VALUES ($1, $2, $3)",
            )
            .await
            .map_err(pg_err)?;
        c.execute(&stmt, &[&key, &source_id, &to_millis(at)])
            .await
            .map_err(|e| {
                if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) {
                    StoreError::not_found(format!("source {source_id}"))
                } else {
                    unique_violation(e, || "write key".into())
                }
            })?;
        Ok(WriteKey {
            key: key.to_owned(),
            source_id,
            created_at: at,
            revoked_at: None,
        })
    }

    async fn revoke_write_key(&self, key: &str, at: DateTime<Utc>) -> Result<()> {
        let c = self.client().await?;
        let changed = execute(
            &c,
            "UPDATE write_keys SET revoked_at = $2 WHERE key = $1 AND revoked_at IS NULL",
            &[&key, &to_millis(at)],
        )
        .await?;
        not_found_if_zero(changed, "active write key")
    }

    async fn write_keys(&self) -> Result<Vec<WriteKey>> {
        let c = self.client().await?;
        let found = query(
            &c,
            "SELECT key, source_id, created_at, revoked_at FROM write_keys ORDER BY created_at, key",
            &[],
        )
        .await?;
        rows(found, |r| {
            Ok(WriteKey {
                key: col(r, 0)?,
                source_id: col(r, 1)?,
                created_at: from_millis(col(r, 2)?),
                revoked_at: opt_millis(col(r, 3)?),
            })
        })
    }

    async fn create_token(
        &self,
        name: &str,
        token_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<TokenRecord> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "INSERT INTO admin_tokens (name, token_hash, created_at) VALUES ($1, $2, $3) RETURNING id",
            )
            .await
            .map_err(pg_err)?;
        let row = c
            .query_one(&stmt, &[&name, &token_hash, &to_millis(at)])
            .await
            .map_err(|e| unique_violation(e, || "token".into()))?;
        Ok(TokenRecord {
            id: col(&row, 0)?,
            name: name.to_owned(),
            created_at: at,
            revoked_at: None,
        })
    }

    async fn token_by_hash(&self, token_hash: &str) -> Result<Option<TokenRecord>> {
        let c = self.client().await?;
        query_opt(
            &c,
            &format!("SELECT {TOKEN_COLUMNS} FROM admin_tokens WHERE token_hash = $1"),
            &[&token_hash],
        )
        .await?
        .as_ref()
        .map(token_from_row)
        .transpose()
    }

    async fn tokens(&self) -> Result<Vec<TokenRecord>> {
        let c = self.client().await?;
        let found = query(
            &c,
            &format!("SELECT {TOKEN_COLUMNS} FROM admin_tokens ORDER BY id"),
            &[],
        )
        .await?;
        rows(found, token_from_row)
    }

    async fn revoke_token(&self, id: i64, at: DateTime<Utc>) -> Result<()> {
        let c = self.client().await?;
        let changed = execute(
            &c,
            "UPDATE admin_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
            &[&id, &to_millis(at)],
        )
        .await?;
        not_found_if_zero(changed, format!("active token {id}"))
    }

    async fn dedup_entries(&self, after_seq: i64, limit: usize) -> Result<Vec<(i64, i64)>> {
        let c = self.client().await?;
        let found = query(
            &c,
            "SELECT seq, dedup_hash FROM events WHERE seq > $1 ORDER BY seq LIMIT $2",
            &[&after_seq, &sql_limit(limit)],
        )
        .await?;
        found.iter().map(|r| Ok((col(r, 0)?, col(r, 1)?))).collect()
    }

    async fn message_ids(&self, seqs: &[i64]) -> Result<Vec<(i64, SourceId, String)>> {
        let c = self.client().await?;
        let found = query(
            &c,
            "SELECT e.seq, e.source_id, e.message_id
             FROM unnest($1::bigint[]) WITH ORDINALITY AS q(seq, ord) JOIN events e ON e.seq = q.seq
             ORDER BY q.ord",
            &[&seqs],
        )
        .await?;
        found
            .iter()
            .map(|r| Ok((col(r, 0)?, col(r, 1)?, col(r, 2)?)))
            .collect()
    }

    async fn load_graph(&self, identifiers: &[Identifier]) -> Result<IdentityGraph> {
        let c = self.client().await?;
        load_graph(&c, identifiers).await
    }

    async fn identifiers_after(
        &self,
        after: Option<&Identifier>,
        limit: usize,
    ) -> Result<Vec<Identifier>> {
        let c = self.client().await?;
        let (kind, value) = after.map_or(("", ""), |i| (i.kind.as_str(), i.value.as_str()));
        let rows = query(
            &c,
            "SELECT kind, value FROM identities WHERE (kind, value) > ($1, $2) ORDER BY kind, value LIMIT $3",
            &[&kind, &value, &sql_limit(limit)],
        )
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Identifier {
                    kind: parse_kind(col(r, 0)?)?,
                    value: col(r, 1)?,
                })
            })
            .collect()
    }

    async fn max_profile_id(&self) -> Result<ProfileId> {
        let c = self.client().await?;
        let row = query_opt(
            &c,
            "SELECT GREATEST(COALESCE((SELECT max(id) FROM profiles), 0),
                             COALESCE((SELECT value::bigint FROM meta WHERE key = 'max_profile_id'), 0))",
            &[],
        )
        .await?
        .ok_or_else(|| StoreError::Backend("max_profile_id returned no row".into()))?;
        col(&row, 0)
    }

    async fn apply(&self, batch: WriteBatch) -> Result<Vec<i64>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg_err)?;
        // On error the transaction is dropped, which rolls it back.
        let seqs = apply_batch(&tx, &batch).await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(seqs)
    }

    async fn erased_hashes(&self) -> Result<Vec<String>> {
        let c = self.client().await?;
        let found = query(&c, "SELECT hash FROM erased_identifiers", &[]).await?;
        found.iter().map(|r| col(r, 0)).collect()
    }

    async fn root_of(&self, profile: ProfileId) -> Result<Option<ProfileId>> {
        let c = self.client().await?;
        root_of(&c, profile).await
    }

    async fn profile_by_identifier(&self, identifier: &Identifier) -> Result<Option<ProfileId>> {
        let c = self.client().await?;
        let row = query_opt(
            &c,
            root_walk!(
                "SELECT p.id, p.merged_into, 0 FROM identities i JOIN profiles p ON p.id = i.profile_id
                 WHERE i.kind = $1 AND i.value = $2"
            ),
            &[&identifier.kind.as_str(), &identifier.value],
        )
        .await?;
        root_from_walk(row)
    }

    async fn profile(&self, root: ProfileId) -> Result<Option<ProfileRecord>> {
        let c = self.client().await?;
        profile_record(&c, root).await
    }

    async fn profiles_after(&self, after: ProfileId, limit: usize) -> Result<Vec<ProfileRecord>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT id FROM profiles WHERE id > $1 AND merged_into IS NULL ORDER BY id LIMIT $2",
                &[&after, &(limit as i64)],
            )
            .await
            .map_err(StoreError::backend)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id: ProfileId = row.try_get(0).map_err(StoreError::backend)?;
            out.extend(profile_record(&c, id).await?);
        }
        Ok(out)
    }

    async fn timeline(
        &self,
        root: ProfileId,
        before: Option<TimelineCursor>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>> {
        let c = self.client().await?;
        let members = members(&c, root).await?;
        let cursor = before.unwrap_or(TimelineCursor {
            timestamp_ms: i64::MAX,
            seq: i64::MAX,
        });
        // Per member a backward scan of events_timeline that stops after `limit` rows, then a small merge;
        // a plain `profile_id = ANY(..)` would sort all events of the profile for every page.
        let found = query(
            &c,
            "SELECT e.* FROM unnest($1::bigint[]) AS m(id), LATERAL (
                 SELECT seq, source_id, profile_id, message_id, kind, name, \"timestamp\", received_at, body
                 FROM events WHERE profile_id = m.id AND (\"timestamp\", seq) < ($2, $3)
                 ORDER BY \"timestamp\" DESC, seq DESC LIMIT $4) e
             ORDER BY e.\"timestamp\" DESC, e.seq DESC LIMIT $4",
            &[&members, &cursor.timestamp_ms, &cursor.seq, &sql_limit(limit)],
        )
        .await?;
        rows(found, event_from_row)
    }

    async fn search_by_trait(
        &self,
        key: &str,
        value: &Value,
        limit: usize,
    ) -> Result<Vec<ProfileId>> {
        let c = self.client().await?;
        // Candidates are profiles that hold the value; a root matches if its unified value (latest event
        // time across its members, as in `profile`) is the value.
        let found = query(
            &c,
            "WITH RECURSIVE
                 up(id, parent) AS (
                     SELECT id, merged_into FROM profiles
                     WHERE id IN (SELECT profile_id FROM traits WHERE key = $1 AND value = $2)
                     UNION
                     SELECT p.id, p.merged_into FROM up JOIN profiles p ON p.id = up.parent),
                 roots(root) AS (SELECT DISTINCT id FROM up WHERE parent IS NULL),
                 m(root, id) AS (
                     SELECT root, root FROM roots
                     UNION
                     SELECT m.root, p.id FROM m JOIN profiles p ON p.merged_into = m.id),
                 unified(root, value) AS (
                     SELECT DISTINCT ON (m.root) m.root, t.value
                     FROM m JOIN traits t ON t.profile_id = m.id AND t.key = $1
                     ORDER BY m.root, t.event_time DESC, t.profile_id DESC)
             SELECT root FROM unified WHERE value = $2 ORDER BY root LIMIT $3",
            &[&key, &value.to_string(), &sql_limit(limit)],
        )
        .await?;
        found.iter().map(|r| col(r, 0)).collect()
    }

    async fn merges(&self, root: ProfileId) -> Result<Vec<MergeRecord>> {
        let c = self.client().await?;
        let members = members(&c, root).await?;
        let found = query(
            &c,
            &format!(
                "SELECT {MERGE_COLUMNS} FROM merges WHERE winner = ANY($1) OR loser = ANY($1) ORDER BY id DESC"
            ),
            &[&members],
        )
        .await?;
        rows(found, merge_from_row)
    }

    async fn merge(&self, id: i64) -> Result<Option<MergeRecord>> {
        let c = self.client().await?;
        query_opt(
            &c,
            &format!("SELECT {MERGE_COLUMNS} FROM merges WHERE id = $1"),
            &[&id],
        )
        .await?
        .as_ref()
        .map(merge_from_row)
        .transpose()
    }

    async fn conflicts(&self, root: ProfileId) -> Result<Vec<ConflictRecord>> {
        let c = self.client().await?;
        let members = members(&c, root).await?;
        let found = query(
            &c,
            &format!(
                "SELECT {CONFLICT_COLUMNS} FROM identity_conflicts
                 WHERE kept_on = ANY($1) OR event_profile = ANY($1) ORDER BY id DESC"
            ),
            &[&members],
        )
        .await?;
        rows(found, conflict_from_row)
    }

    async fn unmerge(&self, merge_id: i64, reason: &str, at: DateTime<Utc>) -> Result<MergeRecord> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg_err)?;
        // FOR UPDATE: two concurrent reverts of one merge must not both pass the check below.
        let record = query_opt(
            &tx,
            &format!("SELECT {MERGE_COLUMNS} FROM merges WHERE id = $1 FOR UPDATE"),
            &[&merge_id],
        )
        .await?
        .as_ref()
        .map(merge_from_row)
        .transpose()?
        .ok_or_else(|| StoreError::not_found(format!("merge {merge_id}")))?;
        if record.reverted_at.is_some() {
            return Err(StoreError::Conflict {
                what: format!("revert of merge {merge_id}: it was reverted already"),
            });
        }
        let changed = execute(
            &tx,
            "UPDATE profiles SET merged_into = NULL WHERE id = $1 AND merged_into = $2",
            &[&record.loser, &record.winner],
        )
        .await?;
        if changed != 1 {
            return Err(StoreError::Corrupt(format!(
                "profile {} is not merged into {}",
                record.loser, record.winner
            )));
        }
        execute(
            &tx,
            "UPDATE merges SET reverted_at = $2, revert_reason = $3 WHERE id = $1",
            &[&merge_id, &to_millis(at), &reason],
        )
        .await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(MergeRecord {
            reverted_at: Some(at),
            revert_reason: Some(reason.to_owned()),
            ..record
        })
    }

    async fn export(&self, root: ProfileId) -> Result<Option<ProfileExport>> {
        let mut c = self.client().await?;
        // One snapshot, so that the parts of the export agree with each other.
        let tx = c
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(pg_err)?;
        let Some(profile) = profile_record(&tx, root).await? else {
            return Ok(None);
        };
        let events = rows(
            query(&tx, EVENTS_OF, &[&profile.members]).await?,
            event_from_row,
        )?;
        let merges = rows(
            query(&tx, MERGES_OF, &[&profile.members]).await?,
            merge_from_row,
        )?;
        let conflicts = rows(
            query(&tx, CONFLICTS_OF, &[&profile.members]).await?,
            conflict_from_row,
        )?;
        tx.commit().await.map_err(pg_err)?;
        Ok(Some(ProfileExport {
            profile,
            events,
            merges,
            conflicts,
        }))
    }

    async fn erase(
        &self,
        root: ProfileId,
        erased_hashes: &[String],
        audit: AuditEntry,
    ) -> Result<EraseReport> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg_err)?;
        // Lock the root so that a merge or another erasure cannot change the cluster while it is deleted.
        let is_root = match query_opt(
            &tx,
            "SELECT merged_into FROM profiles WHERE id = $1 FOR UPDATE",
            &[&root],
        )
        .await?
        {
            Some(row) => col::<Option<ProfileId>>(&row, 0)?.is_none(),
            None => false,
        };
        if !is_root {
            return Err(StoreError::not_found(format!("profile {root}")));
        }
        let members = members(&tx, root).await?;
        let ids: &Params<'_> = &[&members];
        let report = EraseReport {
            events: execute(&tx, "DELETE FROM events WHERE profile_id = ANY($1)", ids).await?,
            identities: execute(
                &tx,
                "DELETE FROM identities WHERE profile_id = ANY($1)",
                ids,
            )
            .await?,
            traits: execute(&tx, "DELETE FROM traits WHERE profile_id = ANY($1)", ids).await?,
            merges: execute(
                &tx,
                "DELETE FROM merges WHERE winner = ANY($1) OR loser = ANY($1)",
                ids,
            )
            .await?,
            conflicts: execute(
                &tx,
                "DELETE FROM identity_conflicts WHERE kept_on = ANY($1) OR event_profile = ANY($1)",
                ids,
            )
            .await?,
            profiles: execute(&tx, "DELETE FROM profiles WHERE id = ANY($1)", ids).await?,
        };
        execute(
            &tx,
            "DELETE FROM review_pairs WHERE profile_a = ANY($1) OR profile_b = ANY($1)",
            ids,
        )
        .await?;
        execute(
            &tx,
            "DELETE FROM audience_states WHERE profile_id = ANY($1)",
            ids,
        )
        .await?;
        execute(
            &tx,
            "DELETE FROM segment_members WHERE profile_id = ANY($1)",
            ids,
        )
        .await?;
        execute(
            &tx,
            "INSERT INTO erased_identifiers (hash, erased_at) SELECT h, $2 FROM unnest($1::text[]) AS u(h)
             ON CONFLICT (hash) DO NOTHING",
            &[&erased_hashes, &to_millis(audit.at)],
        )
        .await?;
        insert_audit(&tx, &audit).await?;
        tx.commit().await.map_err(pg_err)?;
        // Deleted rows stay in the heap and indexes as dead tuples until vacuumed; remove them now rather
        // than whenever autovacuum comes by. VACUUM cannot run in a transaction. The erasure is committed
        // by now, so a failure here is logged, not returned.
        if let Err(e) = c.batch_execute(ERASE_VACUUM).await {
            tracing::warn!(error = %e, "VACUUM after erasure failed; autovacuum will remove the rows later");
        }
        Ok(report)
    }

    async fn save_report_snapshot(
        &self,
        kind: &str,
        at: DateTime<Utc>,
        body: &Value,
    ) -> Result<()> {
        let c = self.client().await?;
        execute(
            &c,
            "INSERT INTO report_snapshots (kind, at, body) VALUES ($1, $2, $3)
             ON CONFLICT (kind, at) DO UPDATE SET body = excluded.body",
            &[&kind, &to_millis(at), &body.to_string()],
        )
        .await?;
        Ok(())
    }

    async fn latest_report_snapshot(&self, kind: &str) -> Result<Option<(DateTime<Utc>, Value)>> {
        let c = self.client().await?;
        let row = query_opt(
            &c,
            "SELECT at, body FROM report_snapshots WHERE kind = $1 ORDER BY at DESC LIMIT 1",
            &[&kind],
        )
        .await?;
        match row {
            Some(r) => Ok(Some((from_millis(col(&r, 0)?), parse_json(col(&r, 1)?)?))),
            None => Ok(None),
        }
    }

    async fn put_definition(&self, record: DefinitionRecord) -> Result<()> {
        let c = self.client().await?;
        let inserted = execute(
            &c,
            "INSERT INTO audience_definitions (kind, name, version, hash, body, created_at, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            &[
                &record.kind,
                &record.name,
                &record.version,
                &record.hash,
                &record.body.to_string(),
                &to_millis(record.created_at),
                &record.created_by,
            ],
        )
        .await?;
        if inserted == 0 {
            return Err(StoreError::Conflict {
                what: format!("{} {} version {}", record.kind, record.name, record.version),
            });
        }
        Ok(())
    }

    async fn definitions(&self) -> Result<Vec<DefinitionRecord>> {
        let c = self.client().await?;
        let found = query(
            &c,
            "SELECT kind, name, version, hash, body, created_at, created_by FROM audience_definitions
             ORDER BY kind, name, version",
            &[],
        )
        .await?;
        found
            .iter()
            .map(|r| {
                Ok(DefinitionRecord {
                    kind: col(r, 0)?,
                    name: col(r, 1)?,
                    version: col(r, 2)?,
                    hash: col(r, 3)?,
                    body: parse_json(col(r, 4)?)?,
                    created_at: from_millis(col(r, 5)?),
                    created_by: col(r, 6)?,
                })
            })
            .collect()
    }

    async fn audience(&self, profiles: &[ProfileId]) -> Result<Vec<AudienceRecord>> {
        let c = self.client().await?;
        let found = query(
            &c,
            "SELECT profile_id, covers, states, segments, wake_at FROM audience_states
             WHERE profile_id = ANY($1) ORDER BY profile_id",
            &[&profiles],
        )
        .await?;
        found
            .iter()
            .map(|r| {
                Ok(AudienceRecord {
                    profile_id: col(r, 0)?,
                    covers: parse_json(col(r, 1)?)?,
                    states: col(r, 2)?,
                    segments: parse_json(col(r, 3)?)?,
                    wake_at: opt_millis(col(r, 4)?),
                })
            })
            .collect()
    }

    async fn write_audience(&self, write: AudienceWrite) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg_err)?;
        for a in &write.upserts {
            execute(
                &tx,
                "INSERT INTO audience_states (profile_id, covers, states, segments, wake_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (profile_id) DO UPDATE SET covers = excluded.covers, states = excluded.states,
                     segments = excluded.segments, wake_at = excluded.wake_at",
                &[
                    &a.profile_id,
                    &Value::from(a.covers.clone()).to_string(),
                    &a.states,
                    &Value::from(a.segments.clone()).to_string(),
                    &a.wake_at.map(to_millis),
                ],
            )
            .await?;
        }
        if !write.deletes.is_empty() {
            execute(
                &tx,
                "DELETE FROM audience_states WHERE profile_id = ANY($1)",
                &[&write.deletes],
            )
            .await?;
        }
        for m in &write.changes {
            if m.entered {
                execute(
                    &tx,
                    "INSERT INTO segment_members (segment, profile_id, entered_at) VALUES ($1, $2, $3)
                     ON CONFLICT DO NOTHING",
                    &[&m.segment, &m.profile_id, &to_millis(m.at)],
                )
                .await?;
            } else {
                execute(
                    &tx,
                    "DELETE FROM segment_members WHERE segment = $1 AND profile_id = $2",
                    &[&m.segment, &m.profile_id],
                )
                .await?;
            }
        }
        if let Some(seq) = write.watermark {
            execute(
                &tx,
                "INSERT INTO meta (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&AUDIENCE_WATERMARK, &seq.to_string()],
            )
            .await?;
        }
        tx.commit().await.map_err(pg_err)
    }

    async fn audience_due(&self, until: DateTime<Utc>, limit: usize) -> Result<Vec<ProfileId>> {
        let c = self.client().await?;
        let found = query(
            &c,
            "SELECT profile_id FROM audience_states WHERE wake_at <= $1 ORDER BY wake_at LIMIT $2",
            &[&to_millis(until), &sql_limit(limit)],
        )
        .await?;
        found.iter().map(|r| col(r, 0)).collect()
    }

    async fn next_audience_wake(&self) -> Result<Option<DateTime<Utc>>> {
        let c = self.client().await?;
        let row = query_opt(
            &c,
            "SELECT min(wake_at) FROM audience_states WHERE wake_at IS NOT NULL",
            &[],
        )
        .await?;
        Ok(match row {
            Some(r) => opt_millis(col(&r, 0)?),
            None => None,
        })
    }

    async fn audience_watermark(&self) -> Result<i64> {
        let c = self.client().await?;
        let row = query_opt(
            &c,
            "SELECT value FROM meta WHERE key = $1",
            &[&AUDIENCE_WATERMARK],
        )
        .await?;
        Ok(match row {
            Some(r) => col::<String>(&r, 0)?.parse().unwrap_or(0),
            None => 0,
        })
    }

    async fn segment_members(
        &self,
        segment: &str,
        after: ProfileId,
        limit: usize,
    ) -> Result<Vec<ProfileId>> {
        let c = self.client().await?;
        let found = query(
            &c,
            "SELECT profile_id FROM segment_members WHERE segment = $1 AND profile_id > $2
             ORDER BY profile_id LIMIT $3",
            &[&segment, &after, &sql_limit(limit)],
        )
        .await?;
        found.iter().map(|r| col(r, 0)).collect()
    }

    async fn segment_sizes(&self) -> Result<Vec<(String, u64)>> {
        let c = self.client().await?;
        let found = query(
            &c,
            "SELECT segment, count(*) FROM segment_members GROUP BY segment ORDER BY segment",
            &[],
        )
        .await?;
        found
            .iter()
            .map(|r| Ok((col(r, 0)?, count(col(r, 1)?))))
            .collect()
    }

    async fn record_segment_sizes(&self, at: DateTime<Utc>, sizes: &[(String, u64)]) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg_err)?;
        for (segment, n) in sizes {
            execute(
                &tx,
                "INSERT INTO segment_sizes (segment, at, members) VALUES ($1, $2, $3)
                 ON CONFLICT (segment, at) DO UPDATE SET members = excluded.members",
                &[
                    segment,
                    &to_millis(at),
                    &(i64::try_from(*n).unwrap_or(i64::MAX)),
                ],
            )
            .await?;
        }
        tx.commit().await.map_err(pg_err)
    }

    async fn segment_size_history(
        &self,
        segment: &str,
        limit: usize,
    ) -> Result<Vec<(DateTime<Utc>, u64)>> {
        let c = self.client().await?;
        let found = query(
            &c,
            "SELECT at, members FROM segment_sizes WHERE segment = $1 ORDER BY at DESC LIMIT $2",
            &[&segment, &sql_limit(limit)],
        )
        .await?;
        found
            .iter()
            .map(|r| Ok((from_millis(col(r, 0)?), count(col(r, 1)?))))
            .collect()
    }

    async fn events_after(&self, after_seq: i64, limit: usize) -> Result<Vec<StoredEvent>> {
        let c = self.client().await?;
        let found = query(
            &c,
            "SELECT seq, source_id, profile_id, message_id, kind, name, \"timestamp\", received_at, body
             FROM events WHERE seq > $1 ORDER BY seq LIMIT $2",
            &[&after_seq, &sql_limit(limit)],
        )
        .await?;
        rows(found, event_from_row)
    }

    async fn queue_reviews(&self, reviews: &[NewReview]) -> Result<usize> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg_err)?;
        let mut added = 0;
        for r in reviews {
            let (a, b) = (r.profile_a.min(r.profile_b), r.profile_a.max(r.profile_b));
            // xmax = 0 only for a freshly inserted row.
            let row = query_opt(
                &tx,
                "INSERT INTO review_pairs (profile_a, profile_b, probability, explanation, created_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (profile_a, profile_b) DO UPDATE SET probability = EXCLUDED.probability,
                     explanation = EXCLUDED.explanation
                 WHERE review_pairs.status = 'pending'
                 RETURNING (xmax = 0) AS inserted",
                &[&a, &b, &r.probability, &r.explanation.to_string(), &to_millis(r.at)],
            )
            .await?;
            if let Some(row) = row {
                if col::<bool>(&row, 0)? {
                    added += 1;
                }
            }
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(added)
    }

    async fn reviews(&self, status: Option<&str>, limit: usize) -> Result<Vec<ReviewRecord>> {
        let c = self.client().await?;
        let found = query(
            &c,
            &format!("SELECT {REVIEW_COLUMNS} FROM review_pairs WHERE ($1::text IS NULL OR status = $1) ORDER BY id DESC LIMIT $2"),
            &[&status, &sql_limit(limit)],
        )
        .await?;
        rows(found, review_from_row)
    }

    async fn review(&self, id: i64) -> Result<Option<ReviewRecord>> {
        let c = self.client().await?;
        query_opt(
            &c,
            &format!("SELECT {REVIEW_COLUMNS} FROM review_pairs WHERE id = $1"),
            &[&id],
        )
        .await?
        .map(|r| review_from_row(&r))
        .transpose()
    }

    async fn review_of_pair(&self, a: ProfileId, b: ProfileId) -> Result<Option<ReviewRecord>> {
        let c = self.client().await?;
        query_opt(
            &c,
            &format!(
                "SELECT {REVIEW_COLUMNS} FROM review_pairs WHERE profile_a = $1 AND profile_b = $2"
            ),
            &[&a.min(b), &a.max(b)],
        )
        .await?
        .map(|r| review_from_row(&r))
        .transpose()
    }

    async fn decide_review(
        &self,
        id: i64,
        status: &str,
        actor: &str,
        at: DateTime<Utc>,
        merge_id: Option<i64>,
    ) -> Result<ReviewRecord> {
        let c = self.client().await?;
        let changed = execute(
            &c,
            "UPDATE review_pairs SET status = $2, decided_by = $3, decided_at = $4, merge_id = $5
             WHERE id = $1 AND status = 'pending'",
            &[&id, &status, &actor, &to_millis(at), &merge_id],
        )
        .await?;
        let record = query_opt(
            &c,
            &format!("SELECT {REVIEW_COLUMNS} FROM review_pairs WHERE id = $1"),
            &[&id],
        )
        .await?
        .map(|r| review_from_row(&r))
        .transpose()?
        .ok_or_else(|| StoreError::not_found(format!("review {id}")))?;
        if changed == 0 {
            return Err(StoreError::Conflict {
                what: format!("a decision on review {id} ({})", record.status),
            });
        }
        Ok(record)
    }

    async fn audit(&self, entry: AuditEntry) -> Result<()> {
        let c = self.client().await?;
        insert_audit(&c, &entry).await
    }

    async fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>> {
        let c = self.client().await?;
        let found = query(
            &c,
            "SELECT at, actor, action, subject, detail FROM audit_log ORDER BY id DESC LIMIT $1",
            &[&sql_limit(limit)],
        )
        .await?;
        rows(found, audit_from_row)
    }

    async fn stats(&self) -> Result<StoreStats> {
        let c = self.client().await?;
        let row = query_opt(
            &c,
            "SELECT (SELECT count(*) FROM events),
                    (SELECT count(*) FROM profiles WHERE merged_into IS NULL),
                    (SELECT count(*) FROM identities)",
            &[],
        )
        .await?
        .ok_or_else(|| StoreError::Backend("stats returned no row".into()))?;
        Ok(StoreStats {
            events: count(col(&row, 0)?),
            profiles: count(col(&row, 1)?),
            identities: count(col(&row, 2)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_checked() {
        assert!(check_schema_name("kl_test_1_2_3").is_ok());
        assert!(check_schema_name("_x").is_ok());
        for bad in ["", "1abc", "Abc", "a-b", "a;drop", "a b", &"x".repeat(64)] {
            assert!(check_schema_name(bad).is_err(), "{bad:?}");
        }
    }
}
