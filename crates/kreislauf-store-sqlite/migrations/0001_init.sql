CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE sources (
    id               INTEGER PRIMARY KEY,
    name             TEXT NOT NULL UNIQUE,
    brand            TEXT NOT NULL,
    channel          TEXT NOT NULL,
    identity_mapping TEXT NOT NULL,
    allowed_origins  TEXT NOT NULL DEFAULT '[]',
    created_at       INTEGER NOT NULL
);

CREATE TABLE write_keys (
    key        TEXT PRIMARY KEY,
    source_id  INTEGER NOT NULL REFERENCES sources(id),
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
) WITHOUT ROWID;

CREATE TABLE admin_tokens (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

CREATE TABLE profiles (
    id          INTEGER PRIMARY KEY,
    merged_into INTEGER,
    created_at  INTEGER NOT NULL
);
CREATE INDEX profiles_merged_into ON profiles(merged_into) WHERE merged_into IS NOT NULL;

CREATE TABLE identities (
    kind       TEXT NOT NULL,
    value      TEXT NOT NULL,
    profile_id INTEGER NOT NULL,
    source_id  INTEGER NOT NULL,
    first_seen INTEGER NOT NULL,
    PRIMARY KEY (kind, value)
) WITHOUT ROWID;
CREATE INDEX identities_profile ON identities(profile_id);

CREATE TABLE traits (
    profile_id INTEGER NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    source_id  INTEGER NOT NULL,
    event_time INTEGER NOT NULL,
    PRIMARY KEY (profile_id, key)
) WITHOUT ROWID;
CREATE INDEX traits_key_value ON traits(key, value);

-- Append-only. No index on message_id: deduplication runs on an in-memory hash index (see ARCHITECTURE.md).
CREATE TABLE events (
    seq         INTEGER PRIMARY KEY,
    source_id   INTEGER NOT NULL,
    profile_id  INTEGER NOT NULL,
    message_id  TEXT NOT NULL,
    dedup_hash  INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    name        TEXT,
    timestamp   INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    body        TEXT NOT NULL
);
CREATE INDEX events_timeline ON events(profile_id, timestamp, seq);

CREATE TABLE merges (
    id               INTEGER PRIMARY KEY,
    winner           INTEGER NOT NULL,
    loser            INTEGER NOT NULL,
    identifier_kind  TEXT NOT NULL,
    identifier_value TEXT NOT NULL,
    reason           TEXT NOT NULL,
    message_id       TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    reverted_at      INTEGER,
    revert_reason    TEXT
);
CREATE INDEX merges_winner ON merges(winner);
CREATE INDEX merges_loser ON merges(loser);

CREATE TABLE identity_conflicts (
    id               INTEGER PRIMARY KEY,
    identifier_kind  TEXT NOT NULL,
    identifier_value TEXT NOT NULL,
    kept_on          INTEGER,
    event_profile    INTEGER NOT NULL,
    reason           TEXT NOT NULL,
    created_at       INTEGER NOT NULL
);
CREATE INDEX identity_conflicts_kept_on ON identity_conflicts(kept_on);
CREATE INDEX identity_conflicts_event_profile ON identity_conflicts(event_profile);

CREATE TABLE erased_identifiers (
    hash      TEXT PRIMARY KEY,
    erased_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY,
    at      INTEGER NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail  TEXT NOT NULL
);
