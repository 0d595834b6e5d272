package main

import (
	"bufio"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/cityhall/registry/registry"
)

// localLayout is how the CLI shows a time to people: German time with its
// zone's abbreviation, "2026-11-24 09:30 CET", so that a window or an
// approval's expiry reads as the office and the DPO mean it. JSON output
// keeps RFC 3339 in UTC (rfc3339) for machines.
const localLayout = "2006-01-02 15:04 MST"

// local returns t in German time (localLayout).
func local(t time.Time) string { return t.In(registry.LocalZone).Format(localLayout) }

// localp is local for an optional time, "-" for none.
func localp(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return local(*t)
}

// rfc3339 returns t in RFC 3339, UTC: for JSON and files.
func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// confirm asks a yes-or-no question on the controlling terminal
// (/dev/tty, so that it works with redirected input and output) and
// reports whether the answer is "yes" (or "ja"). Without a terminal it
// returns an error: nothing destructive happens unasked.
func confirm(question string) (bool, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return false, fmt.Errorf("no terminal to ask on: %w", err)
	}
	defer tty.Close()
	fmt.Fprint(tty, question)
	line, err := bufio.NewReader(tty).ReadString('\n')
	if err != nil {
		return false, fmt.Errorf("read the answer: %w", err)
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "yes", "ja", "y", "j":
		return true, nil
	}
	return false, nil
}

// digestForms shows a hex SHA-256 digest in both forms a person may have
// to compare it with: hex (export_digest of the request, registry export)
// and base64 (the Repr-Digest header of the download).
func digestForms(hexDigest string) string {
	sum, err := hex.DecodeString(hexDigest)
	if err != nil || len(sum) == 0 {
		return hexDigest
	}
	return fmt.Sprintf("%s (hex, as export_digest) = %s (base64, as Repr-Digest)", hexDigest, base64.StdEncoding.EncodeToString(sum))
}
