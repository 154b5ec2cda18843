-- Duplicate pairs waiting for (or decided by) a person. Decisions are kept: a rejected pair is not proposed again.
CREATE TABLE review_pairs (
    id          INTEGER PRIMARY KEY,
    profile_a   INTEGER NOT NULL,
    profile_b   INTEGER NOT NULL,
    probability REAL NOT NULL,
    explanation TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'pending',
    created_at  INTEGER NOT NULL,
    decided_at  INTEGER,
    decided_by  TEXT,
    merge_id    INTEGER,
    UNIQUE (profile_a, profile_b)
);
CREATE INDEX review_pairs_status ON review_pairs(status, id);
CREATE INDEX review_pairs_b ON review_pairs(profile_b);
