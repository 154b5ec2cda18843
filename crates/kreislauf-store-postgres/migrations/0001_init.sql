-- Mirrors the SQLite schema: times are BIGINT milliseconds since the epoch, ids BIGINT.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE sources (
    id               BIGSERIAL PRIMARY KEY,
    name             TEXT NOT NULL UNIQUE,
    brand            TEXT NOT NULL,
    channel          TEXT NOT NULL,
    identity_mapping JSONB NOT NULL,
    allowed_origins  JSONB NOT NULL DEFAULT '[]',
    created_at       BIGINT NOT NULL
);

CREATE TABLE write_keys (
    key        TEXT PRIMARY KEY,
    source_id  BIGINT NOT NULL REFERENCES sources(id),
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE admin_tokens (
    id         BIGSERIAL PRIMARY KEY,
    name       TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

-- Ids are given out by the ingest writer (see meta.max_profile_id), not by a sequence.
CREATE TABLE profiles (
    id          BIGINT PRIMARY KEY,
    merged_into BIGINT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX profiles_merged_into ON profiles(merged_into) WHERE merged_into IS NOT NULL;

CREATE TABLE identities (
    kind       TEXT NOT NULL,
    value      TEXT NOT NULL,
    profile_id BIGINT NOT NULL,
    source_id  BIGINT NOT NULL,
    first_seen BIGINT NOT NULL,
    PRIMARY KEY (kind, value)
);
CREATE INDEX identities_profile ON identities(profile_id);

-- value is JSON text as serde_json writes it (like SQLite): cheaper to insert than JSONB, and JSONB
-- would refuse strings containing \u0000.
CREATE TABLE traits (
    profile_id BIGINT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    source_id  BIGINT NOT NULL,
    event_time BIGINT NOT NULL,
    PRIMARY KEY (profile_id, key)
);
CREATE INDEX traits_key_value ON traits(key, value);

-- Append-only. No index on message_id: deduplication runs on an in-memory hash index (see ARCHITECTURE.md).
-- body stays TEXT: it is only ever read back whole, and parsing JSONB would slow ingest down.
CREATE TABLE events (
    seq         BIGSERIAL PRIMARY KEY,
    source_id   BIGINT NOT NULL,
    profile_id  BIGINT NOT NULL,
    message_id  TEXT NOT NULL,
    dedup_hash  BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    name        TEXT,
    "timestamp" BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    body        TEXT NOT NULL
);
CREATE INDEX events_timeline ON events(profile_id, "timestamp", seq);

CREATE TABLE merges (
    id               BIGSERIAL PRIMARY KEY,
    winner           BIGINT NOT NULL,
    loser            BIGINT NOT NULL,
    identifier_kind  TEXT NOT NULL,
    identifier_value TEXT NOT NULL,
    reason           TEXT NOT NULL,
    message_id       TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    reverted_at      BIGINT,
    revert_reason    TEXT
);
CREATE INDEX merges_winner ON merges(winner);
CREATE INDEX merges_loser ON merges(loser);

CREATE TABLE identity_conflicts (
    id               BIGSERIAL PRIMARY KEY,
    identifier_kind  TEXT NOT NULL,
    identifier_value TEXT NOT NULL,
    kept_on          BIGINT,
    event_profile    BIGINT NOT NULL,
    reason           TEXT NOT NULL,
    created_at       BIGINT NOT NULL
);
CREATE INDEX identity_conflicts_kept_on ON identity_conflicts(kept_on);
CREATE INDEX identity_conflicts_event_profile ON identity_conflicts(event_profile);

CREATE TABLE erased_identifiers (
    hash      TEXT PRIMARY KEY,
    erased_at BIGINT NOT NULL
);

CREATE TABLE audit_log (
    id      BIGSERIAL PRIMARY KEY,
    at      BIGINT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail  JSONB NOT NULL
);
