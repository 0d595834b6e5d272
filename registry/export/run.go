package export

import (
	"context"
	"fmt"
	"iter"
	"strings"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
)

// Job is one export of an approved trace request.
type Job struct {
	Store     registry.TraceStore
	Audit     registry.AuditStore
	Actor     registry.Actor
	RequestID string
	// Sealing holds the keys, the recipients, the instance key
	// (crypto.KeyStore.InstanceKey), the maximum stay, the time and the
	// sites' display names of the bundle.
	Sealing
	// Scratch holds the bundle until it is sent (crypto.ScratchDir: a
	// private directory, every file sealed to a key only this process
	// holds, so that an export broken off leaves nothing anyone can read).
	Scratch *crypto.ScratchDir
	// Anchors, when not nil, keeps the instance's note of the audit log's
	// head (crypto.KeyStore.Anchors): the export checks the log against
	// it, and notes the head after the export.
	Anchors Anchors
	// Owner, when not nil, is the health-office token that asks: a
	// request that does not belong to it (registry.Token.OwnsTrace) is
	// refused as ENOTFOUND, like an unknown id, and the refusal is recorded
	// as an AuditExportDenied event. nil exports any request (the DPO's CLI).
	Owner *registry.Token
}

// Run runs the export (registry.TraceStore ExportTraceRequest): it writes
// the bundle into a scratch file, and only when the request's export mark
// and the audit entry committed does it return the file; read the bundle
// with its Open (Size bytes) and Remove it afterwards. On any error no
// file is left behind and nothing is recorded but, for a refusal
// (EFORBIDDEN, ECONFLICT, ENOTFOUND: also for a malformed id and, with
// j.Owner, for a request filed by another token), an AuditExportDenied
// event.
func (j *Job) Run(ctx context.Context) (f *crypto.Scratch, req *registry.TraceRequest, err error) {
	if _, err := j.find(ctx); err != nil {
		return nil, nil, j.denied(ctx, err)
	}
	defer func() {
		if err != nil && f != nil {
			f.Remove()
			f = nil
		}
	}()
	build := func(r *registry.TraceRequest, count int, visits iter.Seq2[*registry.Visit, error]) (string, error) {
		if f, err = j.Scratch.Create(); err != nil {
			return "", err
		}
		digest, err := Write(f, r, count, visits, &j.Sealing)
		if err == nil {
			err = f.Close()
		}
		return digest, err
	}
	var anchor *registry.LogAnchor
	if j.Anchors != nil {
		if anchor, err = j.Anchors.Anchor(); err != nil {
			return nil, nil, j.denied(ctx, registry.Errorf(registry.EFORBIDDEN, "%s Nothing was exported.", registry.ErrorMessage(err)))
		}
	}
	req, err = j.Store.ExportTraceRequest(ctx, j.Actor, j.RequestID, j.Now, j.MaxStay, anchor, build)
	if err != nil {
		return f, nil, j.denied(ctx, err)
	}
	if j.Anchors != nil {
		head, err := j.Audit.LastAudit(ctx, "")
		if err == nil {
			err = j.Anchors.Note(&registry.LogAnchor{Size: head.Seq, Hash: head.Hash})
		}
		if err != nil {
			// The export is recorded and will be sent; the next export
			// checks against the older anchor.
			return f, req, &AnchorError{err}
		}
	}
	return f, req, nil
}

// Anchors keeps the instance's anchor of the audit log
// (*crypto.Anchors).
type Anchors interface {
	Anchor() (*registry.LogAnchor, error)
	Note(*registry.LogAnchor) error
}

// AnchorError is Run's error when the export is recorded and its file
// ready, but the anchor could not be noted: send the file, and log the
// error.
type AnchorError struct{ Err error }

func (e *AnchorError) Error() string { return "note the audit anchor: " + e.Err.Error() }
func (e *AnchorError) Unwrap() error { return e.Err }

var errNotFound = registry.Errorf(registry.ENOTFOUND, "Trace request not found.")

// find returns the request to export: ENOTFOUND for a malformed id, an
// unknown one, or one not filed by j.Owner.
func (j *Job) find(ctx context.Context) (*registry.TraceRequest, error) {
	if !registry.ValidID(j.RequestID) {
		return nil, errNotFound
	}
	req, err := j.Store.FindTraceRequest(ctx, j.RequestID)
	if err != nil {
		return nil, err
	}
	if j.Owner != nil && !j.Owner.OwnsTrace(req) {
		return nil, errNotFound
	}
	return req, nil
}

// denied records a refused export in the audit log and returns err.
func (j *Job) denied(ctx context.Context, err error) error {
	code := registry.ErrorCode(err)
	switch code {
	case registry.EFORBIDDEN, registry.ECONFLICT, registry.ENOTFOUND:
	default:
		return err
	}
	subject := j.RequestID
	if !registry.ValidID(subject) {
		subject = "" // never copy arbitrary caller text into the log
	}
	ev, aerr := registry.NewAuditEvent(j.Now, j.Actor, subject, registry.ExportDenied{Reason: code, Detail: deniedDetail(err)})
	if aerr != nil {
		return aerr
	}
	if aerr := j.Audit.AppendAudit(ctx, ev); aerr != nil {
		// An unaudited denial is an internal fault: answer it as one (and
		// so have it logged), not as the plain refusal.
		return fmt.Errorf("record denied export (%s): %w", registry.ErrorCode(err), aerr)
	}
	return err
}

// deniedDetail says, for the audit log, why an export was refused when
// the data did not match the log (a message that names request, visit and
// key ids, never contact data); "" for the ordinary refusals.
func deniedDetail(err error) string {
	msg := registry.ErrorMessage(err)
	for _, mark := range []string{"audit log", "changed in the database", "written into the database"} {
		if strings.Contains(msg, mark) {
			return msg
		}
	}
	return ""
}
