-- +goose Up
-- Issue 20: tokens may expire.
ALTER TABLE tokens ADD COLUMN expires_at INTEGER;
