package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/cityhall/registry/registry"
)

type epochRow struct {
	Day         string        `db:"day"`
	Recipient   string        `db:"recipient"`
	CreatedAt   int64         `db:"created_at"`
	DestroyedAt sql.NullInt64 `db:"destroyed_at"`
}

func (r *epochRow) key() *registry.EpochKey {
	return &registry.EpochKey{
		Day: registry.Day(r.Day), Recipient: r.Recipient,
		CreatedAt: fromMicros(r.CreatedAt), DestroyedAt: fromNullMicros(r.DestroyedAt),
	}
}

const epochColumns = `day, recipient, created_at, destroyed_at`

// AddEpochKeys stores new public keys with one AuditEpochKeysCreated event
// listing the days. ECONFLICT when a day already has a key (nothing is
// stored then), EINVALID for a malformed day or an empty recipient.
func (s *Store) AddEpochKeys(ctx context.Context, actor registry.Actor, keys []*registry.EpochKey) error {
	if len(keys) == 0 {
		return nil
	}
	now := s.now()
	days := make([]registry.Day, len(keys))
	for i, k := range keys {
		if _, err := registry.ParseDay(string(k.Day)); err != nil {
			return err
		}
		if k.Recipient == "" {
			return registry.Errorf(registry.EINVALID, "Epoch key of %s has no recipient.", k.Day)
		}
		if k.CreatedAt.IsZero() {
			k.CreatedAt = now
		}
		k.CreatedAt = utcMicro(k.CreatedAt)
		days[i] = k.Day
	}
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		for _, k := range keys {
			if err := s.insertEpochKey(ctx, tx, k); err != nil {
				return err
			}
		}
		if err := s.dialect.AddDays(ctx, tx, days); err != nil {
			return s.errorf(err, "prepare the days' storage")
		}
		return s.audit(ctx, tx, now, actor, "", registry.EpochKeysCreated{Days: days})
	})
	if err == nil {
		s.markDays(days)
	}
	return err
}

func (s *Store) insertEpochKey(ctx context.Context, tx *sqlx.Tx, k *registry.EpochKey) error {
	_, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO epoch_keys (`+epochColumns+`) VALUES (?, ?, ?, ?)`),
		string(k.Day), k.Recipient, micros(k.CreatedAt), nullMicros(k.DestroyedAt))
	if s.dialect.ErrorCode(err) == registry.ECONFLICT {
		return registry.Errorf(registry.ECONFLICT, "The day %s already has an epoch key.", k.Day)
	}
	return s.errorf(err, "insert epoch key")
}

// EpochKey returns the key of a day, or ENOTFOUND.
func (s *Store) EpochKey(ctx context.Context, day registry.Day) (*registry.EpochKey, error) {
	var row epochRow
	err := s.read.GetContext(ctx, &row, s.rebind(`SELECT `+epochColumns+` FROM epoch_keys WHERE day = ?`), string(day))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, registry.Errorf(registry.ENOTFOUND, "No epoch key for %s.", day)
	} else if err != nil {
		return nil, s.errorf(err, "find epoch key")
	}
	return row.key(), nil
}

// EpochKeys lists every key, destroyed ones included, by day.
func (s *Store) EpochKeys(ctx context.Context) ([]*registry.EpochKey, error) {
	var rows []epochRow
	if err := s.read.SelectContext(ctx, &rows, `SELECT `+epochColumns+` FROM epoch_keys ORDER BY day`); err != nil {
		return nil, s.errorf(err, "list epoch keys")
	}
	keys := make([]*registry.EpochKey, len(rows))
	for i := range rows {
		keys[i] = rows[i].key()
	}
	return keys, nil
}

// PinRecipients pins the recipients' fingerprint in the log; see
// registry.EpochStore.
func (s *Store) PinRecipients(ctx context.Context, actor registry.Actor, fingerprint string, sigs []registry.RecipientsSignature) (changed bool, err error) {
	if fingerprint == "" {
		return false, registry.Errorf(registry.EINVALID, "The recipients fingerprint is empty.")
	}
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		// Lock first so that concurrent pins read and record the true old value.
		if err := s.dialect.LockAudit(ctx, tx); err != nil {
			return s.errorf(err, "lock audit log")
		}
		old, _, err := s.recipients(ctx, tx)
		if err != nil || old == fingerprint {
			return err
		}
		p := registry.RecipientsChanged{Old: old, New: fingerprint}
		if old != "" {
			set, err := s.approverSet(ctx, tx)
			if err != nil {
				return err
			}
			if err := registry.CheckRecipientsChange(set, fingerprint, sigs); err != nil {
				return registry.Errorf(registry.EFORBIDDEN, "The health-office recipients differ from the pinned ones (%s, now %s) and the change is not signed as it must be: %s",
					old, fingerprint, registry.ErrorMessage(err))
			}
			p.Signatures, p.SignedBy = sigs, sigs[0].Key
			by, _ := set.Key(sigs[0].Key)
			actor = by.Actor()
		}
		changed = true
		return s.audit(ctx, tx, time.Time{}, actor, "", p)
	})
	return changed && err == nil, err
}

// Recipients returns the pin the log holds; see registry.EpochStore.
func (s *Store) Recipients(ctx context.Context) (string, []string, error) {
	return s.recipients(ctx, s.read)
}

func (s *Store) recipients(ctx context.Context, q sqlx.QueryerContext) (string, []string, error) {
	var rows []auditRow
	err := sqlx.SelectContext(ctx, q, &rows, s.rebind(auditSelect+` WHERE e.action IN (?, ?) ORDER BY e.seq`),
		registry.AuditRecipientsChanged, registry.AuditApproverChanged)
	if err != nil {
		return "", nil, s.errorf(err, "read the recipients' pin")
	}
	events := make([]*registry.AuditEvent, len(rows))
	for i := range rows {
		events[i] = rows[i].event()
	}
	names, err := s.approverRows(ctx, q)
	if err != nil {
		return "", nil, err
	}
	pinned, problems := registry.PinnedRecipients(events, names)
	return pinned, problems, nil
}
