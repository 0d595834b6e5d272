// Package audit proves the integrity of the hash-linked audit log.
//
// Every audit event carries the hash of its predecessor (see
// registry.AuditEvent), so that changing, removing or reordering an entry
// breaks the chain. Verify walks the whole log and names the first entry
// that does not fit. A rewrite of the whole chain (every hash recomputed)
// or a cut at its end is only visible against a checkpoint kept off the
// server: a signed note (golang.org/x/mod/sumdb/note, ed25519) holding the
// log's size and the hash of its last entry at the time it was taken.
// Verify with a checkpoint proves that the log still extends it.
package audit
