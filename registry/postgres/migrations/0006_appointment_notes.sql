-- +goose Up
-- Issue 12: an appointment may carry a note for the health office, sealed
-- like a contact (two age layers: the health office's recipients inside,
-- the epoch key of the appointment's day outside), so that the server can
-- never read it and purging the day's key makes old backups unreadable.
-- note_epoch is the day whose key sealed the outer layer.
ALTER TABLE appointments ADD COLUMN note_epoch TEXT NOT NULL DEFAULT '';
ALTER TABLE appointments ADD COLUMN note_sealed BYTEA;
ALTER TABLE appointments ALTER COLUMN note_sealed SET STATISTICS 0, ALTER COLUMN id SET STATISTICS 0,
    ALTER COLUMN visit_id SET STATISTICS 0;
-- The export reads the note of each visit by its link.
CREATE INDEX appointments_visit ON appointments (visit_id) WHERE visit_id <> '';

-- A trace request may name appointment codes (T-4711) besides hosts.
ALTER TABLE trace_requests ADD COLUMN appointments TEXT NOT NULL DEFAULT '[]';

-- Arrival webhooks are an outbox: the notifier sends the arrivals whose
-- notified_at is NULL and then sets it, so that a restart loses none.
-- Arrivals before this migration count as told.
ALTER TABLE appointments ADD COLUMN notified_at BIGINT;
UPDATE appointments SET notified_at = arrived_at WHERE arrived_at IS NOT NULL;
CREATE INDEX appointments_unnotified ON appointments (arrived_at) WHERE status = 'arrived' AND notified_at IS NULL;
