//! Audiences: computed traits and segments, kept current per event and as time passes.
//!
//! The pure rules live in `kreislauf-segments` (and the condition language in `kreislauf-expr`); this
//! module is their shell. One processor task per engine:
//!
//! * **Per event.** It reads committed events after its watermark (woken by the ingest writer), applies
//!   them to the computed-trait states of their unified profile and re-evaluates the segments that read
//!   what changed. Reading from the store rather than from the writer's memory makes a restart the same
//!   code path as normal operation: the watermark commits with the states, so after a crash the
//!   processor carries on where it stopped.
//! * **As time passes.** Each profile's state carries the instant at which time alone may next change a
//!   membership (a 30-day window ageing, a birthday turning); the processor sleeps until the earliest.
//! * **Entries and exits** are recorded twice: in `segment_members` (sizes, exports) and as
//!   `Segment Entered` / `Segment Exited` events on the profile's timeline, sent through the ingest
//!   pipeline from the built-in `kreislauf` source. Their messageIds are deterministic, so a replay after
//!   a crash does not record them twice.
//! * **Merges and unmerges** change which member profiles a state covers; such a state is recomputed
//!   from the unified profile's history. So are all states when a computed trait is created or changed.
//!
//! *Invariant:* the state of a profile reflects exactly the events with seq ≤ the watermark: a
//! recompute from history takes only those, and incremental processing only those after it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use kreislauf_core::{IdentifierKind, ProfileId};
use kreislauf_expr::{IdentityKind, StaticFacts};
use kreislauf_segments::{
    schedule, ComputedTraitRegistry, Definitions, MembershipUpdate, ProfileTraitStates,
    SegmentDefinition, SegmentRegistry, TraitEvent,
};
use kreislauf_store::{
    AudienceRecord, AudienceWrite, DefinitionRecord, MembershipChange, NewSource, ProfileRecord,
    Store, StoreError, StoredEvent,
};
use serde::Serialize;
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, oneshot};

use crate::ingest::{Engine, EngineError};

/// Name of the built-in source that records segment entries and exits.
pub const SYSTEM_SOURCE: &str = "kreislauf";
pub const SEGMENT_ENTERED: &str = "Segment Entered";
pub const SEGMENT_EXITED: &str = "Segment Exited";
const EVENT_PAGE: usize = 2_000;
const DUE_PAGE: usize = 1_000;
/// The processor looks at the clock at least this often even when nothing is due (an injected clock in
/// tests, or a definition applied by another process, may have moved things).
const MAX_SLEEP: Duration = Duration::from_secs(30);
/// Profiles buffered before the audience processor writes them (it also writes when it runs out of work).
const FLUSH_PROFILES: usize = 20_000;
/// Member counts are recorded for the size history at most this often during a burst of changes.
const SIZE_RECORD_INTERVAL: Duration = Duration::from_secs(5);

/// Failures of audience operations.
#[derive(Debug, thiserror::Error)]
pub enum AudienceError {
    /// The definition document is invalid; the message names each bad field.
    #[error("{0}")]
    Invalid(String),
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("the audience processor stopped")]
    Stopped,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// What applying a definition document did, per definition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ApplyReport {
    /// (kind, name, version, outcome) with outcome `created`, `updated` or `unchanged`.
    pub definitions: Vec<AppliedDefinition>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppliedDefinition {
    pub kind: String,
    pub name: String,
    pub version: i64,
    pub outcome: String,
}

/// A segment with its current size.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentSummary {
    pub id: String,
    pub name: String,
    pub version: i64,
    pub members: u64,
    pub definition: Value,
}

/// The estimated size and a sample of members of an unsaved segment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Preview {
    /// Profiles evaluated.
    pub scanned: u64,
    /// Of those, matching.
    pub matched: u64,
    /// All unified profiles.
    pub profiles: u64,
    /// `matched / scanned × profiles`, exact when every profile was scanned.
    pub estimated_size: u64,
    pub exact: bool,
    pub sample: Vec<ProfileId>,
}

struct Registries {
    traits: ComputedTraitRegistry,
    segments: SegmentRegistry,
    /// Stored version per (kind, name) and its content hash.
    versions: BTreeMap<(String, String), (i64, String)>,
}

enum Command {
    /// Process everything committed so far, then answer.
    CatchUp(oneshot::Sender<Result<(), AudienceError>>),
    /// Recompute every profile (definitions changed), then answer.
    RecomputeAll(oneshot::Sender<Result<(), AudienceError>>),
    Stop,
}

/// Handle to the audience processor. Cheap to clone.
#[derive(Clone)]
pub struct Audiences {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    registries: RwLock<Arc<Registries>>,
    commands: mpsc::UnboundedSender<Command>,
}

impl Audiences {
    /// Loads the stored definitions and starts the processor.
    pub async fn start(engine: Engine) -> Result<Self, AudienceError> {
        let registries = load_registries(engine.store().as_ref()).await?;
        ensure_system_source(&engine).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let audiences = Self {
            inner: Arc::new(Inner {
                engine: engine.clone(),
                registries: RwLock::new(Arc::new(registries)),
                commands: tx,
            }),
        };
        let processor = Processor {
            audiences: audiences.clone(),
            watermark: engine.store().audience_watermark().await?,
            watermark_time: None,
            pending: PendingWrite::default(),
            sizes_dirty: false,
            sizes_recorded: None,
        };
        tokio::spawn(processor.run(rx));
        Ok(audiences)
    }

    fn registries(&self) -> Arc<Registries> {
        self.inner
            .registries
            .read()
            .map(|r| r.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    fn store(&self) -> &Arc<dyn Store> {
        self.inner.engine.store()
    }

    /// Validates and stores a definition document (YAML or JSON). Changed definitions get a new version;
    /// profiles are then recomputed in the background ([`Self::catch_up`] waits for it).
    pub async fn apply(&self, text: &str, actor: &str) -> Result<ApplyReport, AudienceError> {
        let doc =
            Definitions::from_yaml_str(text).map_err(|e| AudienceError::Invalid(e.to_string()))?;
        let current = self.registries();
        let mut traits = current.traits.clone();
        traits
            .apply_all(doc.computed_traits.clone())
            .map_err(|e| AudienceError::Invalid(e.to_string()))?;
        let mut segments = current.segments.clone();
        segments
            .apply_all(doc.segments.clone(), &traits)
            .map_err(|e| AudienceError::Invalid(e.to_string()))?;
        let now = self.inner.engine.now();
        let mut report = ApplyReport::default();
        let mut versions = current.versions.clone();
        let items = doc
            .computed_traits
            .iter()
            .map(|d| {
                let body = serde_json::to_value(d).unwrap_or(Value::Null);
                ("computed_trait", d.name.clone(), body)
            })
            .chain(
                doc.segments
                    .iter()
                    .map(|d| ("segment", d.id.clone(), d.to_value())),
            );
        let mut changed = false;
        for (kind, name, body) in items {
            let hash = format!(
                "{:016x}",
                xxhash_rust::xxh3::xxh3_64(body.to_string().as_bytes())
            );
            let key = (kind.to_owned(), name.clone());
            let (version, outcome) = match versions.get(&key) {
                Some((v, h)) if *h == hash => (*v, "unchanged"),
                Some((v, _)) => (v + 1, "updated"),
                None => (1, "created"),
            };
            if outcome != "unchanged" {
                self.store()
                    .put_definition(DefinitionRecord {
                        kind: kind.to_owned(),
                        name: name.clone(),
                        version,
                        hash: hash.clone(),
                        body,
                        created_at: now,
                        created_by: actor.to_owned(),
                    })
                    .await?;
                versions.insert(key, (version, hash));
                changed = true;
            }
            report.definitions.push(AppliedDefinition {
                kind: kind.to_owned(),
                name,
                version,
                outcome: outcome.to_owned(),
            });
        }
        if changed {
            let fresh = Arc::new(Registries {
                traits,
                segments,
                versions,
            });
            if let Ok(mut r) = self.inner.registries.write() {
                *r = fresh;
            }
            let (reply, _done) = oneshot::channel();
            self.inner
                .commands
                .send(Command::RecomputeAll(reply))
                .map_err(|_| AudienceError::Stopped)?;
        }
        Ok(report)
    }

    /// Waits until every event committed before the call is reflected in states and memberships.
    pub async fn catch_up(&self) -> Result<(), AudienceError> {
        let (reply, done) = oneshot::channel();
        self.inner
            .commands
            .send(Command::CatchUp(reply))
            .map_err(|_| AudienceError::Stopped)?;
        done.await.map_err(|_| AudienceError::Stopped)?
    }

    /// Stops the processor.
    pub fn stop(&self) {
        let _ = self.inner.commands.send(Command::Stop);
    }

    /// Segments in force with their sizes.
    pub async fn segments(&self) -> Result<Vec<SegmentSummary>, AudienceError> {
        let registries = self.registries();
        let sizes: HashMap<String, u64> = self.store().segment_sizes().await?.into_iter().collect();
        let mut out = Vec::new();
        for id in registries.segments.evaluation_order() {
            if let Some(current) = registries.segments.current(id) {
                out.push(SegmentSummary {
                    id: id.clone(),
                    name: current.definition.name.clone(),
                    version: registries
                        .versions
                        .get(&("segment".to_owned(), id.clone()))
                        .map_or(i64::from(current.version), |v| v.0),
                    members: sizes.get(id).copied().unwrap_or(0),
                    definition: current.definition.to_value(),
                });
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// One segment, its stored versions and its recorded sizes.
    pub async fn segment(&self, id: &str) -> Result<Value, AudienceError> {
        let summary = self
            .segments()
            .await?
            .into_iter()
            .find(|s| s.id == id)
            .ok_or_else(|| AudienceError::NotFound {
                what: format!("segment {id:?}"),
            })?;
        let versions: Vec<Value> = self
            .store()
            .definitions()
            .await?
            .into_iter()
            .filter(|d| d.kind == "segment" && d.name == id)
            .map(|d| json!({"version": d.version, "created_at": d.created_at, "created_by": d.created_by, "definition": d.body}))
            .collect();
        let history: Vec<Value> = self
            .store()
            .segment_size_history(id, 100)
            .await?
            .into_iter()
            .map(|(at, n)| json!({"at": at, "members": n}))
            .collect();
        Ok(json!({"segment": summary, "versions": versions, "size_history": history}))
    }

    /// Computed traits in force.
    pub fn computed_traits(&self) -> Vec<Value> {
        let registries = self.registries();
        registries
            .traits
            .iter()
            .map(|t| {
                let def = t.definition();
                json!({
                    "name": def.name,
                    "version": registries.versions.get(&("computed_trait".to_owned(), def.name.clone())).map(|v| v.0),
                    "definition": serde_json::to_value(def).unwrap_or(Value::Null),
                })
            })
            .collect()
    }

    /// A profile's computed-trait values and segments.
    pub async fn profile(&self, root: ProfileId) -> Result<Value, AudienceError> {
        let registries = self.registries();
        let now = self.inner.engine.now();
        let record = self.store().audience(&[root]).await?.into_iter().next();
        let Some(record) = record else {
            return Ok(json!({"computed": {}, "segments": []}));
        };
        let states: ProfileTraitStates = serde_json::from_str(&record.states).unwrap_or_default();
        let computed: Map<String, Value> = registries
            .traits
            .iter()
            .filter_map(|t| {
                let name = &t.definition().name;
                let value = registries.traits.value(name, &states, now)?;
                Some((name.clone(), value))
            })
            .collect();
        Ok(json!({"computed": computed, "segments": record.segments, "wake_at": record.wake_at}))
    }

    /// Evaluates an unsaved segment definition over stored profiles: the estimated size and a sample.
    /// Scans at most `scan_limit` profiles.
    pub async fn preview(
        &self,
        text: &str,
        scan_limit: usize,
        sample_size: usize,
    ) -> Result<Preview, AudienceError> {
        let definition = SegmentDefinition::from_yaml_str(text)
            .map_err(|e| AudienceError::Invalid(e.to_string()))?;
        let registries = self.registries();
        let mut segments = registries.segments.clone();
        segments
            .apply(definition.clone(), &registries.traits)
            .map_err(|e| AudienceError::Invalid(e.to_string()))?;
        let now = self.inner.engine.now();
        let store = self.store();
        let profiles = store.stats().await?.profiles;
        let (mut scanned, mut matched, mut sample) = (0u64, 0u64, Vec::new());
        let mut after = 0;
        'scan: loop {
            let page = store.profiles_after(after, 500).await?;
            let Some(last) = page.last().map(|p| p.id) else {
                break;
            };
            after = last;
            let ids: Vec<ProfileId> = page.iter().map(|p| p.id).collect();
            let states: HashMap<ProfileId, AudienceRecord> = store
                .audience(&ids)
                .await?
                .into_iter()
                .map(|r| (r.profile_id, r))
                .collect();
            for profile in &page {
                if scanned as usize >= scan_limit {
                    break 'scan;
                }
                scanned += 1;
                let record = states.get(&profile.id);
                let trait_states: ProfileTraitStates = record
                    .map(|r| serde_json::from_str(&r.states).unwrap_or_default())
                    .unwrap_or_default();
                let members: BTreeSet<String> = record
                    .map(|r| r.segments.iter().cloned().collect())
                    .unwrap_or_default();
                let facts = profile_facts(profile, &members);
                let update =
                    evaluate_all(&segments, &registries.traits, &trait_states, &facts, now);
                if update.members.contains(&definition.id) {
                    matched += 1;
                    if sample.len() < sample_size {
                        sample.push(profile.id);
                    }
                }
            }
        }
        let exact = scanned >= profiles;
        let estimated_size = if scanned == 0 {
            0
        } else {
            ((matched as f64 / scanned as f64) * profiles as f64).round() as u64
        };
        Ok(Preview {
            scanned,
            matched,
            profiles,
            estimated_size: if exact { matched } else { estimated_size },
            exact,
            sample,
        })
    }

    /// One page of a segment's members as CSV records: `profile_id`, then the value of each of
    /// `traits` (computed traits by their name too), after profile `after`. Returns the records and the
    /// last profile id, `None` at the end.
    pub async fn export_page(
        &self,
        segment: &str,
        traits: &[String],
        after: ProfileId,
        limit: usize,
    ) -> Result<(Vec<Vec<String>>, Option<ProfileId>), AudienceError> {
        let ids = self.members(segment, after, limit).await?;
        let Some(&last) = ids.last() else {
            return Ok((Vec::new(), None));
        };
        let registries = self.registries();
        let now = self.inner.engine.now();
        let states: HashMap<ProfileId, ProfileTraitStates> = self
            .store()
            .audience(&ids)
            .await?
            .into_iter()
            .map(|a| {
                (
                    a.profile_id,
                    serde_json::from_str(&a.states).unwrap_or_default(),
                )
            })
            .collect();
        let mut rows = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(profile) = self.store().profile(id).await? else {
                continue;
            };
            let mut row = vec![id.to_string()];
            for name in traits {
                let value = profile
                    .traits
                    .get(name)
                    .map(|t| t.value.clone())
                    .or_else(|| {
                        states
                            .get(&id)
                            .and_then(|s| registries.traits.value(name, s, now))
                    });
                row.push(match value {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::String(s)) => s,
                    Some(other) => other.to_string(),
                });
            }
            rows.push(row);
        }
        Ok((rows, Some(last)))
    }

    /// The number of members of a segment.
    pub async fn size(&self, segment: &str) -> Result<u64, AudienceError> {
        Ok(self
            .store()
            .segment_sizes()
            .await?
            .into_iter()
            .find(|(s, _)| s == segment)
            .map_or(0, |(_, n)| n))
    }

    /// Members of a segment after `after`, in id order.
    pub async fn members(
        &self,
        segment: &str,
        after: ProfileId,
        limit: usize,
    ) -> Result<Vec<ProfileId>, AudienceError> {
        if self.registries().segments.current(segment).is_none() {
            return Err(AudienceError::NotFound {
                what: format!("segment {segment:?}"),
            });
        }
        Ok(self.store().segment_members(segment, after, limit).await?)
    }
}

async fn load_registries(store: &dyn Store) -> Result<Registries, AudienceError> {
    let mut latest: BTreeMap<(String, String), DefinitionRecord> = BTreeMap::new();
    for d in store.definitions().await? {
        latest.insert((d.kind.clone(), d.name.clone()), d);
    }
    let mut computed = Vec::new();
    let mut segments = Vec::new();
    for ((kind, _), d) in &latest {
        if d.body.is_null() {
            continue;
        }
        match kind.as_str() {
            "computed_trait" => computed.push(d.body.clone()),
            "segment" => segments.push(d.body.clone()),
            _ => {}
        }
    }
    let doc = Definitions::from_value(&json!({"computed_traits": computed, "segments": segments}))
        .map_err(|e| AudienceError::Invalid(format!("stored definitions: {e}")))?;
    let mut traits = ComputedTraitRegistry::new();
    traits
        .apply_all(doc.computed_traits)
        .map_err(|e| AudienceError::Invalid(format!("stored definitions: {e}")))?;
    let mut segment_registry = SegmentRegistry::new();
    segment_registry
        .apply_all(doc.segments, &traits)
        .map_err(|e| AudienceError::Invalid(format!("stored definitions: {e}")))?;
    Ok(Registries {
        traits,
        segments: segment_registry,
        versions: latest
            .into_iter()
            .map(|(k, d)| (k, (d.version, d.hash)))
            .collect(),
    })
}

async fn ensure_system_source(engine: &Engine) -> Result<(), AudienceError> {
    if engine.source_by_name(SYSTEM_SOURCE).is_none() {
        match engine
            .create_source(NewSource {
                name: SYSTEM_SOURCE.into(),
                brand: SYSTEM_SOURCE.into(),
                channel: "system".into(),
                identity_mapping: Default::default(),
                allowed_origins: vec![],
            })
            .await
        {
            Ok(_) | Err(EngineError::Store(StoreError::Conflict { .. })) => {}
            Err(e) => return Err(e.into()),
        }
        engine.reload_sources().await?;
    }
    Ok(())
}

fn identity_kind(kind: IdentifierKind) -> IdentityKind {
    match kind {
        IdentifierKind::UserId => IdentityKind::UserId,
        IdentifierKind::Email => IdentityKind::Email,
        IdentifierKind::Phone => IdentityKind::Phone,
        IdentifierKind::LoyaltyCard => IdentityKind::LoyaltyCard,
        IdentifierKind::AnonymousId => IdentityKind::AnonymousId,
    }
}

/// What conditions can read of a profile: its traits, identities, consents, segments and timezone.
///
/// Consent is read from the `consent` trait, `{brand: {channel: {purpose: true|false}}}`, until the
/// journey issue brings a consent register.
fn profile_facts(profile: &ProfileRecord, segments: &BTreeSet<String>) -> StaticFacts {
    let mut facts = StaticFacts::new();
    for (key, t) in &profile.traits {
        facts.traits.insert(key.clone(), t.value.clone());
    }
    for id in &profile.identities {
        facts
            .identities
            .entry(identity_kind(id.kind))
            .or_default()
            .push(id.value.clone());
    }
    if let Some(Value::Object(brands)) = profile.traits.get("consent").map(|t| &t.value) {
        for (brand, channels) in brands {
            for (channel, purposes) in channels.as_object().into_iter().flatten() {
                for (purpose, granted) in purposes.as_object().into_iter().flatten() {
                    if let Some(granted) = granted.as_bool() {
                        facts
                            .consents
                            .insert((brand.clone(), channel.clone(), purpose.clone()), granted);
                    }
                }
            }
        }
    }
    facts.timezone = profile
        .traits
        .get("timezone")
        .and_then(|t| t.value.as_str())
        .and_then(|tz| tz.parse().ok());
    facts.profile.insert("id".into(), Value::from(profile.id));
    facts
        .profile
        .insert("created_at".into(), json!(profile.created_at));
    facts.segments = segments.clone();
    facts
}

fn evaluate_all(
    segments: &SegmentRegistry,
    traits: &ComputedTraitRegistry,
    states: &ProfileTraitStates,
    facts: &StaticFacts,
    now: DateTime<Utc>,
) -> MembershipUpdate {
    let with = kreislauf_segments::WithComputed {
        base: facts,
        registry: traits,
        states,
        now,
    };
    segments.evaluate(&with, now, &facts.segments)
}

/// Whether an event may have changed the profile's traits or identities (so every segment is evaluated).
fn changes_profile_facts(e: &StoredEvent) -> bool {
    matches!(e.kind.as_str(), "identify" | "alias" | "group")
        || e.body
            .get("context")
            .and_then(|c| c.get("traits"))
            .is_some()
}

/// The event as the computed-trait rules see it.
fn trait_event<'a>(event: &'a StoredEvent, source: &'a str, brand: &'a str) -> TraitEvent<'a> {
    let name = event.name.as_deref().unwrap_or(event.kind.as_str());
    let mut e = TraitEvent::new(name, source, brand, event.timestamp);
    e.properties = event.body.get("properties");
    e.context = event.body.get("context");
    e
}

/// One profile's state during a pass.
struct Working {
    record: ProfileRecord,
    states: ProfileTraitStates,
    members: BTreeSet<String>,
    entered: Vec<(String, i64)>,
    exited: Vec<(String, i64)>,
    /// A trait, identity or merge changed: evaluate every segment at the end of the pass.
    full_evaluation: bool,
    /// Events applied (for messageIds of entries and exits).
    last_seq: i64,
    touched: bool,
}

struct Processor {
    audiences: Audiences,
    watermark: i64,
    /// When the event at the watermark was received; unknown after a start.
    watermark_time: Option<DateTime<Utc>>,
    /// Writes not yet flushed to the store (write-behind: a profile touched by many events in a burst is
    /// written once). The stored watermark moves only with them, so a crash replays from the last flush.
    pending: PendingWrite,
    /// Memberships changed since the sizes were last recorded.
    sizes_dirty: bool,
    sizes_recorded: Option<std::time::Instant>,
}

impl Processor {
    fn store(&self) -> &Arc<dyn Store> {
        self.audiences.store()
    }

    fn engine(&self) -> &Engine {
        &self.audiences.inner.engine
    }

    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let committed = self.engine().committed_events();
        loop {
            if let Err(e) = self.step().await {
                tracing::error!(error = %e, "audience pass failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            let sleep = self.sleep_for().await;
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::CatchUp(reply)) => {
                        let _ = reply.send(self.step().await);
                    }
                    Some(Command::RecomputeAll(reply)) => {
                        let result = self.recompute_all().await;
                        let result = match result {
                            Ok(()) => self.step().await,
                            Err(e) => Err(e),
                        };
                        if let Err(e) = &result {
                            tracing::error!(error = %e, "audience recompute failed");
                        }
                        let _ = reply.send(result);
                    }
                    Some(Command::Stop) | None => break,
                },
                () = committed.notified() => {}
                () = tokio::time::sleep(sleep) => {}
            }
        }
    }

    /// How long until the next profile is due (bounded, so an injected clock is looked at again).
    async fn sleep_for(&self) -> Duration {
        let now = self.engine().now();
        match self.store().next_audience_wake().await {
            Ok(Some(wake)) if wake <= now => Duration::ZERO,
            Ok(Some(wake)) => (wake - now).to_std().unwrap_or(MAX_SLEEP).min(MAX_SLEEP),
            _ => MAX_SLEEP,
        }
    }

    /// Everything that is due: regrouped profiles, new events, time-based passes.
    async fn step(&mut self) -> Result<(), AudienceError> {
        let registries = self.audiences.registries();
        if registries.traits.is_empty() && registries.segments.is_empty() {
            // Nothing to keep: move the watermark so that the first definition does not replay history
            // (it recomputes from history instead).
            loop {
                let page = self
                    .store()
                    .events_after(self.watermark, EVENT_PAGE)
                    .await?;
                let Some(last) = page.last() else { break };
                self.watermark = last.seq;
                self.watermark_time = page.iter().map(|e| e.received_at).max();
            }
            self.engine().take_regrouped();
            return Ok(());
        }
        let regrouped = self.engine().take_regrouped();
        if !regrouped.is_empty() {
            self.recompute_profiles(&registries, &regrouped).await?;
        }
        loop {
            let page = self
                .store()
                .events_after(self.watermark, EVENT_PAGE)
                .await?;
            if page.is_empty() {
                break;
            }
            self.process_events(&registries, page).await?;
        }
        self.flush().await?;
        self.process_due(&registries).await?;
        self.flush().await?;
        if self.sizes_dirty {
            let now = self.engine().now();
            self.record_sizes(&registries, now).await?;
        }
        Ok(())
    }

    async fn root_and_profile(
        &self,
        profile: ProfileId,
    ) -> Result<Option<ProfileRecord>, AudienceError> {
        let Some(root) = self.store().root_of(profile).await? else {
            return Ok(None);
        };
        Ok(self.store().profile(root).await?)
    }

    /// Loads a working state, recomputing it from history when it does not cover the profile's members.
    async fn working(
        &self,
        registries: &Registries,
        record: ProfileRecord,
        stored: Option<AudienceRecord>,
        up_to_seq: i64,
    ) -> Result<Working, AudienceError> {
        let mut covers = record.members.clone();
        covers.sort_unstable();
        let (states, members, valid) = match stored {
            Some(a) => {
                let mut stored_covers = a.covers.clone();
                stored_covers.sort_unstable();
                (
                    serde_json::from_str::<ProfileTraitStates>(&a.states).unwrap_or_default(),
                    a.segments.into_iter().collect(),
                    stored_covers == covers,
                )
            }
            // A profile created after every event processed so far has no history to rebuild.
            None => {
                let new = self.watermark_time.is_some_and(|t| record.created_at > t);
                (ProfileTraitStates::default(), BTreeSet::new(), new)
            }
        };
        let fresh = states.by_name.is_empty() && members.is_empty();
        let mut working = Working {
            record,
            states,
            members,
            entered: Vec::new(),
            exited: Vec::new(),
            full_evaluation: !valid || fresh,
            last_seq: up_to_seq,
            touched: !valid || fresh,
        };
        if !valid {
            working.states = self
                .recompute_states(registries, &working.record, up_to_seq)
                .await?;
        }
        Ok(working)
    }

    /// The states of a profile from its history, counting only events with seq ≤ `up_to_seq`.
    async fn recompute_states(
        &self,
        registries: &Registries,
        record: &ProfileRecord,
        up_to_seq: i64,
    ) -> Result<ProfileTraitStates, AudienceError> {
        let now = self.engine().now();
        let mut events = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.store().timeline(record.id, cursor, 1000).await?;
            let Some(last) = page.last() else { break };
            cursor = Some(kreislauf_store::TimelineCursor {
                timestamp_ms: last.timestamp.timestamp_millis(),
                seq: last.seq,
            });
            events.extend(page.into_iter().filter(|e| e.seq <= up_to_seq));
        }
        events.reverse();
        let mut states = ProfileTraitStates::default();
        for e in &events {
            let (source, brand) = self.source_names(e.source_id);
            registries
                .traits
                .apply_event(&mut states, &trait_event(e, &source, &brand), now);
        }
        Ok(states)
    }

    fn source_names(&self, id: i64) -> (String, String) {
        self.engine()
            .source_by_id(id)
            .map(|s| (s.name.clone(), s.brand.clone()))
            .unwrap_or_default()
    }

    async fn process_events(
        &mut self,
        registries: &Registries,
        events: Vec<StoredEvent>,
    ) -> Result<(), AudienceError> {
        let now = self.engine().now();
        let last_seq = events.last().map_or(self.watermark, |e| e.seq);
        let last_received = events.iter().map(|e| e.received_at).max();
        let before = self.watermark;
        // Group by unified profile; unknown (erased) profiles are skipped.
        let mut distinct: Vec<ProfileId> = events.iter().map(|e| e.profile_id).collect();
        distinct.sort_unstable();
        distinct.dedup();
        let unified = self.store().unified_profiles(&distinct).await?;
        let mut root_of: HashMap<ProfileId, ProfileId> = HashMap::new();
        let mut records: HashMap<ProfileId, ProfileRecord> = HashMap::new();
        for (member, record) in distinct.into_iter().zip(unified) {
            if let Some(record) = record {
                root_of.insert(member, record.id);
                records.insert(record.id, record);
            }
        }
        let mut by_root: BTreeMap<ProfileId, Vec<&StoredEvent>> = BTreeMap::new();
        for e in &events {
            if let Some(&root) = root_of.get(&e.profile_id) {
                by_root.entry(root).or_default().push(e);
            }
        }
        // The fast path: a profile whose events no computed trait reads and that changed no trait or
        // identity keeps its state and memberships untouched (unless its state must be rebuilt, which the
        // next relevant event or regrouping does).
        by_root.retain(|_, evs| {
            evs.iter().any(|e| {
                if changes_profile_facts(e) {
                    return true;
                }
                let (source, brand) = self.source_names(e.source_id);
                let event = trait_event(e, &source, &brand);
                let relevant = registries.traits.matching(&event).next().is_some();
                relevant
            })
        });
        let roots: Vec<ProfileId> = by_root.keys().copied().collect();
        let mut stored = self.stored_states(&roots).await?;
        let mut workings = Vec::new();
        for (root, evs) in by_root {
            let Some(record) = records.remove(&root) else {
                continue;
            };
            // A state that must be rebuilt is rebuilt from the history before this page, then this page
            // is applied like for everyone else.
            let mut w = self
                .working(registries, record, stored.remove(&root), before)
                .await?;
            let mut facts = profile_facts(&w.record, &w.members);
            for e in evs {
                let (source, brand) = self.source_names(e.source_id);
                let te = trait_event(e, &source, &brand);
                facts.segments.clone_from(&w.members);
                let pass = schedule::on_event(
                    &registries.segments,
                    &registries.traits,
                    &mut w.states,
                    &w.members,
                    &facts,
                    &te,
                    now,
                );
                w.touched |= pass.traits.state_changed;
                if let Some(update) = pass.membership {
                    w.apply(update, e.seq);
                }
                if changes_profile_facts(e) {
                    w.full_evaluation = true;
                }
                w.last_seq = e.seq;
            }
            workings.push(w);
        }
        self.finish(registries, workings, Some(last_seq), now)
            .await?;
        if last_received.is_some() {
            self.watermark_time = last_received;
        }
        Ok(())
    }

    /// Re-evaluates what needs it, stores states and memberships, and records entries and exits.
    async fn finish(
        &mut self,
        registries: &Registries,
        workings: Vec<Working>,
        watermark: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<(), AudienceError> {
        let mut write = AudienceWrite {
            watermark,
            ..Default::default()
        };
        let mut announcements = Vec::new();
        for mut w in workings {
            if w.full_evaluation {
                // Traits or identities changed (or the state was rebuilt). The record was read after
                // these events committed, so it already holds their traits.
                let facts = profile_facts(&w.record, &w.members);
                let update = evaluate_all(
                    &registries.segments,
                    &registries.traits,
                    &w.states,
                    &facts,
                    now,
                );
                let seq = w.last_seq;
                w.apply(update, seq);
                w.touched = true;
            }
            if !w.touched && w.entered.is_empty() && w.exited.is_empty() {
                continue;
            }
            let facts = profile_facts(&w.record, &w.members);
            let wake_at = schedule::next_reevaluation_at(
                &registries.segments,
                &registries.traits,
                &w.states,
                &w.members,
                &facts,
                now,
            );
            for (segment, _) in &w.entered {
                write.changes.push(MembershipChange {
                    segment: segment.clone(),
                    profile_id: w.record.id,
                    entered: true,
                    at: now,
                });
            }
            for (segment, _) in &w.exited {
                write.changes.push(MembershipChange {
                    segment: segment.clone(),
                    profile_id: w.record.id,
                    entered: false,
                    at: now,
                });
            }
            let mut covers = w.record.members.clone();
            covers.sort_unstable();
            write.upserts.push(AudienceRecord {
                profile_id: w.record.id,
                covers,
                states: serde_json::to_string(&w.states).unwrap_or_default(),
                segments: w.members.iter().cloned().collect(),
                wake_at,
            });
            // Merged-away members keep no state of their own.
            write
                .deletes
                .extend(w.record.members.iter().filter(|&&m| m != w.record.id));
            announcements.push(w);
        }
        // Entries and exits go on the timeline first: if the process dies before the state is written, the
        // pass is repeated and the same messageIds are deduplicated.
        self.announce(registries, &announcements, now).await?;
        self.pending.absorb(write);
        if let Some(seq) = watermark {
            self.watermark = seq;
        }
        if self.pending.upserts.len() >= FLUSH_PROFILES {
            self.flush().await?;
        }
        if !announcements
            .iter()
            .all(|w| w.entered.is_empty() && w.exited.is_empty())
        {
            self.sizes_dirty = true;
        }
        // Counting members scans `segment_members`: during a burst at most every few seconds, and once
        // more when the burst is over (`step`).
        if self.sizes_dirty
            && self
                .sizes_recorded
                .is_none_or(|t| t.elapsed() >= SIZE_RECORD_INTERVAL)
        {
            self.record_sizes(registries, now).await?;
        }
        Ok(())
    }

    async fn record_sizes(
        &mut self,
        registries: &Registries,
        now: DateTime<Utc>,
    ) -> Result<(), AudienceError> {
        // Counted from the store: what is buffered goes there first.
        self.flush().await?;
        {
            let sizes = self.store().segment_sizes().await?;
            let sizes: Vec<(String, u64)> = registries
                .segments
                .evaluation_order()
                .iter()
                .map(|id| {
                    let n = sizes.iter().find(|(s, _)| s == id).map_or(0, |(_, n)| *n);
                    (id.clone(), n)
                })
                .collect();
            // One point per minute and segment: later changes in the same minute overwrite it.
            let minute = DateTime::from_timestamp(now.timestamp() / 60 * 60, 0).unwrap_or(now);
            self.store().record_segment_sizes(minute, &sizes).await?;
        }
        self.sizes_dirty = false;
        self.sizes_recorded = Some(std::time::Instant::now());
        Ok(())
    }

    async fn announce(
        &self,
        registries: &Registries,
        workings: &[Working],
        now: DateTime<Utc>,
    ) -> Result<(), AudienceError> {
        let Some(source) = self.engine().source_by_name(SYSTEM_SOURCE) else {
            return Ok(());
        };
        let mut events = Vec::new();
        for w in workings {
            let Some(identity) = anchor_identity(&w.record) else {
                continue;
            };
            let changes = w
                .entered
                .iter()
                .map(|c| (c, SEGMENT_ENTERED, "entered"))
                .chain(w.exited.iter().map(|c| (c, SEGMENT_EXITED, "exited")));
            for ((segment, at_seq), name, verb) in changes {
                let version = registries
                    .versions
                    .get(&("segment".to_owned(), segment.clone()))
                    .map_or(0, |v| v.0);
                let mut message = json!({
                    "type": "track",
                    "event": name,
                    "messageId": format!("segment-{verb}-{segment}-v{version}-p{}-{at_seq}", w.record.id),
                    "timestamp": now,
                    "properties": {"segment_id": segment, "segment_version": version},
                });
                identity.put(&mut message);
                let raw_len = message.to_string().len();
                let event = kreislauf_core::event::normalise(
                    message,
                    None,
                    &Default::default(),
                    now,
                    raw_len,
                    &Default::default(),
                )
                .map_err(|e| AudienceError::Invalid(format!("segment event: {e}")))?;
                events.push(event);
            }
        }
        if !events.is_empty() {
            self.engine().ingest_waiting(source, events).await?;
        }
        Ok(())
    }

    /// The stored audience states of `ids`, with the writes not yet flushed laid over them.
    async fn stored_states(
        &self,
        ids: &[ProfileId],
    ) -> Result<HashMap<ProfileId, AudienceRecord>, AudienceError> {
        let mut out: HashMap<ProfileId, AudienceRecord> = self
            .store()
            .audience(ids)
            .await?
            .into_iter()
            .map(|a| (a.profile_id, a))
            .collect();
        for id in ids {
            if self.pending.deletes.contains(id) {
                out.remove(id);
            }
            if let Some(a) = self.pending.upserts.get(id) {
                out.insert(*id, a.clone());
            }
        }
        Ok(out)
    }

    /// Writes the buffered states, memberships and watermark in one transaction.
    async fn flush(&mut self) -> Result<(), AudienceError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        self.store()
            .write_audience(AudienceWrite {
                upserts: pending.upserts.into_values().collect(),
                deletes: pending.deletes.into_iter().collect(),
                changes: pending.changes,
                watermark: pending.watermark,
            })
            .await?;
        Ok(())
    }

    /// Time-based passes for every profile that is due.
    async fn process_due(&mut self, registries: &Registries) -> Result<(), AudienceError> {
        loop {
            let now = self.engine().now();
            let due = self.store().audience_due(now, DUE_PAGE).await?;
            if due.is_empty() {
                return Ok(());
            }
            let stored = self.stored_states(&due).await?;
            let mut workings = Vec::new();
            for a in stored.into_values() {
                let Some(record) = self.store().profile(a.profile_id).await? else {
                    continue;
                };
                let mut w = self
                    .working(registries, record, Some(a), self.watermark)
                    .await?;
                let facts = profile_facts(&w.record, &w.members);
                let update = schedule::on_time(
                    &registries.segments,
                    &registries.traits,
                    &mut w.states,
                    &w.members,
                    &facts,
                    now,
                );
                // The wake instant, not a seq, names time-based changes.
                w.apply(update, -now.timestamp_millis());
                w.touched = true;
                workings.push(w);
            }
            self.finish(registries, workings, None, now).await?;
            // The next query for due profiles must see these new wake times.
            self.flush().await?;
        }
    }

    /// Rebuilds the states of the unified profiles of `profiles` from their history.
    async fn recompute_profiles(
        &mut self,
        registries: &Registries,
        profiles: &[ProfileId],
    ) -> Result<(), AudienceError> {
        let now = self.engine().now();
        let mut roots = BTreeSet::new();
        let mut workings = Vec::new();
        for &p in profiles {
            let Some(record) = self.root_and_profile(p).await? else {
                continue;
            };
            if !roots.insert(record.id) {
                continue;
            }
            let stored = self.stored_states(&[record.id]).await?.remove(&record.id);
            let mut w = self
                .working(registries, record, stored, self.watermark)
                .await?;
            w.full_evaluation = true;
            workings.push(w);
        }
        self.finish(registries, workings, None, now).await
    }

    /// After a definition change: every profile from its history, then new events as usual.
    async fn recompute_all(&mut self) -> Result<(), AudienceError> {
        let registries = self.audiences.registries();
        let now = self.engine().now();
        let mut after = 0;
        loop {
            let page = self.store().profiles_after(after, 500).await?;
            let Some(last) = page.last().map(|p| p.id) else {
                break;
            };
            after = last;
            let ids: Vec<ProfileId> = page.iter().map(|p| p.id).collect();
            let mut stored = self.stored_states(&ids).await?;
            let mut workings = Vec::new();
            for record in page {
                let previous = stored.remove(&record.id);
                let members: BTreeSet<String> = previous
                    .as_ref()
                    .map(|a| a.segments.iter().cloned().collect())
                    .unwrap_or_default();
                let states = self
                    .recompute_states(&registries, &record, self.watermark)
                    .await?;
                workings.push(Working {
                    record,
                    states,
                    members,
                    entered: Vec::new(),
                    exited: Vec::new(),
                    full_evaluation: true,
                    last_seq: self.watermark,
                    touched: true,
                });
            }
            self.finish(&registries, workings, None, now).await?;
        }
        Ok(())
    }
}

#[derive(Default)]
struct PendingWrite {
    upserts: BTreeMap<ProfileId, AudienceRecord>,
    deletes: BTreeSet<ProfileId>,
    changes: Vec<MembershipChange>,
    watermark: Option<i64>,
}

impl PendingWrite {
    fn absorb(&mut self, write: AudienceWrite) {
        for p in write.deletes {
            self.upserts.remove(&p);
            self.deletes.insert(p);
        }
        for a in write.upserts {
            self.deletes.remove(&a.profile_id);
            self.upserts.insert(a.profile_id, a);
        }
        self.changes.extend(write.changes);
        if write.watermark.is_some() {
            self.watermark = write.watermark;
        }
    }

    fn is_empty(&self) -> bool {
        self.upserts.is_empty()
            && self.deletes.is_empty()
            && self.changes.is_empty()
            && self.watermark.is_none()
    }
}

impl Working {
    fn apply(&mut self, update: MembershipUpdate, at_seq: i64) {
        for change in update.entered {
            self.exited.retain(|(s, _)| *s != change.id);
            self.entered.push((change.id, at_seq));
        }
        for change in update.exited {
            self.entered.retain(|(s, _)| *s != change.id);
            self.exited.push((change.id, at_seq));
        }
        self.members = update.members;
    }
}

/// An identifier that puts a system event on exactly this profile.
struct Anchor {
    profile: ProfileId,
    kind: IdentifierKind,
    value: String,
}

impl Anchor {
    fn put(&self, message: &mut Value) {
        let Some(obj) = message.as_object_mut() else {
            return;
        };
        match self.kind {
            IdentifierKind::UserId => {
                obj.insert("userId".into(), Value::from(self.value.clone()));
            }
            IdentifierKind::AnonymousId => {
                obj.insert("anonymousId".into(), Value::from(self.value.clone()));
            }
            kind => {
                // The Segment spec wants a userId or anonymousId; a profile known only by e-mail, phone or
                // card gets a stable synthetic one, linked to it the first time.
                obj.insert(
                    "context".into(),
                    json!({"traits": {kind.as_str(): self.value}}),
                );
                obj.insert(
                    "anonymousId".into(),
                    Value::from(format!("kreislauf-profile-{}", self.profile)),
                );
            }
        }
    }
}

fn anchor_identity(record: &ProfileRecord) -> Option<Anchor> {
    record
        .identities
        .iter()
        .min_by_key(|i| match i.kind {
            IdentifierKind::UserId => 0,
            IdentifierKind::AnonymousId => 1,
            IdentifierKind::Email => 2,
            IdentifierKind::LoyaltyCard => 3,
            IdentifierKind::Phone => 4,
        })
        .map(|i| Anchor {
            profile: record.id,
            kind: i.kind,
            value: i.value.clone(),
        })
}
