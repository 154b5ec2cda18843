//! The ingestion pipeline.
//!
//! Request handlers validate messages (in parallel, on their own tasks) and hand them to [`Engine::ingest`],
//! which queues them for the **single writer**. The writer takes whatever has queued up (group commit),
//! drops retries by `messageId`, resolves identities with the pure planner from the core, and commits the
//! group in one transaction. Only then are the callers answered: an acknowledged event is durable.
//!
//! Everything that changes the identity graph (ingest, unmerge, erasure) goes through the writer, so the
//! graph the planner reads cannot change under it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use kreislauf_core::event::Event;
use kreislauf_core::resolve::{lookup_keys, Plan};
use kreislauf_core::{Identifier, IdentityGraph, ProfileId, Source, SourceId};
use kreislauf_store::{
    AuditEntry, ConflictWrite, EraseReport, LinkWrite, MergeRecord, MergeWrite, NewEvent,
    NewSource, Store, StoreError, TokenRecord, TraitWrite, WriteBatch, WriteKey,
};
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use crate::clock::Clock;
use crate::dedup::DedupIndex;
use crate::known::KnownIdentifiers;
use crate::metrics::Metrics;
use crate::quality::{check_traits, CheckedTrait};
use kreislauf_quality::Country;

/// Tuning of the ingest pipeline.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Events that may wait for the writer before callers get "overloaded" (HTTP 429).
    pub max_queued_events: usize,
    /// Most events committed in one transaction.
    pub max_group_events: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            max_queued_events: 200_000,
            max_group_events: 20_000,
        }
    }
}

/// Failures of engine operations.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("too many events are waiting to be written; retry later")]
    Overloaded,
    #[error("the engine is shutting down")]
    Stopped,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What happened to the events of one `ingest` call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct IngestOutcome {
    /// Newly stored.
    pub accepted: usize,
    /// Retries of a stored `messageId`, not stored again.
    pub duplicates: usize,
    /// Carrying an erased person's identifier, not stored (the person stays erased).
    pub suppressed: usize,
}

enum Job {
    Ingest {
        source: Arc<Source>,
        events: Vec<Event>,
        /// Per event: the dedup hash and the body as JSON text, computed by the caller's task so that the
        /// single writer does not.
        prepared: Vec<Prepared>,
        reply: oneshot::Sender<Result<IngestOutcome, EngineError>>,
        _permit: OwnedSemaphorePermit,
    },
    Merge {
        a: ProfileId,
        b: ProfileId,
        reason: String,
        actor: String,
        force: bool,
        reply: oneshot::Sender<Result<Option<MergeRecord>, EngineError>>,
    },
    Unmerge {
        merge_id: i64,
        reason: String,
        actor: String,
        reply: oneshot::Sender<Result<MergeRecord, EngineError>>,
    },
    Erase {
        root: ProfileId,
        actor: String,
        reply: oneshot::Sender<Result<EraseReport, EngineError>>,
    },
    Stop,
}

struct SourceCache {
    by_key: HashMap<String, Arc<Source>>,
    by_id: HashMap<SourceId, Arc<Source>>,
}

/// The engine: cheap to clone, shared by every adapter.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    jobs: mpsc::UnboundedSender<Job>,
    queue: Arc<Semaphore>,
    config: EngineConfig,
    sources: RwLock<SourceCache>,
    salt: String,
    writer: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Woken after every committed group (the audience processor listens).
    committed: Arc<tokio::sync::Notify>,
    /// Profiles merged or unmerged since the audience processor last looked.
    regrouped: Arc<std::sync::Mutex<Vec<ProfileId>>>,
    last_reload: std::sync::Mutex<Option<Instant>>,
}

/// Random URL-safe secret with a readable prefix.
pub fn random_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

/// SHA-256 of an admin token; only this is stored.
pub fn token_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

impl Engine {
    /// Loads the dedup index and source cache from `store` and starts the writer.
    pub async fn start(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        config: EngineConfig,
    ) -> Result<Self, EngineError> {
        let started = Instant::now();
        let mut dedup = DedupIndex::default();
        let mut after = 0;
        loop {
            let page = store.dedup_entries(after, 100_000).await?;
            let Some(&(last, _)) = page.last() else { break };
            for (seq, hash) in page {
                dedup.insert(hash as u64, seq);
            }
            after = last;
        }
        dedup.compact();
        let mut known = KnownIdentifiers::with_capacity(0);
        let mut identifiers = 0usize;
        let mut after: Option<Identifier> = None;
        loop {
            let page = store.identifiers_after(after.as_ref(), 100_000).await?;
            let Some(last) = page.last().cloned() else {
                break;
            };
            identifiers += page.len();
            for id in &page {
                known.insert(id);
            }
            after = Some(last);
        }
        let erased: HashSet<String> = store.erased_hashes().await?.into_iter().collect();
        let salt = store.secret("erasure_salt", &random_secret("")).await?;
        let next_profile_id = store.max_profile_id().await? + 1;
        tracing::info!(
            events = dedup.len(),
            dedup_mib = dedup.memory_bytes() / (1 << 20),
            identifiers,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "dedup index and identifier filter loaded"
        );

        let (tx, rx) = mpsc::unbounded_channel();
        let committed = Arc::new(tokio::sync::Notify::new());
        let regrouped = Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer = Writer {
            regrouped: regrouped.clone(),
            committed: committed.clone(),
            identities: IdentityGraph::default(),
            store: store.clone(),
            clock: clock.clone(),
            metrics: metrics.clone(),
            dedup,
            erased,
            salt: salt.clone(),
            next_profile_id,
            max_group_events: config.max_group_events,
            pending: HashMap::new(),
            known,
        };
        let handle = tokio::spawn(writer.run(rx));
        let engine = Engine {
            inner: Arc::new(Inner {
                store,
                clock,
                metrics,
                jobs: tx,
                queue: Arc::new(Semaphore::new(config.max_queued_events)),
                config,
                sources: RwLock::new(SourceCache {
                    by_key: HashMap::new(),
                    by_id: HashMap::new(),
                }),
                salt,
                writer: tokio::sync::Mutex::new(Some(handle)),
                committed,
                regrouped,
                last_reload: std::sync::Mutex::new(None),
            }),
        };
        engine.reload_sources().await?;
        Ok(engine)
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// Re-reads sources and write keys (after an admin change).
    pub async fn reload_sources(&self) -> Result<(), EngineError> {
        let sources = self.inner.store.sources().await?;
        let keys = self.inner.store.write_keys().await?;
        let by_id: HashMap<SourceId, Arc<Source>> =
            sources.into_iter().map(|s| (s.id, Arc::new(s))).collect();
        let by_key = keys
            .into_iter()
            .filter(|k| k.revoked_at.is_none())
            .filter_map(|k| by_id.get(&k.source_id).map(|s| (k.key, s.clone())))
            .collect();
        if let Ok(mut cache) = self.inner.sources.write() {
            *cache = SourceCache { by_key, by_id };
        }
        Ok(())
    }

    /// The source a write key belongs to, if the key is active.
    pub fn source_for_key(&self, write_key: &str) -> Option<Arc<Source>> {
        self.inner
            .sources
            .read()
            .ok()?
            .by_key
            .get(write_key)
            .cloned()
    }

    /// Like [`Engine::source_for_key`], but on a miss re-reads the store (at most once a second), so keys
    /// created by another process (the CLI) work without a restart.
    pub async fn authenticate(&self, write_key: &str) -> Option<Arc<Source>> {
        if let Some(source) = self.source_for_key(write_key) {
            return Some(source);
        }
        let due = {
            let mut last = self.inner.last_reload.lock().ok()?;
            let due = last.is_none_or(|t| t.elapsed() > Duration::from_secs(1));
            if due {
                *last = Some(Instant::now());
            }
            due
        };
        if due {
            let _ = self.reload_sources().await;
        }
        self.source_for_key(write_key)
    }

    /// Notified after every committed ingest group.
    pub fn committed_events(&self) -> Arc<tokio::sync::Notify> {
        self.inner.committed.clone()
    }

    /// Takes the profiles merged or unmerged since the last call.
    pub fn take_regrouped(&self) -> Vec<ProfileId> {
        self.inner
            .regrouped
            .lock()
            .map(|mut list| std::mem::take(&mut *list))
            .unwrap_or_default()
    }

    pub fn source_by_id(&self, id: SourceId) -> Option<Arc<Source>> {
        self.inner.sources.read().ok()?.by_id.get(&id).cloned()
    }

    pub fn source_by_name(&self, name: &str) -> Option<Arc<Source>> {
        self.inner
            .sources
            .read()
            .ok()?
            .by_id
            .values()
            .find(|s| s.name == name)
            .cloned()
    }

    /// Every origin some source allows, for CORS.
    pub fn allowed_origins(&self) -> HashSet<String> {
        self.inner
            .sources
            .read()
            .map(|c| {
                c.by_id
                    .values()
                    .flat_map(|s| s.allowed_origins.iter().cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Queues validated events of one source and waits until they are committed.
    pub async fn ingest(
        &self,
        source: Arc<Source>,
        events: Vec<Event>,
    ) -> Result<IngestOutcome, EngineError> {
        if events.is_empty() {
            return Ok(IngestOutcome::default());
        }
        let n = u32::try_from(events.len()).map_err(|_| EngineError::Overloaded)?;
        if events.len() > self.inner.config.max_queued_events {
            return Err(EngineError::Overloaded);
        }
        let permit = self
            .inner
            .queue
            .clone()
            .try_acquire_many_owned(n)
            .map_err(|_| EngineError::Overloaded)?;
        self.inner.metrics.queued_events.add(i64::from(n));
        let country = source
            .identity_mapping
            .default_country
            .as_deref()
            .and_then(Country::parse)
            .unwrap_or(Country::CH);
        let today = self.inner.clock.now().date_naive();
        let prepared = events
            .iter()
            .map(|e| {
                (
                    DedupIndex::hash(source.id, &e.message_id),
                    serde_json::to_string(&e.body).unwrap_or_default(),
                    e.profile_traits()
                        .map(|traits| check_traits(traits, country, today))
                        .unwrap_or_default(),
                )
            })
            .collect();
        let (reply, answer) = oneshot::channel();
        let sent = self.inner.jobs.send(Job::Ingest {
            source,
            events,
            prepared,
            reply,
            _permit: permit,
        });
        let result = match sent {
            Ok(()) => answer.await.unwrap_or(Err(EngineError::Stopped)),
            Err(_) => Err(EngineError::Stopped),
        };
        self.inner.metrics.queued_events.sub(i64::from(n));
        result
    }

    /// Like [`Engine::ingest`] but waits for room in the queue instead of failing (for imports).
    pub async fn ingest_waiting(
        &self,
        source: Arc<Source>,
        events: Vec<Event>,
    ) -> Result<IngestOutcome, EngineError> {
        loop {
            match self.ingest(source.clone(), events.clone()).await {
                Err(EngineError::Overloaded)
                    if events.len() <= self.inner.config.max_queued_events =>
                {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                other => return other,
            }
        }
    }

    /// Reverts a merge (through the writer, so no batch resolves against a half-changed graph).
    pub async fn unmerge(
        &self,
        merge_id: i64,
        reason: &str,
        actor: &str,
    ) -> Result<MergeRecord, EngineError> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .jobs
            .send(Job::Unmerge {
                merge_id,
                reason: reason.to_owned(),
                actor: actor.to_owned(),
                reply,
            })
            .map_err(|_| EngineError::Stopped)?;
        answer.await.unwrap_or(Err(EngineError::Stopped))
    }

    /// Erases a person: every row of the profile and its members, keeping only salted hashes of the
    /// identifiers so that late events carrying them are not stored.
    /// Merges two profiles found to be the same person (duplicate detection), through the writer and the
    /// same reversible mechanism as identity resolution. `None` when nothing was merged: they are one
    /// profile already, one no longer exists, or a merge between them was reverted before (a person
    /// decided) and `force` (a person deciding now) is not set.
    pub async fn merge_profiles(
        &self,
        a: ProfileId,
        b: ProfileId,
        reason: &str,
        actor: &str,
        force: bool,
    ) -> Result<Option<MergeRecord>, EngineError> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .jobs
            .send(Job::Merge {
                a,
                b,
                reason: reason.to_owned(),
                actor: actor.to_owned(),
                force,
                reply,
            })
            .map_err(|_| EngineError::Stopped)?;
        answer.await.unwrap_or(Err(EngineError::Stopped))
    }

    pub async fn erase(&self, root: ProfileId, actor: &str) -> Result<EraseReport, EngineError> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .jobs
            .send(Job::Erase {
                root,
                actor: actor.to_owned(),
                reply,
            })
            .map_err(|_| EngineError::Stopped)?;
        answer.await.unwrap_or(Err(EngineError::Stopped))
    }

    /// The salted hash kept for an erased identifier.
    pub fn erased_identifier_hash(&self, id: &Identifier) -> String {
        erased_hash(&self.inner.salt, id)
    }

    /// Creates a source with a fresh write key.
    pub async fn create_source(
        &self,
        source: NewSource,
    ) -> Result<(Source, WriteKey), EngineError> {
        let created = self.inner.store.create_source(source).await?;
        let key = self
            .inner
            .store
            .add_write_key(created.id, &random_secret("wk_"), self.now())
            .await?;
        self.reload_sources().await?;
        Ok((created, key))
    }

    pub async fn add_write_key(&self, source_id: SourceId) -> Result<WriteKey, EngineError> {
        let key = self
            .inner
            .store
            .add_write_key(source_id, &random_secret("wk_"), self.now())
            .await?;
        self.reload_sources().await?;
        Ok(key)
    }

    pub async fn revoke_write_key(&self, key: &str) -> Result<(), EngineError> {
        self.inner.store.revoke_write_key(key, self.now()).await?;
        self.reload_sources().await
    }

    pub async fn update_source(&self, source: Source) -> Result<Source, EngineError> {
        let updated = self.inner.store.update_source(source).await?;
        self.reload_sources().await?;
        Ok(updated)
    }

    /// Creates an admin token; the secret is returned once and only its hash is stored.
    pub async fn create_token(&self, name: &str) -> Result<(TokenRecord, String), EngineError> {
        let secret = random_secret("kl_");
        let record = self
            .inner
            .store
            .create_token(name, &token_hash(&secret), self.now())
            .await?;
        Ok((record, secret))
    }

    /// The active token with this secret.
    pub async fn verify_token(&self, secret: &str) -> Result<Option<TokenRecord>, EngineError> {
        let found = self.inner.store.token_by_hash(&token_hash(secret)).await?;
        Ok(found.filter(|t| t.revoked_at.is_none()))
    }

    /// Finishes every queued job, then stops the writer.
    pub async fn shutdown(&self) {
        let _ = self.inner.jobs.send(Job::Stop);
        if let Some(handle) = self.inner.writer.lock().await.take() {
            let _ = handle.await;
        }
    }
}

fn erased_hash(salt: &str, id: &Identifier) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update([0]);
    h.update(id.kind.as_str().as_bytes());
    h.update([0]);
    h.update(id.value.as_bytes());
    hex::encode(h.finalize())
}

/// Identifiers the writer keeps in memory before it starts its cache afresh (about 100 bytes each).
const IDENTITY_CACHE_MAX: usize = 500_000;

struct Writer {
    /// The identity graph around everything this writer has seen; see `commit_group`.
    identities: IdentityGraph,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    dedup: DedupIndex,
    erased: HashSet<String>,
    salt: String,
    next_profile_id: ProfileId,
    max_group_events: usize,
    committed: Arc<tokio::sync::Notify>,
    regrouped: Arc<std::sync::Mutex<Vec<ProfileId>>>,
    /// Messages of groups decided but not yet committed: hash → (source, messageId).
    pending: HashMap<u64, Vec<(SourceId, String)>>,
    /// Every identifier the store may hold, so that new ones are not looked up.
    known: KnownIdentifiers,
}

/// Per event, computed by the caller's task so that the single writer does not: the dedup hash, the body
/// as JSON text and the checked profile traits.
type Prepared = (u64, String, Vec<CheckedTrait>);

struct Pending {
    source: Arc<Source>,
    events: Vec<Event>,
    prepared: Vec<Prepared>,
    reply: oneshot::Sender<Result<IngestOutcome, EngineError>>,
    outcome: IngestOutcome,
}

/// A group whose decisions are made and whose write is on its way to the store.
struct InFlight {
    group: Vec<Pending>,
    keep: Vec<Vec<bool>>,
    event_hashes: Vec<u64>,
    /// Profiles this group merges (winners and losers).
    merged: Vec<ProfileId>,
    started: Instant,
    timings: GroupTimings,
    write: tokio::task::JoinHandle<Result<Vec<i64>, StoreError>>,
}

#[derive(Debug, Clone, Copy)]
struct GroupTimings {
    events: usize,
    dedup: Duration,
    graph: Duration,
    plan: Duration,
}

impl Writer {
    /// Groups are pipelined: while the store commits one group, the next one is deduplicated and
    /// resolved against the identity state that includes the first group's decisions. At most one group is
    /// in flight; if its commit fails, the group prepared on top of it fails too and the caches start
    /// afresh from the store.
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Job>) {
        let mut in_flight: Option<InFlight> = None;
        let mut stopping = false;
        while !stopping {
            let first = match in_flight.as_mut() {
                None => rx.recv().await,
                Some(flight) => {
                    tokio::select! {
                        biased;
                        job = rx.recv() => job,
                        written = &mut flight.write => {
                            if let Some(flight) = in_flight.take() {
                                self.finish(flight, written);
                            }
                            continue;
                        }
                    }
                }
            };
            let Some(first) = first else { break };
            let mut group = Vec::new();
            let mut others = Vec::new();
            let mut size = 0;
            let mut next = Some(first);
            while let Some(job) = next.take() {
                match job {
                    Job::Ingest {
                        source,
                        events,
                        prepared,
                        reply,
                        _permit,
                    } => {
                        size += events.len();
                        group.push(Pending {
                            source,
                            events,
                            prepared,
                            reply,
                            outcome: IngestOutcome::default(),
                        });
                    }
                    Job::Stop => stopping = true,
                    other => others.push(other),
                }
                if size < self.max_group_events && others.is_empty() && !stopping {
                    next = rx.try_recv().ok();
                }
            }
            if !group.is_empty() {
                in_flight = self.pipeline(group, in_flight).await;
            }
            if !others.is_empty() || stopping {
                self.land(&mut in_flight).await;
            }
            for job in others {
                self.run_admin(job).await;
            }
        }
        self.land(&mut in_flight).await;
        // Drain what was queued before the stop.
        while let Ok(job) = rx.try_recv() {
            match job {
                Job::Ingest {
                    source,
                    events,
                    prepared,
                    reply,
                    _permit,
                } => {
                    let group = vec![Pending {
                        source,
                        events,
                        prepared,
                        reply,
                        outcome: IngestOutcome::default(),
                    }];
                    in_flight = self.pipeline(group, in_flight).await;
                    self.land(&mut in_flight).await;
                }
                Job::Stop => {}
                other => self.run_admin(other).await,
            }
        }
        tracing::info!("ingest writer stopped");
    }

    /// Waits for the group in flight, if any, and answers its callers.
    async fn land(&mut self, in_flight: &mut Option<InFlight>) {
        if let Some(mut flight) = in_flight.take() {
            let written = (&mut flight.write).await;
            self.finish(flight, written);
        }
    }

    /// Prepares `group` while `previous` is being written, then lands `previous` and sends `group` off.
    async fn pipeline(
        &mut self,
        group: Vec<Pending>,
        mut previous: Option<InFlight>,
    ) -> Option<InFlight> {
        let prepared = self.prepare(group, previous.is_none()).await;
        let landed_ok = match previous.take() {
            Some(mut flight) => {
                let written = (&mut flight.write).await;
                self.finish(flight, written)
            }
            None => true,
        };
        let (group, keep, event_hashes, batch, started, timings) = prepared?;
        if !landed_ok {
            // Decided on top of a group that did not commit.
            self.forget_pending(&keep, &group);
            fail_group(
                group,
                EngineError::Store(StoreError::Backend("an earlier write failed; retry".into())),
            );
            return None;
        }
        let store = self.store.clone();
        let merged = batch
            .merges
            .iter()
            .flat_map(|m| [m.winner, m.loser])
            .collect();
        let write = tokio::spawn(async move { store.apply(batch).await });
        Some(InFlight {
            group,
            keep,
            event_hashes,
            merged,
            started,
            timings,
            write,
        })
    }

    async fn run_admin(&mut self, job: Job) {
        let now = self.clock.now();
        // Unmerge and erasure change the graph behind the cache.
        self.identities = IdentityGraph::default();
        match job {
            Job::Unmerge {
                merge_id,
                reason,
                actor,
                reply,
            } => {
                let result = async {
                    let record = self.store.unmerge(merge_id, &reason, now).await?;
                    self.regrouped(&[record.winner, record.loser]);
                    self.store
                        .audit(AuditEntry {
                            at: now,
                            actor,
                            action: "unmerge".into(),
                            subject: format!("merge {merge_id}"),
                            detail: serde_json::json!({"winner": record.winner, "loser": record.loser, "reason": reason}),
                        })
                        .await?;
                    Ok(record)
                }
                .await;
                let _ = reply.send(result);
            }
            Job::Erase { root, actor, reply } => {
                let result = self.erase(root, actor, now).await;
                let _ = reply.send(result);
            }
            Job::Merge {
                a,
                b,
                reason,
                actor,
                force,
                reply,
            } => {
                let result = self.merge(a, b, reason, actor, force, now).await;
                if let Ok(Some(record)) = &result {
                    self.regrouped(&[record.winner, record.loser]);
                }
                let _ = reply.send(result);
            }
            Job::Ingest { .. } | Job::Stop => {}
        }
    }

    /// Tells listeners (the audience processor) that these profiles were merged or unmerged.
    fn regrouped(&self, profiles: &[ProfileId]) {
        if let Ok(mut list) = self.regrouped.lock() {
            list.extend_from_slice(profiles);
        }
        self.committed.notify_one();
    }

    async fn merge(
        &mut self,
        a: ProfileId,
        b: ProfileId,
        reason: String,
        actor: String,
        force: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<MergeRecord>, EngineError> {
        let (Some(root_a), Some(root_b)) =
            (self.store.root_of(a).await?, self.store.root_of(b).await?)
        else {
            return Ok(None);
        };
        if root_a == root_b {
            return Ok(None);
        }
        let (winner, loser) = (root_a.min(root_b), root_a.max(root_b));
        let reverted_before = self.store.merges(winner).await?.iter().any(|m| {
            m.reverted_at.is_some()
                && ((m.winner, m.loser) == (winner, loser)
                    || (m.winner, m.loser) == (loser, winner))
        });
        // A person reverted this merge before: that decision stands, unless a person now decides otherwise.
        if reverted_before && !force {
            return Ok(None);
        }
        let Some(l) = self.store.profile(loser).await? else {
            return Ok(None);
        };
        // The merge record names the merged profile's strongest identifier.
        let Some(via) = l.identities.iter().min_by_key(|i| i.kind.priority()) else {
            return Ok(None);
        };
        let identifier = Identifier {
            kind: via.kind,
            value: via.value.clone(),
        };
        let batch = WriteBatch {
            merges: vec![MergeWrite {
                winner,
                loser,
                identifier,
                reason: reason.clone(),
                message_id: format!("dedupe:{actor}"),
                at: now,
            }],
            ..WriteBatch::default()
        };
        self.store.apply(batch).await?;
        self.store
            .audit(AuditEntry {
                at: now,
                actor,
                action: "merge".into(),
                subject: format!("profiles {winner} and {loser}"),
                detail: serde_json::json!({"reason": reason}),
            })
            .await?;
        Ok(self
            .store
            .merges(winner)
            .await?
            .into_iter()
            .find(|m| m.loser == loser && m.reverted_at.is_none()))
    }

    async fn erase(
        &mut self,
        root: ProfileId,
        actor: String,
        now: DateTime<Utc>,
    ) -> Result<EraseReport, EngineError> {
        if self.store.root_of(root).await? != Some(root) {
            return Err(StoreError::not_found(format!("profile {root}")).into());
        }
        let profile = self
            .store
            .profile(root)
            .await?
            .ok_or_else(|| StoreError::not_found(format!("profile {root}")))?;
        let hashes: Vec<String> = profile
            .identities
            .iter()
            .map(|i| {
                erased_hash(
                    &self.salt,
                    &Identifier {
                        kind: i.kind,
                        value: i.value.clone(),
                    },
                )
            })
            .collect();
        let audit = AuditEntry {
            at: now,
            actor,
            action: "erase".into(),
            subject: format!("profile {root}"),
            detail: serde_json::json!({"members": profile.members, "identities_hashed": hashes.len()}),
        };
        let report = self.store.erase(root, &hashes, audit).await?;
        self.erased.extend(hashes);
        tracing::info!(profile = root, events = report.events, "profile erased");
        Ok(report)
    }

    /// Deduplicates, resolves and commits a group of ingest jobs; answers each job.
    /// Decides a group: drops retries and erased persons' events, resolves identities, builds the batch.
    /// Updates the identity cache and the pending-message set as if the group commits.
    #[allow(clippy::type_complexity)]
    async fn prepare(
        &mut self,
        mut group: Vec<Pending>,
        nothing_in_flight: bool,
    ) -> Option<(
        Vec<Pending>,
        Vec<Vec<bool>>,
        Vec<u64>,
        WriteBatch,
        Instant,
        GroupTimings,
    )> {
        let started = Instant::now();
        let now = self.clock.now();
        if nothing_in_flight && self.identities.links.len() > IDENTITY_CACHE_MAX {
            // Only safe while no undecided write could be missing from the store.
            self.identities = IdentityGraph::default();
        }
        // 1. Drop retries and erased persons' events. Hash hits are only candidates: confirmed by messageId.
        let to_verify: Vec<i64> = group
            .iter()
            .flat_map(|job| job.prepared.iter())
            .flat_map(|(h, _, _)| self.dedup.candidates(*h))
            .collect();
        let stored: HashSet<(SourceId, String)> = if to_verify.is_empty() {
            HashSet::new()
        } else {
            match self.store.message_ids(&to_verify).await {
                Ok(rows) => rows
                    .into_iter()
                    .map(|(_, source, id)| (source, id))
                    .collect(),
                Err(e) => {
                    fail_group(group, e.into());
                    return None;
                }
            }
        };
        let mut keep: Vec<Vec<bool>> = Vec::with_capacity(group.len());
        let mut skipped: Vec<(usize, usize)> = Vec::with_capacity(group.len());
        for job in &group {
            let (mut duplicates, mut suppressed) = (0, 0);
            let mut flags = Vec::with_capacity(job.events.len());
            for (event, (h, _, _)) in job.events.iter().zip(&job.prepared) {
                let key = (job.source.id, event.message_id.as_str());
                let pending = self
                    .pending
                    .get(h)
                    .is_some_and(|v| v.iter().any(|(s, m)| *s == key.0 && m == key.1));
                if pending || (!stored.is_empty() && stored.contains(&(key.0, key.1.to_owned()))) {
                    duplicates += 1;
                    flags.push(false);
                    continue;
                }
                if !self.erased.is_empty()
                    && event
                        .identifiers(&job.source.identity_mapping)
                        .iter()
                        .any(|id| self.erased.contains(&erased_hash(&self.salt, id)))
                {
                    suppressed += 1;
                    flags.push(false);
                    continue;
                }
                self.pending
                    .entry(*h)
                    .or_default()
                    .push((job.source.id, event.message_id.clone()));
                flags.push(true);
            }
            keep.push(flags);
            skipped.push((duplicates, suppressed));
        }
        for (job, (duplicates, suppressed)) in group.iter_mut().zip(skipped) {
            job.outcome.duplicates += duplicates;
            job.outcome.suppressed += suppressed;
        }

        // 2. Resolve identities against the graph around this group.
        let mut keys: Vec<Identifier> = Vec::new();
        for (job, flags) in group.iter().zip(&keep) {
            for (event, _) in job.events.iter().zip(flags).filter(|(_, k)| **k) {
                keys.extend(lookup_keys(event, &job.source.identity_mapping));
            }
        }
        keys.sort();
        keys.dedup();
        let dedup_done = started.elapsed();
        // The writer's graph cache is authoritative for what it holds (every graph change passes through
        // this writer, and a group in flight is already in it); only identifiers it has not seen are read
        // from the store.
        let missing: Vec<Identifier> = keys
            .into_iter()
            .filter(|k| !self.identities.links.contains_key(k) && self.known.might_contain(k))
            .collect();
        if !missing.is_empty() {
            match self.store.load_graph(&missing).await {
                Ok(loaded) => self.identities.absorb(loaded),
                Err(e) => {
                    self.forget_pending(&keep, &group);
                    fail_group(group, e.into());
                    return None;
                }
            }
        }
        let graph_loaded = started.elapsed();
        let graph = &mut self.identities;
        graph.next_profile_id = graph.next_profile_id.max(self.next_profile_id);
        let mut plan = Plan::default();
        let mut batch = WriteBatch::default();
        let mut event_hashes = Vec::new();
        for (job, flags) in group.iter_mut().zip(&keep) {
            let source_id = job.source.id;
            let mapping = &job.source.identity_mapping;
            for ((event, (h, body, checked)), _) in job
                .events
                .iter()
                .zip(job.prepared.iter_mut())
                .zip(flags)
                .filter(|(_, k)| **k)
            {
                let index = batch.events.len();
                let first_conflict = plan.conflicts.len();
                let first_link = plan.links.len();
                let first_merge = plan.merges.len();
                let profile = graph.assign(index, event, mapping, &mut plan);
                for link in &plan.links[first_link..] {
                    self.known.insert(&link.identifier);
                    batch.links.push(LinkWrite {
                        identifier: link.identifier.clone(),
                        profile_id: link.profile,
                        source_id,
                        at: now,
                    });
                }
                for m in &plan.merges[first_merge..] {
                    batch.merges.push(MergeWrite {
                        winner: m.winner,
                        loser: m.loser,
                        identifier: m.identifier.clone(),
                        reason: m.reason.clone(),
                        message_id: event.message_id.clone(),
                        at: now,
                    });
                }
                for c in &plan.conflicts[first_conflict..] {
                    batch.conflicts.push(ConflictWrite {
                        identifier: c.identifier.clone(),
                        kept_on: c.kept_on,
                        event_profile: c.event_profile,
                        reason: c.reason.clone(),
                        at: now,
                    });
                }
                for t in std::mem::take(checked) {
                    batch.traits.push(TraitWrite {
                        profile_id: profile,
                        key: t.key,
                        value: t.value,
                        source_id,
                        event_time: event.timestamp,
                        raw: t.raw,
                        status: t.status,
                    });
                }
                batch.events.push(NewEvent {
                    source_id,
                    profile_id: profile,
                    message_id: event.message_id.clone(),
                    dedup_hash: *h as i64,
                    kind: event.kind.as_str().to_owned(),
                    name: event.name.clone(),
                    timestamp: event.timestamp,
                    received_at: event.received_at,
                    body: std::mem::take(body),
                });
                event_hashes.push(*h);
            }
        }
        self.next_profile_id = graph.next_profile_id;
        batch.new_profiles = plan.new_profiles.iter().map(|&p| (p, now)).collect();
        let timings = GroupTimings {
            events: batch.events.len(),
            dedup: dedup_done,
            graph: graph_loaded - dedup_done,
            plan: started.elapsed() - graph_loaded,
        };
        Some((group, keep, event_hashes, batch, started, timings))
    }

    /// Removes a group's messages from the pending set.
    fn forget_pending(&mut self, keep: &[Vec<bool>], group: &[Pending]) {
        for (job, flags) in group.iter().zip(keep) {
            for ((event, (h, _, _)), _) in job
                .events
                .iter()
                .zip(&job.prepared)
                .zip(flags)
                .filter(|(_, k)| **k)
            {
                if let Some(messages) = self.pending.get_mut(h) {
                    messages.retain(|(s, m)| !(*s == job.source.id && *m == event.message_id));
                    if messages.is_empty() {
                        self.pending.remove(h);
                    }
                }
            }
        }
    }

    /// Answers the callers of a written group. Returns whether it committed.
    fn finish(
        &mut self,
        flight: InFlight,
        written: Result<Result<Vec<i64>, StoreError>, tokio::task::JoinError>,
    ) -> bool {
        let InFlight {
            group,
            keep,
            event_hashes,
            merged,
            started,
            timings,
            write: _,
        } = flight;
        self.forget_pending(&keep, &group);
        let seqs = match written {
            Ok(Ok(seqs)) => seqs,
            failed => {
                let error = match failed {
                    Ok(Err(e)) => e,
                    Err(e) => StoreError::backend(e),
                    Ok(Ok(_)) => StoreError::Backend("unreachable".into()),
                };
                tracing::error!(error = %error, "ingest commit failed");
                // The cache holds this group's uncommitted decisions: start it afresh from the store.
                self.identities = IdentityGraph::default();
                fail_group(group, error.into());
                return false;
            }
        };
        for (h, seq) in event_hashes.into_iter().zip(seqs) {
            self.dedup.insert(h, seq);
        }
        if merged.is_empty() {
            self.committed.notify_one();
        } else {
            self.regrouped(&merged);
        }
        self.metrics
            .commit_seconds
            .with_label_values(&[self.store.backend_name()])
            .observe(started.elapsed().as_secs_f64());
        tracing::debug!(
            events = timings.events,
            dedup_ms = timings.dedup.as_secs_f64() * 1e3,
            graph_ms = timings.graph.as_secs_f64() * 1e3,
            plan_ms = timings.plan.as_secs_f64() * 1e3,
            total_ms = started.elapsed().as_secs_f64() * 1e3,
            "group committed"
        );
        for (job, flags) in group.into_iter().zip(keep) {
            let mut outcome = job.outcome;
            outcome.accepted = flags.iter().filter(|k| **k).count();
            let name = job.source.name.as_str();
            self.metrics
                .events_accepted
                .with_label_values(&[name])
                .inc_by(outcome.accepted as u64);
            self.metrics
                .events_duplicate
                .with_label_values(&[name])
                .inc_by(outcome.duplicates as u64);
            if outcome.suppressed > 0 {
                self.metrics
                    .events_rejected
                    .with_label_values(&[name, "erased_identifier"])
                    .inc_by(outcome.suppressed as u64);
            }
            let _ = job.reply.send(Ok(outcome));
        }
        true
    }
}

fn fail_group(group: Vec<Pending>, error: EngineError) {
    let message = error.to_string();
    for job in group {
        let _ = job.reply.send(Err(EngineError::Store(StoreError::Backend(
            message.clone(),
        ))));
    }
}
