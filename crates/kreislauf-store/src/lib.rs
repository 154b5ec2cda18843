//! Storage traits. Backends (`kreislauf-store-sqlite`, `kreislauf-store-postgres`) implement [`Store`];
//! everything above sees `Arc<dyn Store>` and never SQL.
//!
//! Invariants every backend keeps (checked by the conformance suite in [`testsuite`]):
//! * [`Store::apply`] is atomic: all of a batch is committed and durable when it returns `Ok`, or none of it.
//! * Events are append-only; `seq` increases in commit order. Only erasure deletes events.
//! * Merges never move events: a merge sets `merged_into`, an unmerge clears it.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kreislauf_core::{
    Identifier, IdentifierKind, IdentityGraph, IdentityMapping, ProfileId, Source, SourceId,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[cfg(feature = "testsuite")]
pub mod testsuite;

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("{what} already exists")]
    Conflict { what: String },
    /// Another process holds the single-writer role.
    #[error("{0}")]
    Locked(String),
    #[error("invalid stored data: {0}")]
    Corrupt(String),
    #[error("storage backend failed: {0}")]
    Backend(String),
}

impl StoreError {
    pub fn backend(e: impl std::fmt::Display) -> Self {
        StoreError::Backend(e.to_string())
    }
    pub fn not_found(what: impl Into<String>) -> Self {
        StoreError::NotFound { what: what.into() }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Milliseconds since the Unix epoch, the storage representation of time.
pub fn to_millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The inverse of [`to_millis`].
pub fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// A source to create.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewSource {
    pub name: String,
    pub brand: String,
    pub channel: String,
    #[serde(default)]
    pub identity_mapping: IdentityMapping,
    #[serde(default)]
    pub allowed_origins: Vec<String>,
}

/// A write key and the source it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriteKey {
    pub key: String,
    pub source_id: SourceId,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// An admin token as stored: only the hash of the secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: i64,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// An event to append.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub source_id: SourceId,
    pub profile_id: ProfileId,
    pub message_id: String,
    /// Hash of (source, messageId) used by the ingest deduplication index.
    pub dedup_hash: i64,
    pub kind: String,
    pub name: Option<String>,
    pub timestamp: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    /// The normalised message as JSON text.
    pub body: String,
}

/// A trait value set by an event; last write by event time wins.
#[derive(Debug, Clone)]
pub struct TraitWrite {
    pub profile_id: ProfileId,
    pub key: String,
    pub value: Value,
    pub source_id: SourceId,
    pub event_time: DateTime<Utc>,
    /// The value as received, when normalisation changed it (nothing is lost).
    pub raw: Option<Value>,
    /// The data-quality status of the value (`{"status": "normalised"}`, `{"status": "suspicious",
    /// "reason": …}`), for the fields the quality checks know.
    pub status: Option<Value>,
}

/// An identifier newly linked to a profile.
#[derive(Debug, Clone)]
pub struct LinkWrite {
    pub identifier: Identifier,
    pub profile_id: ProfileId,
    pub source_id: SourceId,
    pub at: DateTime<Utc>,
}

/// A merge to record.
#[derive(Debug, Clone)]
pub struct MergeWrite {
    pub winner: ProfileId,
    pub loser: ProfileId,
    pub identifier: Identifier,
    pub reason: String,
    pub message_id: String,
    pub at: DateTime<Utc>,
}

/// A refused link or merge to record.
#[derive(Debug, Clone)]
pub struct ConflictWrite {
    pub identifier: Identifier,
    pub kept_on: Option<ProfileId>,
    pub event_profile: ProfileId,
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// Everything one ingest step writes, atomically.
#[derive(Debug, Clone, Default)]
pub struct WriteBatch {
    pub new_profiles: Vec<(ProfileId, DateTime<Utc>)>,
    pub links: Vec<LinkWrite>,
    pub merges: Vec<MergeWrite>,
    pub conflicts: Vec<ConflictWrite>,
    pub events: Vec<NewEvent>,
    pub traits: Vec<TraitWrite>,
}

/// An identifier as stored on a profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdentityRecord {
    pub kind: IdentifierKind,
    pub value: String,
    pub profile_id: ProfileId,
    pub source_id: SourceId,
    pub first_seen: DateTime<Utc>,
}

/// A trait with its provenance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraitValue {
    pub value: Value,
    pub source_id: SourceId,
    /// Time of the event that set it. A later event from the same source with the same value does not
    /// move it: this is when the source first said so.
    pub updated_at: DateTime<Utc>,
    /// The member profile it was set on.
    pub profile_id: ProfileId,
    /// The value as received, when normalisation changed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<Value>,
    /// The data-quality status of the value, for the fields the quality checks know.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
}

/// A unified profile: a root and everything merged into it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileRecord {
    pub id: ProfileId,
    pub created_at: DateTime<Utc>,
    /// This profile and all profiles merged into it.
    pub members: Vec<ProfileId>,
    pub identities: Vec<IdentityRecord>,
    /// Last write (by event time) wins across all members.
    pub traits: BTreeMap<String, TraitValue>,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub seq: i64,
    pub source_id: SourceId,
    pub profile_id: ProfileId,
    pub message_id: String,
    pub kind: String,
    pub name: Option<String>,
    pub timestamp: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub body: Value,
}

/// Position in a timeline, newest first: events strictly older than this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineCursor {
    pub timestamp_ms: i64,
    pub seq: i64,
}

/// A recorded merge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergeRecord {
    pub id: i64,
    pub winner: ProfileId,
    pub loser: ProfileId,
    pub identifier: Identifier,
    pub reason: String,
    pub message_id: String,
    pub created_at: DateTime<Utc>,
    pub reverted_at: Option<DateTime<Utc>>,
    pub revert_reason: Option<String>,
}

/// A recorded identity conflict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConflictRecord {
    pub id: i64,
    pub identifier: Identifier,
    pub kept_on: Option<ProfileId>,
    pub event_profile: ProfileId,
    pub reason: String,
    pub created_at: DateTime<Utc>,
}

/// Everything stored about one person (data-subject export).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileExport {
    pub profile: ProfileRecord,
    pub events: Vec<StoredEvent>,
    pub merges: Vec<MergeRecord>,
    pub conflicts: Vec<ConflictRecord>,
}

/// What an erasure removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EraseReport {
    pub profiles: u64,
    pub identities: u64,
    pub events: u64,
    pub traits: u64,
    pub merges: u64,
    pub conflicts: u64,
}

/// An audit-log entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: Value,
}

/// A pair of profiles that duplicate detection found likely but not certain: a person decides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewRecord {
    pub id: i64,
    /// The lower profile id of the pair.
    pub profile_a: ProfileId,
    pub profile_b: ProfileId,
    pub probability: f64,
    /// The field-by-field evidence, as produced by the linkage model.
    pub explanation: Value,
    /// `pending`, `accepted` or `rejected`.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decided_by: Option<String>,
    /// The merge an acceptance made.
    pub merge_id: Option<i64>,
}

/// A review pair to queue.
#[derive(Debug, Clone)]
pub struct NewReview {
    pub profile_a: ProfileId,
    pub profile_b: ProfileId,
    pub probability: f64,
    pub explanation: Value,
    pub at: DateTime<Utc>,
}

/// One stored version of an audience definition (a segment or a computed trait).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DefinitionRecord {
    /// `segment` or `computed_trait`.
    pub kind: String,
    pub name: String,
    pub version: i64,
    /// Content hash of the definition: an unchanged definition is not stored again.
    pub hash: String,
    /// The definition document; `null` for a deletion.
    pub body: Value,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

/// The audience state of one unified profile: computed-trait states and segment memberships.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudienceRecord {
    /// The root profile.
    pub profile_id: ProfileId,
    /// The member profiles (root included) whose events the state covers; a merge or unmerge changes
    /// them and makes the state be recomputed.
    pub covers: Vec<ProfileId>,
    /// Computed-trait states as JSON text (opaque to the store: parsed only by the audience engine).
    pub states: String,
    /// Segments the profile is in.
    pub segments: Vec<String>,
    /// When time alone may next change a membership.
    pub wake_at: Option<DateTime<Utc>>,
}

/// A change of one profile's membership in one segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MembershipChange {
    pub segment: String,
    pub profile_id: ProfileId,
    pub entered: bool,
    pub at: DateTime<Utc>,
}

/// Everything one audience pass writes, atomically.
#[derive(Debug, Clone, Default)]
pub struct AudienceWrite {
    pub upserts: Vec<AudienceRecord>,
    /// Profiles whose state is gone (merged away).
    pub deletes: Vec<ProfileId>,
    pub changes: Vec<MembershipChange>,
    /// The last event seq the pass has taken into account.
    pub watermark: Option<i64>,
}

/// Counts for status pages and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreStats {
    pub events: u64,
    pub profiles: u64,
    pub identities: u64,
}

/// The storage interface. All methods are safe to call concurrently; `apply` is called by one writer only.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Backend name for logs and the launch summary.
    fn backend_name(&self) -> &'static str;

    /// A secret kept once per store (e.g. the erasure salt): stores `fresh` on first use, then returns that.
    async fn secret(&self, name: &str, fresh: &str) -> Result<String>;

    // Sources, write keys, admin tokens.
    async fn create_source(&self, source: NewSource) -> Result<Source>;
    async fn update_source(&self, source: Source) -> Result<Source>;
    async fn sources(&self) -> Result<Vec<Source>>;
    async fn add_write_key(
        &self,
        source_id: SourceId,
        key: &str,
        at: DateTime<Utc>,
    ) -> Result<WriteKey>;
    async fn revoke_write_key(&self, key: &str, at: DateTime<Utc>) -> Result<()>;
    async fn write_keys(&self) -> Result<Vec<WriteKey>>;
    async fn create_token(
        &self,
        name: &str,
        token_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<TokenRecord>;
    async fn token_by_hash(&self, token_hash: &str) -> Result<Option<TokenRecord>>;
    async fn tokens(&self) -> Result<Vec<TokenRecord>>;
    async fn revoke_token(&self, id: i64, at: DateTime<Utc>) -> Result<()>;

    // Ingestion.
    /// Up to `limit` (seq, dedup hash) pairs after `after_seq`, in seq order, to rebuild the dedup index.
    async fn dedup_entries(&self, after_seq: i64, limit: usize) -> Result<Vec<(i64, i64)>>;
    /// (seq, source, messageId) of the given events; missing seqs are left out.
    async fn message_ids(&self, seqs: &[i64]) -> Result<Vec<(i64, SourceId, String)>>;
    /// The identity graph around `identifiers`: their links, the merge chains of the linked profiles, the
    /// unique identifiers of each root's cluster and reverted merges touching those roots.
    async fn load_graph(&self, identifiers: &[Identifier]) -> Result<IdentityGraph>;
    /// Up to `limit` stored identifiers after `after`, in (kind, value) order, for full scans.
    async fn identifiers_after(
        &self,
        after: Option<&Identifier>,
        limit: usize,
    ) -> Result<Vec<Identifier>>;
    /// The highest profile id ever given out (erased ones included), 0 if none.
    async fn max_profile_id(&self) -> Result<ProfileId>;
    /// Writes a batch atomically and durably; returns the seq of each event, in order.
    async fn apply(&self, batch: WriteBatch) -> Result<Vec<i64>>;
    /// Salted hashes of erased identifiers.
    async fn erased_hashes(&self) -> Result<Vec<String>>;

    // Profiles.
    /// The root of `profile`, or `None` if it does not exist.
    async fn root_of(&self, profile: ProfileId) -> Result<Option<ProfileId>>;
    async fn profile_by_identifier(&self, identifier: &Identifier) -> Result<Option<ProfileId>>;
    async fn profile(&self, root: ProfileId) -> Result<Option<ProfileRecord>>;
    /// The unified profile of each of `profiles` (any member id), `None` for unknown ones; in order.
    /// Backends answer it in one round trip where they can.
    async fn unified_profiles(&self, profiles: &[ProfileId]) -> Result<Vec<Option<ProfileRecord>>> {
        let mut out = Vec::with_capacity(profiles.len());
        for &p in profiles {
            out.push(match self.root_of(p).await? {
                Some(root) => self.profile(root).await?,
                None => None,
            });
        }
        Ok(out)
    }
    /// Up to `limit` unified (root) profiles with ids above `after`, in id order, for full scans.
    async fn profiles_after(&self, after: ProfileId, limit: usize) -> Result<Vec<ProfileRecord>>;
    /// Events of a unified profile, newest first (by event time).
    async fn timeline(
        &self,
        root: ProfileId,
        before: Option<TimelineCursor>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>>;
    /// Root profiles with trait `key` equal to `value`.
    async fn search_by_trait(
        &self,
        key: &str,
        value: &Value,
        limit: usize,
    ) -> Result<Vec<ProfileId>>;
    /// Merges into or out of any member of the profile, newest first.
    async fn merges(&self, root: ProfileId) -> Result<Vec<MergeRecord>>;
    async fn merge(&self, id: i64) -> Result<Option<MergeRecord>>;
    async fn conflicts(&self, root: ProfileId) -> Result<Vec<ConflictRecord>>;
    /// Reverts a merge: the loser becomes a root again with its own identities, traits and events.
    async fn unmerge(&self, merge_id: i64, reason: &str, at: DateTime<Utc>) -> Result<MergeRecord>;
    async fn export(&self, root: ProfileId) -> Result<Option<ProfileExport>>;
    /// Deletes every row of the person and records `erased_hashes` and the audit entry, atomically.
    async fn erase(
        &self,
        root: ProfileId,
        erased_hashes: &[String],
        audit: AuditEntry,
    ) -> Result<EraseReport>;
    /// Queues review pairs (`profile_a < profile_b`). A pair already queued keeps its decision; a pending one
    /// gets the new probability and evidence. Returns how many pairs are new.
    async fn queue_reviews(&self, reviews: &[NewReview]) -> Result<usize>;
    /// Review pairs, newest first, optionally only those with `status`.
    async fn reviews(&self, status: Option<&str>, limit: usize) -> Result<Vec<ReviewRecord>>;
    async fn review(&self, id: i64) -> Result<Option<ReviewRecord>>;
    /// The review of a pair of profiles, in either order.
    async fn review_of_pair(&self, a: ProfileId, b: ProfileId) -> Result<Option<ReviewRecord>>;
    /// Records a decision on a pending review; a decided one is a `Conflict`.
    async fn decide_review(
        &self,
        id: i64,
        status: &str,
        actor: &str,
        at: DateTime<Utc>,
        merge_id: Option<i64>,
    ) -> Result<ReviewRecord>;
    // Audiences: segments and computed traits.
    /// Stores a definition version; a `(kind, name, version)` that exists is a `Conflict`.
    async fn put_definition(&self, record: DefinitionRecord) -> Result<()>;
    /// Every version of every definition, by kind, name and version.
    async fn definitions(&self) -> Result<Vec<DefinitionRecord>>;
    /// The audience states of the given root profiles (those that have one).
    async fn audience(&self, profiles: &[ProfileId]) -> Result<Vec<AudienceRecord>>;
    async fn write_audience(&self, write: AudienceWrite) -> Result<()>;
    /// Root profiles whose `wake_at` is at or before `until`, earliest first.
    async fn audience_due(&self, until: DateTime<Utc>, limit: usize) -> Result<Vec<ProfileId>>;
    /// The earliest `wake_at`, if any.
    async fn next_audience_wake(&self) -> Result<Option<DateTime<Utc>>>;
    /// The last event seq the audience passes have taken into account (0 if none).
    async fn audience_watermark(&self) -> Result<i64>;
    /// Members of a segment with profile ids above `after`, in id order.
    async fn segment_members(
        &self,
        segment: &str,
        after: ProfileId,
        limit: usize,
    ) -> Result<Vec<ProfileId>>;
    /// Current member count of every segment that has members.
    async fn segment_sizes(&self) -> Result<Vec<(String, u64)>>;
    /// Records the sizes at `at` for the size history.
    async fn record_segment_sizes(&self, at: DateTime<Utc>, sizes: &[(String, u64)]) -> Result<()>;
    /// A segment's recorded sizes, newest first.
    async fn segment_size_history(
        &self,
        segment: &str,
        limit: usize,
    ) -> Result<Vec<(DateTime<Utc>, u64)>>;
    /// Up to `limit` events after `after_seq`, in seq order (replay after a restart).
    async fn events_after(&self, after_seq: i64, limit: usize) -> Result<Vec<StoredEvent>>;

    /// Keeps a report summary (e.g. `quality`), so the next report can show the trend.
    async fn save_report_snapshot(&self, kind: &str, at: DateTime<Utc>, body: &Value)
        -> Result<()>;
    /// The newest saved summary of `kind`.
    async fn latest_report_snapshot(&self, kind: &str) -> Result<Option<(DateTime<Utc>, Value)>>;

    async fn audit(&self, entry: AuditEntry) -> Result<()>;
    async fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>>;
    async fn stats(&self) -> Result<StoreStats>;
}
