// Package export builds and opens the export bundle of a trace request and
// writes its decrypted records for the health office (CSV, JSON, SORMAS).
//
// The bundle is one age file sealed to the health-office recipients. Inside
// it is JSON Lines: a Header on line 1, then one record per visit in scope,
// each carrying the visit's plaintext metadata and its inner ciphertext
// (base64, still sealed to the health office). Write runs on the server and
// removes only the outer, per-day layer; it never sees contact data. Read
// runs in `registry decrypt` on the health office's machine: it opens the
// bundle and every inner layer and checks that each sealed contact belongs
// to its record.
//
// The writers turn a Bundle into files that are safe to open in a
// spreadsheet: no cell can start a formula (see WriteCSV).
package export
