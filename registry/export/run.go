package export

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
)

// Job is one export of an approved trace request.
type Job struct {
	Store      registry.Store
	Actor      registry.Actor
	RequestID  string
	Keys       Keys
	Recipients *crypto.Recipients
	MaxStay    time.Duration
	Now        time.Time
	Dir        string // where the bundle's temporary file is created
	// Owner, when not "", is the id of the token that must have filed the
	// request (TraceRequest.OwnerToken). A request filed by anyone else is
	// refused as ENOTFOUND, like an unknown id, and the refusal is recorded
	// as an AuditExportDenied event. "" exports any request (the DPO's CLI).
	Owner string
}

// ToTempFile runs the export in the store's transaction (registry.TraceStore
// ExportTraceRequest): it writes the bundle to a new temporary file in j.Dir,
// and only when the request, its export mark and the audit entry committed
// does it return the file, positioned at its start. The caller sends or
// renames it and then removes it. On any error no file is left behind and
// nothing is recorded but, for a refusal (EFORBIDDEN, ECONFLICT,
// ENOTFOUND: also for a malformed id and, with j.Owner, for a request
// filed by another token), an AuditExportDenied event.
func (j *Job) ToTempFile(ctx context.Context) (f *os.File, req *registry.TraceRequest, err error) {
	req, err = j.find(ctx)
	if err != nil {
		return nil, nil, j.denied(ctx, err)
	}
	defer func() {
		if err != nil && f != nil {
			f.Close()
			os.Remove(f.Name())
			f = nil
		}
	}()
	build := func(visits []*registry.Visit) (string, error) {
		if f, err = os.CreateTemp(j.Dir, ".export-*.age"); err != nil {
			return "", fmt.Errorf("create export file: %w", err)
		}
		_, digest, err := Write(f, req, visits, j.Keys, j.Recipients, j.MaxStay, j.Now)
		if err == nil {
			err = f.Sync()
		}
		return digest, err
	}
	req, err = j.Store.ExportTraceRequest(ctx, j.Actor, j.RequestID, j.Now, j.MaxStay, build)
	if err != nil {
		return f, nil, j.denied(ctx, err)
	}
	if _, err = f.Seek(0, io.SeekStart); err != nil {
		return f, nil, fmt.Errorf("rewind export file: %w", err)
	}
	return f, req, nil
}

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
	if j.Owner != "" && req.OwnerToken != j.Owner {
		return nil, errNotFound
	}
	return req, nil
}

// denied records a refused export in the audit log and returns err.
func (j *Job) denied(ctx context.Context, err error) error {
	switch registry.ErrorCode(err) {
	case registry.EFORBIDDEN, registry.ECONFLICT, registry.ENOTFOUND:
	default:
		return err
	}
	subject := j.RequestID
	if !registry.ValidID(subject) {
		subject = "" // never copy arbitrary caller text into the log
	}
	ev := &registry.AuditEvent{Time: j.Now, Actor: j.Actor, Action: registry.AuditExportDenied,
		Subject: subject, Details: fmt.Sprintf(`{"reason":%q}`, registry.ErrorCode(err))}
	if aerr := j.Store.AppendAudit(ctx, ev); aerr != nil {
		// An unaudited denial is an internal fault: answer it as one (and
		// so have it logged), not as the plain refusal.
		return fmt.Errorf("record denied export (%s): %w", registry.ErrorCode(err), aerr)
	}
	return err
}
