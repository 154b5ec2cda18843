-- Summaries of reports (e.g. the data-quality report), so the next report can show the trend.
CREATE TABLE report_snapshots (
    kind TEXT NOT NULL,
    at   INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (kind, at)
) WITHOUT ROWID;
