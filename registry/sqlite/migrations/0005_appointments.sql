-- +goose Up
-- Issue 12: appointments. An appointment holds nothing about the visitor:
-- site, day, code, host, area, times, status and the visit registered for
-- it. It is deleted with the statutory period, like visits.
CREATE TABLE appointments (
    id         TEXT PRIMARY KEY,
    site       TEXT NOT NULL,
    day        TEXT NOT NULL,
    code       TEXT NOT NULL,
    host       TEXT NOT NULL,
    area       TEXT NOT NULL DEFAULT '',
    start_at   INTEGER NOT NULL,
    end_at     INTEGER NOT NULL,
    status     TEXT NOT NULL,
    source     TEXT NOT NULL,
    uid        TEXT NOT NULL DEFAULT '',
    visit_id   TEXT NOT NULL DEFAULT '',
    arrived_at INTEGER,
    created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX appointments_code ON appointments (site, day, code);
CREATE UNIQUE INDEX appointments_uid ON appointments (site, uid) WHERE uid <> '';
CREATE INDEX appointments_start ON appointments (start_at);

-- A trace request may name hosts instead of (or besides) areas: everyone
-- who had an appointment with one of them.
ALTER TABLE trace_requests ADD COLUMN hosts TEXT NOT NULL DEFAULT '[]';

-- Host accounts see their own appointments of the day.
ALTER TABLE users ADD COLUMN host TEXT NOT NULL DEFAULT '';
