-- +goose Up
-- Issue 27: a trace request may be scoped to an index case: its codes,
-- the visits they name, the tolerance, the minimum contact and a reason
-- to widen to the whole site, as JSON ('' for a request by window).
ALTER TABLE trace_requests ADD COLUMN index_scope TEXT NOT NULL DEFAULT '';
