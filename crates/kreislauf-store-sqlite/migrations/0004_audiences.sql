-- Segments and computed traits: versioned definitions, per-profile state, memberships and their sizes.
CREATE TABLE audience_definitions (
    kind       TEXT NOT NULL,
    name       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    hash       TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    PRIMARY KEY (kind, name, version)
) WITHOUT ROWID;

CREATE TABLE audience_states (
    profile_id INTEGER PRIMARY KEY,
    covers     TEXT NOT NULL,
    states     TEXT NOT NULL,
    segments   TEXT NOT NULL,
    wake_at    INTEGER
);
CREATE INDEX audience_states_wake ON audience_states(wake_at) WHERE wake_at IS NOT NULL;

CREATE TABLE segment_members (
    segment    TEXT NOT NULL,
    profile_id INTEGER NOT NULL,
    entered_at INTEGER NOT NULL,
    PRIMARY KEY (segment, profile_id)
) WITHOUT ROWID;
CREATE INDEX segment_members_profile ON segment_members(profile_id);

CREATE TABLE segment_sizes (
    segment TEXT NOT NULL,
    at      INTEGER NOT NULL,
    members INTEGER NOT NULL,
    PRIMARY KEY (segment, at)
) WITHOUT ROWID;
