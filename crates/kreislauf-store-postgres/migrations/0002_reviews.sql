-- Duplicate pairs waiting for (or decided by) a person. Decisions are kept: a rejected pair is not proposed again.
CREATE TABLE review_pairs (
    id          BIGSERIAL PRIMARY KEY,
    profile_a   BIGINT NOT NULL,
    profile_b   BIGINT NOT NULL,
    probability DOUBLE PRECISION NOT NULL,
    explanation TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'pending',
    created_at  BIGINT NOT NULL,
    decided_at  BIGINT,
    decided_by  TEXT,
    merge_id    BIGINT,
    UNIQUE (profile_a, profile_b)
);
CREATE INDEX review_pairs_status ON review_pairs(status, id);
CREATE INDEX review_pairs_b ON review_pairs(profile_b);
