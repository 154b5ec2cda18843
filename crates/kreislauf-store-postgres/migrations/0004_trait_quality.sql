-- Normalised trait values keep what was received and their data-quality status beside them.
ALTER TABLE traits ADD COLUMN raw TEXT;
ALTER TABLE traits ADD COLUMN status TEXT;
