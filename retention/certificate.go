package retention

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/cityhall/registry/registry"
)

// PurposeCertificate is the signing purpose of deletion certificates.
const PurposeCertificate = "registry-deletion-certificate/1"

// Certificate is the deletion certificate of a month, which the DPO files
// with the records of processing: per day, the visits registered (from
// the audit log), those still stored (none), when the purge deleted them,
// when the day key was destroyed, and the exports made from the day (case
// references only); signed with the instance key.
type Certificate struct {
	Version   int       `json:"version"` // 1
	Month     string    `json:"month"`   // "2026-11"
	Instance  string    `json:"instance"`
	IssuedAt  time.Time `json:"issued_at"`
	Retention int       `json:"retention_days"`
	Days      []CertDay `json:"days"`
	// Registered and Deleted sum the days.
	Registered int `json:"visits_registered"`
	Deleted    int `json:"visits_deleted"`
	// AuditSeq and AuditHash are the audit log's head when the
	// certificate was issued: the log covers everything it states.
	AuditSeq  int64  `json:"audit_seq"`
	AuditHash string `json:"audit_hash"`
	Statement string `json:"statement"`
}

// CertDay is one day (UTC, as the day keys) of a certificate.
type CertDay struct {
	Day        registry.Day `json:"day"`
	Registered int          `json:"visits_registered"`
	Deleted    int          `json:"visits_deleted"`
	Remaining  int64        `json:"visits_remaining"`
	// DeletedBy is the purge run whose cutoff first passed the day's end:
	// no visit of the day was stored after it.
	DeletedBy *time.Time `json:"deleted_by,omitempty"`
	// KeyDestroyed is when the day key was destroyed; NoKey is set for a
	// day without a key (before the installation).
	KeyDestroyed *time.Time `json:"key_destroyed_at,omitempty"`
	NoKey        bool       `json:"no_key,omitempty"`
	Exports      []string   `json:"exports,omitempty"` // case references
}

// CertificateStatement is what a certificate states.
const CertificateStatement = "Von keinem Tag dieses Monats sind Kontaktdaten von Besuchenden mehr lesbar: Jeder Besuch ist gelöscht, und der Tagesschlüssel jedes Tages ist vernichtet, sodass auch Kopien und Sicherungen nicht mehr entschlüsselt werden können."

// SignedCertificate is the certificate's file: the certificate's exact
// bytes and the instance key's signature over them.
type SignedCertificate struct {
	Certificate json.RawMessage `json:"certificate"`
	Key         string          `json:"key"`
	Signature   string          `json:"signature"`
}

// CertificateStore is what BuildCertificate reads.
type CertificateStore interface {
	registry.AuditFinder
	LastAudit(ctx context.Context, action string) (*registry.AuditEvent, error)
	EpochKeys(ctx context.Context) ([]*registry.EpochKey, error)
	CountVisits(ctx context.Context, from, to time.Time) (int64, error)
	FindTraceRequest(ctx context.Context, id string) (*registry.TraceRequest, error)
}

// auditPage is how many events one read of the log takes.
const auditPage = 2000

// BuildCertificate builds the certificate of month ("2026-11") at now
// under the retention period. It refuses (ECONFLICT) a month with a day
// still within retention, and one whose data the purge has not yet
// deleted (a visit stored, a day key not destroyed): the certificate
// states nothing that is not so.
func BuildCertificate(ctx context.Context, s CertificateStore, month string, now time.Time, retention time.Duration) (*Certificate, error) {
	start, err := time.Parse("2006-01", month)
	if err != nil {
		return nil, registry.Errorf(registry.EINVALID, "The month %q is not YYYY-MM.", month)
	}
	end := start.AddDate(0, 1, 0)
	if until := end.Add(retention); until.After(now) {
		return nil, registry.Errorf(registry.ECONFLICT, "The month %s is still within the retention period: its last day may be kept until %s. Issue the certificate after that.",
			month, until.In(registry.LocalZone).Format("02.01.2006 15:04"))
	}
	c := &Certificate{Version: 1, Month: month, IssuedAt: now.UTC().Truncate(time.Second), Retention: int(retention / (24 * time.Hour)), Statement: CertificateStatement}
	byDay := map[registry.Day]*CertDay{}
	for d := start; d.Before(end); d = d.AddDate(0, 0, 1) {
		c.Days = append(c.Days, CertDay{Day: registry.DayOf(d)})
	}
	for i := range c.Days {
		byDay[c.Days[i].Day] = &c.Days[i]
	}
	// Registered: the leaves of every registration batch, by check-in day
	// (a paper form typed in later is recorded after its day).
	err = eachAudit(ctx, s, registry.AuditFilter{Actions: []string{registry.AuditVisitsRegistered}, From: start, To: end.Add(retention)}, func(ev *registry.AuditEvent) error {
		var p registry.VisitsRegistered
		if err := json.Unmarshal([]byte(ev.Details), &p); err != nil {
			return fmt.Errorf("audit entry %d: %w", ev.Seq, err)
		}
		for day, leaves := range p.Leaves {
			if d := byDay[day]; d != nil {
				b, err := base64.StdEncoding.DecodeString(leaves)
				if err != nil {
					return fmt.Errorf("audit entry %d: %w", ev.Seq, err)
				}
				d.Registered += len(b) / 16
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Deleted by: the first purge whose cutoff passed the day's end.
	err = eachAudit(ctx, s, registry.AuditFilter{Actions: []string{registry.AuditPurge}, From: start}, func(ev *registry.AuditEvent) error {
		var rep registry.PurgeReport
		if err := json.Unmarshal([]byte(ev.Details), &rep); err != nil {
			return fmt.Errorf("audit entry %d: %w", ev.Seq, err)
		}
		for i := range c.Days {
			d := &c.Days[i]
			if d.DeletedBy == nil && !rep.Cutoff.Before(d.Day.End()) {
				t := ev.Time.UTC()
				d.DeletedBy = &t
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Exports: the requests exported whose window touches a day.
	err = eachAudit(ctx, s, registry.AuditFilter{Actions: []string{registry.AuditRequestExported}, From: start}, func(ev *registry.AuditEvent) error {
		r, err := s.FindTraceRequest(ctx, ev.Subject)
		if err != nil {
			return fmt.Errorf("the request %s of audit entry %d: %w", ev.Subject, ev.Seq, err)
		}
		for i := range c.Days {
			d := &c.Days[i]
			if r.From.Before(d.Day.End()) && !r.To.Before(d.Day.Start()) && !slices.Contains(d.Exports, r.CaseRef) {
				d.Exports = append(d.Exports, r.CaseRef)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	keys, err := s.EpochKeys(ctx)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if d := byDay[k.Day]; d != nil {
			if k.DestroyedAt == nil {
				return nil, registry.Errorf(registry.ECONFLICT, "The day key of %s is not destroyed yet: let the purge run (registry purge) before the certificate.", k.Day)
			}
			t := k.DestroyedAt.UTC()
			d.KeyDestroyed = &t
		}
	}
	for i := range c.Days {
		d := &c.Days[i]
		if d.Remaining, err = s.CountVisits(ctx, d.Day.Start(), d.Day.End()); err != nil {
			return nil, err
		}
		if d.Remaining > 0 {
			return nil, registry.Errorf(registry.ECONFLICT, "%d visits of %s are still stored: let the purge run (registry purge) before the certificate.", d.Remaining, d.Day)
		}
		d.NoKey = d.KeyDestroyed == nil
		if d.NoKey && d.Registered > 0 {
			return nil, registry.Errorf(registry.ECONFLICT, "The day %s had visits but no day key is recorded; the certificate cannot state that its data is unreadable.", d.Day)
		}
		d.Deleted = d.Registered
		c.Registered += d.Registered
		c.Deleted += d.Deleted
	}
	head, err := s.LastAudit(ctx, "")
	if err != nil {
		return nil, err
	}
	c.AuditSeq, c.AuditHash = head.Seq, hex.EncodeToString(head.Hash)
	return c, nil
}

// eachAudit calls fn for every event f selects, in order, a page at a
// time.
func eachAudit(ctx context.Context, s registry.AuditFinder, f registry.AuditFilter, fn func(*registry.AuditEvent) error) error {
	f.Limit = auditPage
	for {
		evs, err := s.FindAudit(ctx, f)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if err := fn(ev); err != nil {
				return err
			}
		}
		if len(evs) < f.Limit {
			return nil
		}
		f.AfterSeq = evs[len(evs)-1].Seq
	}
}

// Signer signs with the instance key.
type Signer interface {
	ID() string
	Sign(purpose string, msg []byte) []byte
}

// Sign returns the certificate's file, signed by key.
func (c *Certificate) Sign(key Signer) ([]byte, error) {
	c.Instance = key.ID()
	body, err := json.Marshal(c) // signed compact; the file is indented
	if err != nil {
		return nil, err
	}
	out, err := json.MarshalIndent(SignedCertificate{Certificate: body, Key: key.ID(),
		Signature: base64.StdEncoding.EncodeToString(key.Sign(PurposeCertificate, body))}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// Digest is the SHA-256 of a certificate file, as the PDF prints it.
func Digest(file []byte) string {
	sum := sha256.Sum256(file)
	return hex.EncodeToString(sum[:])
}

// VerifyCertificate checks a certificate file against the instance's
// public key and returns the certificate. EINVALID for anything that is
// not such a file, EFORBIDDEN for a signature that does not verify (a
// changed certificate).
func VerifyCertificate(file []byte, instance ed25519.PublicKey) (*Certificate, error) {
	var sc SignedCertificate
	if err := json.Unmarshal(file, &sc); err != nil || len(sc.Certificate) == 0 {
		return nil, registry.Errorf(registry.EINVALID, "This is not a deletion certificate of the registry.")
	}
	var body bytes.Buffer
	if err := json.Compact(&body, sc.Certificate); err != nil {
		return nil, registry.Errorf(registry.EINVALID, "This is not a deletion certificate of the registry.")
	}
	sig, err := base64.StdEncoding.DecodeString(sc.Signature)
	if err != nil || !registry.VerifySignature(instance, PurposeCertificate, body.Bytes(), sig) {
		return nil, registry.Errorf(registry.EFORBIDDEN, "The certificate's signature does not verify: it was changed after it was issued, or another registry issued it.")
	}
	var c Certificate
	if err := json.Unmarshal(sc.Certificate, &c); err != nil || c.Version != 1 {
		return nil, registry.Errorf(registry.EINVALID, "This is not a deletion certificate of the registry.")
	}
	if c.Instance != registry.KeyID(instance) {
		return nil, registry.Errorf(registry.EFORBIDDEN, "The certificate names another instance key.")
	}
	return &c, nil
}
