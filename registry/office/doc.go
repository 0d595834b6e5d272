// Package office is the health office's workspace (registry office): a
// directory of the registries a district's health office works with, its
// cases, each filed as trace requests to every registry it concerns, the
// requests followed until their bundles are downloaded, and one result per
// case (workbook, PDF, CSV, SORMAS, IRIS) merged from every registry's
// bundle (export.Merge).
//
// It runs at the health office, on the clerk's machine or an internal
// server. Its identity never leaves it: the passphrase (or a hardware
// token's PIN) is asked when a result is built and never stored. What it
// stores holds no visitor data: case references, windows and places,
// the registries' tokens (sealed with the workspace key) and trust files,
// and the bundles as the registries sent them (sealed to the office's
// recipients). Opened, the data exists only in memory while a result is
// written to the clerk. Cases are deleted after the retention period
// (IRIS connect's six months by default), and every step is in the
// workspace's own hash-linked log.
package office
