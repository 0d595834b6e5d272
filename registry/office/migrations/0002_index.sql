-- +goose Up
-- Issue 27: a request may name the index case's codes.
ALTER TABLE requests ADD COLUMN index_codes TEXT NOT NULL DEFAULT '[]';
