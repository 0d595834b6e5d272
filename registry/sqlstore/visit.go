package sqlstore

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"iter"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/cityhall/registry/registry"
)

type visitRow struct {
	ID           string        `db:"id"`
	Site         string        `db:"site"`
	Area         string        `db:"area"`
	CheckIn      int64         `db:"check_in"`
	CheckOut     sql.NullInt64 `db:"check_out"`
	CheckoutAuto bool          `db:"checkout_auto"`
	Reason       string        `db:"checkout_reason"`
	Party        string        `db:"party"`
	Appointment  string        `db:"appointment"`
	Epoch        string        `db:"epoch"`
	Sealed       []byte        `db:"sealed"`
	CreatedAt    int64         `db:"created_at"`
}

func (r *visitRow) visit() *registry.Visit {
	v := &registry.Visit{
		ID: r.ID, Site: r.Site, Area: r.Area, CheckIn: fromMicros(r.CheckIn),
		CheckOut: fromNullMicros(r.CheckOut), CheckoutAuto: r.CheckoutAuto,
		CheckoutReason: registry.CheckoutReason(r.Reason), Party: r.Party, Appointment: r.Appointment,
		Epoch: registry.Day(r.Epoch), Sealed: r.Sealed, CreatedAt: fromMicros(r.CreatedAt),
	}
	if v.Party == "" { // stored before parties were
		v.Party = v.ID
	}
	return v
}

const visitColumns = `id, site, area, check_in, check_out, checkout_auto, checkout_reason, party, appointment, epoch, sealed, created_at`

// visitFields is the number of visitColumns.
const visitFields = 12

// chunkSizes are the row counts of the prepared multi-row inserts; a batch
// is inserted in chunks of these sizes, largest first, so that a batch of
// any size costs few statements, each parsed once per process.
var chunkSizes = []int{64, 32, 16, 8, 4, 2, 1}

// insertVisits returns the multi-row insert of n visits.
func insertVisits(n int) string {
	return `INSERT INTO visits (` + visitColumns + `) VALUES ` + rowsOf(n, visitFields)
}

// insertKeys returns the multi-row insert of n idempotency records; it
// stores those whose hash is not stored yet and RETURNING names them.
func insertKeys(n int) string {
	return `INSERT INTO idempotency (hash, check_in, request_mac, visits) VALUES ` + rowsOf(n, 4) +
		` ON CONFLICT (hash) DO NOTHING RETURNING hash`
}

// rowsOf returns n rows of k placeholders: "(?, ?), (?, ?)".
func rowsOf(n, k int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", k), ", ") + ")"
	return strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")
}

func chunkQueries() []string {
	var qs []string
	for _, n := range chunkSizes {
		qs = append(qs, insertVisits(n), insertKeys(n))
	}
	return qs
}

// chunks calls fn with consecutive slices of [0, n) in chunkSizes.
func chunks(n int, fn func(from, to int) error) error {
	for from := 0; from < n; {
		size := 1
		for _, c := range chunkSizes {
			if n-from >= c {
				size = c
				break
			}
		}
		if err := fn(from, from+size); err != nil {
			return err
		}
		from += size
	}
	return nil
}

// CreateParties stores the parties in one transaction with one
// AuditVisitsRegistered event per actor; see registry.VisitStore. A party
// whose idempotency hash is stored is a replay: its Replay is filled from
// the stored record and none of its visits is inserted.
func (s *Store) CreateParties(ctx context.Context, parties []*registry.Party) error {
	if len(parties) == 0 {
		return nil
	}
	now := s.now()
	for _, p := range parties {
		if err := prepareParty(p, now); err != nil {
			return err
		}
	}
	fresh := s.unpreparedDays(parties)
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if len(fresh) > 0 {
			if err := s.dialect.AddDays(ctx, tx, fresh); err != nil {
				return s.errorf(err, "prepare the days' storage")
			}
		}
		stored, err := s.insertParties(ctx, tx, parties)
		if err != nil {
			return err
		}
		if err := s.markArrived(ctx, tx, stored, now); err != nil {
			return err
		}
		batches := newBatches()
		for _, p := range stored {
			batches.add(p)
		}
		for _, b := range batches.list {
			if err := s.audit(ctx, tx, now, b.actor, "", b.payload()); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		s.markDays(fresh)
	}
	return err
}

// unpreparedDays returns the check-in days of the parties' visits whose
// storage this process has not prepared yet (see Dialect.AddDays).
func (s *Store) unpreparedDays(parties []*registry.Party) []registry.Day {
	var days []registry.Day
	for _, p := range parties {
		for _, v := range p.Visits {
			d := registry.DayOf(v.CheckIn)
			if _, ok := s.days.Load(d); !ok && !slices.Contains(days, d) {
				days = append(days, d)
			}
		}
	}
	return days
}

// markDays records that the days' storage is prepared (after the
// transaction that prepared it committed).
func (s *Store) markDays(days []registry.Day) {
	for _, d := range days {
		s.days.Store(d, true)
	}
}

func prepareParty(p *registry.Party, now time.Time) error {
	p.Replay = nil
	if len(p.Visits) == 0 || p.Actor == "" {
		return registry.Errorf(registry.EINVALID, "A party needs an actor and at least one visit.")
	}
	for _, v := range p.Visits {
		v.Party, v.Appointment = p.Visits[0].ID, p.Appointment
		if v.ID == "" || v.Site == "" || v.CheckIn.IsZero() || len(v.Sealed) == 0 {
			return registry.Errorf(registry.EINVALID, "A visit needs an id, a site, a check-in and sealed contact data.")
		}
		v.CheckIn = utcMicro(v.CheckIn)
		if v.Epoch == "" {
			v.Epoch = registry.DayOf(v.CheckIn)
		}
		if v.CreatedAt.IsZero() {
			v.CreatedAt = now
		}
		v.CreatedAt = utcMicro(v.CreatedAt)
	}
	if k := p.Key; k != nil && (len(k.Hash) == 0 || len(k.RequestMAC) == 0 || k.CheckIn.IsZero() || k.Visits != len(p.Visits)) {
		return registry.Errorf(registry.EINVALID, "An idempotency record needs a hash, a MAC, a check-in and the party's number of visits.")
	}
	return nil
}

// insertParties stores the parties' idempotency records and then the
// visits of the parties whose key was not stored before, in multi-row
// statements, and returns those parties. The others are replays: their
// Replay is set from the stored record.
func (s *Store) insertParties(ctx context.Context, tx *sqlx.Tx, parties []*registry.Party) ([]*registry.Party, error) {
	var keyed []*registry.Party
	for _, p := range parties {
		if p.Key != nil {
			keyed = append(keyed, p)
		}
	}
	inserted := map[string]bool{}
	err := chunks(len(keyed), func(from, to int) error {
		st, err := s.stmt(ctx, tx, insertKeys(to-from))
		if err != nil {
			return err
		}
		args := make([]any, 0, 4*(to-from))
		for _, p := range keyed[from:to] {
			args = append(args, p.Key.Hash, micros(p.Key.CheckIn), p.Key.RequestMAC, p.Key.Visits)
		}
		rows, err := st.QueryxContext(ctx, args...)
		if err != nil {
			return s.errorf(err, "store idempotency keys")
		}
		defer rows.Close()
		for rows.Next() {
			var hash []byte
			if err := rows.Scan(&hash); err != nil {
				return s.errorf(err, "store idempotency keys")
			}
			inserted[string(hash)] = true
		}
		return s.errorf(rows.Err(), "store idempotency keys")
	})
	if err != nil {
		return nil, err
	}
	var stored []*registry.Party
	var visits []*registry.Visit
	for _, p := range parties {
		if p.Key != nil && !inserted[string(p.Key.Hash)] {
			if p.Replay, err = s.storedKey(ctx, tx, p.Key.Hash); err != nil {
				return nil, err
			}
			continue
		}
		// A key stored by an earlier party of this batch is a replay of it.
		if p.Key != nil {
			delete(inserted, string(p.Key.Hash))
		}
		stored = append(stored, p)
		visits = append(visits, p.Visits...)
	}
	return stored, s.insertVisits(ctx, tx, visits)
}

// insertVisits inserts the visits in multi-row statements.
func (s *Store) insertVisits(ctx context.Context, tx *sqlx.Tx, visits []*registry.Visit) error {
	return chunks(len(visits), func(from, to int) error {
		st, err := s.stmt(ctx, tx, insertVisits(to-from))
		if err != nil {
			return err
		}
		args := make([]any, 0, visitFields*(to-from))
		for _, v := range visits[from:to] {
			args = append(args, v.ID, v.Site, v.Area, micros(v.CheckIn), nullMicros(v.CheckOut), v.CheckoutAuto,
				string(v.CheckoutReason), v.Party, v.Appointment, string(v.Epoch), v.Sealed, micros(v.CreatedAt))
		}
		_, err = st.ExecContext(ctx, args...)
		return s.errorf(err, "insert visits")
	})
}

// storedKey reads the idempotency record stored under hash.
func (s *Store) storedKey(ctx context.Context, q sqlx.QueryerContext, hash []byte) (*registry.IdempotencyKey, error) {
	var row struct {
		Hash    []byte `db:"hash"`
		CheckIn int64  `db:"check_in"`
		MAC     []byte `db:"request_mac"`
		Visits  int    `db:"visits"`
	}
	err := sqlx.GetContext(ctx, q, &row, s.rebind(`SELECT hash, check_in, request_mac, visits FROM idempotency WHERE hash = ?`), hash)
	if err != nil {
		return nil, s.errorf(err, "read idempotency key")
	}
	return &registry.IdempotencyKey{Hash: row.Hash, CheckIn: fromMicros(row.CheckIn), RequestMAC: row.MAC, Visits: row.Visits}, nil
}

// batches groups the stored parties of a transaction by actor, in order of
// first appearance, for one audit event each.
type batches struct {
	list  []*batch
	index map[registry.Actor]*batch
}

type batch struct {
	actor      registry.Actor
	n          int
	sites      map[string]int
	leaves     map[registry.Day][]byte
	departures map[registry.Day][]byte
	appts      int
	walkIns    map[string]int
}

func newBatches() *batches { return &batches{index: map[registry.Actor]*batch{}} }

func (bs *batches) add(p *registry.Party) {
	b := bs.index[p.Actor]
	if b == nil {
		b = &batch{actor: p.Actor, sites: map[string]int{}, leaves: map[registry.Day][]byte{}}
		bs.index[p.Actor] = b
		bs.list = append(bs.list, b)
	}
	if p.Appointment != "" {
		b.appts++
	}
	if p.WalkIn != "" {
		if b.walkIns == nil {
			b.walkIns = map[string]int{}
		}
		b.walkIns[p.WalkIn]++
	}
	for _, v := range p.Visits {
		b.n++
		b.sites[v.Site]++
		b.leaves[v.Epoch] = append(b.leaves[v.Epoch], registry.VisitLeaf(v)...)
		if v.CheckOut != nil {
			if b.departures == nil {
				b.departures = map[registry.Day][]byte{}
			}
			b.departures[v.Epoch] = append(b.departures[v.Epoch], registry.DepartureLeaf(v.ID, *v.CheckOut, v.CheckoutReason)...)
		}
	}
}

func (b *batch) payload() registry.VisitsRegistered {
	return registry.VisitsRegistered{Count: b.n, Sites: b.sites, Leaves: encodeLeaves(b.leaves), Departures: encodeLeaves(b.departures),
		Appointments: b.appts, WalkIns: b.walkIns}
}

// encodeLeaves encodes leaves per day in standard base64; nil for none.
func encodeLeaves(leaves map[registry.Day][]byte) map[registry.Day]string {
	if len(leaves) == 0 {
		return nil
	}
	out := make(map[registry.Day]string, len(leaves))
	for d, l := range leaves {
		out[d] = base64.StdEncoding.EncodeToString(l)
	}
	return out
}

// FindVisit returns a visit by id, Sealed included, or ENOTFOUND.
func (s *Store) FindVisit(ctx context.Context, id string) (*registry.Visit, error) {
	return s.findVisit(ctx, s.read, id)
}

// findVisit looks the visit up within the check-in day its id names, so
// that PostgreSQL reads one partition.
func (s *Store) findVisit(ctx context.Context, q sqlx.QueryerContext, id string) (*registry.Visit, error) {
	day, ok := registry.VisitDay(id)
	if !ok {
		return nil, registry.Errorf(registry.ENOTFOUND, "Visit not found.")
	}
	var row visitRow
	err := sqlx.GetContext(ctx, q, &row, s.rebind(`SELECT `+visitColumns+` FROM visits WHERE id = ? AND check_in >= ? AND check_in < ?`),
		id, micros(day.Start()), micros(day.End()))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, registry.Errorf(registry.ENOTFOUND, "Visit not found.")
	} else if err != nil {
		return nil, s.errorf(err, "find visit")
	}
	return row.visit(), nil
}

// CheckOutVisits records the departures in one transaction with one
// AuditVisitsCheckedOut event per reason; see registry.VisitStore.
func (s *Store) CheckOutVisits(ctx context.Context, actor registry.Actor, deps []*registry.Departure) error {
	for _, d := range deps {
		if d.Reason != registry.CheckoutVisitor && d.Reason != registry.CheckoutDesk {
			return registry.Errorf(registry.EINVALID, "Check-outs of reason %q are the server's own.", d.Reason)
		}
		d.At, d.Err = utcMicro(d.At), nil
	}
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		outs := newDepartures()
		for _, d := range deps {
			v, err := s.findVisit(ctx, tx, d.ID)
			if registry.ErrorCode(err) == registry.ENOTFOUND {
				d.Err = err
				continue
			} else if err != nil {
				return err
			}
			if d.Err = checkDeparture(v, d); d.Err != nil {
				continue
			}
			res, err := tx.ExecContext(ctx, s.rebind(`UPDATE visits SET check_out = ?, checkout_reason = ?
WHERE id = ? AND check_in = ? AND check_out IS NULL`), micros(d.At), string(d.Reason), d.ID, micros(v.CheckIn))
			if err != nil {
				return s.errorf(err, "check out")
			}
			if n, err := res.RowsAffected(); err != nil {
				return s.errorf(err, "check out")
			} else if n != 1 {
				d.Err = errCheckedOut
				continue
			}
			outs.add(v, d.At, d.Reason)
		}
		return outs.audit(ctx, s, tx, actor)
	})
	if err != nil {
		for _, d := range deps {
			d.Err = nil
		}
	}
	return err
}

var errCheckedOut = registry.Errorf(registry.ECONFLICT, "The visit is already checked out.")

// checkDeparture returns the error of a departure from v, or nil.
func checkDeparture(v *registry.Visit, d *registry.Departure) error {
	switch {
	case d.Site != "" && v.Site != d.Site:
		return registry.Errorf(registry.EFORBIDDEN, "The visit belongs to another site.")
	case v.CheckOut != nil:
		return errCheckedOut
	case d.At.Before(v.CheckIn):
		return registry.FieldError("check_out", "The check-out lies before the check-in.")
	case d.At.After(v.CheckIn.Add(registry.MaxStayLimit)):
		return registry.FieldError("check_out", "The check-out lies more than %d hours after the check-in; no visit lasts that long.", int(registry.MaxStayLimit.Hours()))
	}
	return nil
}

// CloseVisits checks out the open visits of site checked in from from to
// at, at at; see registry.VisitStore.
func (s *Store) CloseVisits(ctx context.Context, actor registry.Actor, site string, from, at time.Time) (int, error) {
	at = utcMicro(at)
	var n int
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var rows []struct {
			ID      string `db:"id"`
			CheckIn int64  `db:"check_in"`
		}
		err := sqlx.SelectContext(ctx, tx, &rows, s.rebind(`SELECT id, check_in FROM visits
WHERE check_out IS NULL AND check_in >= ? AND check_in < ? AND site = ? ORDER BY check_in, id`), micros(from), micros(at), site)
		if err != nil {
			return s.errorf(err, "list open visits")
		}
		outs := newDepartures()
		for _, r := range rows {
			if _, err := tx.ExecContext(ctx, s.rebind(`UPDATE visits SET check_out = ?, checkout_auto = ?, checkout_reason = ?
WHERE id = ? AND check_in = ? AND check_out IS NULL`), micros(at), true, string(registry.CheckoutClosing), r.ID, r.CheckIn); err != nil {
				return s.errorf(err, "check out at closing")
			}
			outs.add(&registry.Visit{ID: r.ID, Site: site, CheckIn: fromMicros(r.CheckIn)}, at, registry.CheckoutClosing)
		}
		n = len(rows)
		return outs.audit(ctx, s, tx, actor)
	})
	return n, err
}

// departures groups the check-outs of a transaction by reason, for one
// audit event each.
type departures struct {
	index map[registry.CheckoutReason]*departureBatch
	order []registry.CheckoutReason
}

type departureBatch struct {
	n      int
	sites  map[string]int
	leaves map[registry.Day][]byte
}

func newDepartures() *departures {
	return &departures{index: map[registry.CheckoutReason]*departureBatch{}}
}

func (ds *departures) add(v *registry.Visit, at time.Time, reason registry.CheckoutReason) {
	b := ds.index[reason]
	if b == nil {
		b = &departureBatch{sites: map[string]int{}, leaves: map[registry.Day][]byte{}}
		ds.index[reason] = b
		ds.order = append(ds.order, reason)
	}
	b.n++
	b.sites[v.Site]++
	day := registry.DayOf(v.CheckIn)
	b.leaves[day] = append(b.leaves[day], registry.DepartureLeaf(v.ID, at, reason)...)
}

// audit appends one event per reason.
func (ds *departures) audit(ctx context.Context, s *Store, tx *sqlx.Tx, actor registry.Actor) error {
	for _, reason := range ds.order {
		b := ds.index[reason]
		p := registry.VisitsCheckedOut{Count: b.n, Reason: reason, Sites: b.sites, Leaves: encodeLeaves(b.leaves)}
		if err := s.audit(ctx, tx, time.Time{}, actor, "", p); err != nil {
			return err
		}
	}
	return nil
}

// OpenVisits returns the open visits of site checked in since since,
// through the partial index of open visits.
func (s *Store) OpenVisits(ctx context.Context, site string, since time.Time) ([]*registry.Visit, error) {
	var rows []visitRow
	err := s.read.SelectContext(ctx, &rows, s.rebind(`SELECT id, site, area, check_in, check_out, checkout_auto, checkout_reason, party, appointment, epoch, created_at
FROM visits WHERE check_out IS NULL AND check_in >= ? AND site = ? ORDER BY check_in, id`), micros(since), site)
	if err != nil {
		return nil, s.errorf(err, "list open visits")
	}
	vs := make([]*registry.Visit, len(rows))
	for i := range rows {
		vs[i] = rows[i].visit()
	}
	return vs, nil
}

// VisitsAt lists a site's visits of [from, to); see registry.VisitStore.
func (s *Store) VisitsAt(ctx context.Context, site string, from, to time.Time) ([]*registry.Visit, error) {
	var rows []visitRow
	err := s.read.SelectContext(ctx, &rows, s.rebind(`SELECT id, site, area, check_in, check_out, checkout_auto, checkout_reason, party, appointment, epoch, created_at
FROM visits WHERE check_in >= ? AND check_in < ? AND site = ? ORDER BY check_in, id`), micros(from), micros(to), site)
	if err != nil {
		return nil, s.errorf(err, "list visits")
	}
	vs := make([]*registry.Visit, len(rows))
	for i := range rows {
		vs[i] = rows[i].visit()
	}
	return vs, nil
}

// Occupancy counts the open visits since since per site and area.
func (s *Store) Occupancy(ctx context.Context, since time.Time) ([]registry.Occupancy, error) {
	var rows []struct {
		Site string `db:"site"`
		Area string `db:"area"`
		N    int    `db:"n"`
	}
	err := s.read.SelectContext(ctx, &rows, s.rebind(`SELECT site, area, count(*) AS n FROM visits
WHERE check_out IS NULL AND check_in >= ? GROUP BY site, area ORDER BY site, area`), micros(since))
	if err != nil {
		return nil, s.errorf(err, "count open visits")
	}
	occ := make([]registry.Occupancy, len(rows))
	for i, r := range rows {
		occ[i] = registry.Occupancy{Site: r.Site, Area: r.Area, Open: r.N}
	}
	return occ, nil
}

// AllVisits yields every stored visit, ordered by check-in and id, from
// one read-only snapshot; see registry.VisitStore.
func (s *Store) AllVisits(ctx context.Context) iter.Seq2[*registry.Visit, error] {
	return func(yield func(*registry.Visit, error) bool) {
		tx, err := s.read.BeginTxx(ctx, &sql.TxOptions{ReadOnly: true, Isolation: s.dialect.SnapshotIsolation()})
		if err != nil {
			yield(nil, s.errorf(err, "begin snapshot"))
			return
		}
		defer tx.Rollback()
		rows, err := tx.QueryxContext(ctx, `SELECT `+visitColumns+` FROM visits ORDER BY check_in, id`)
		if err != nil {
			yield(nil, s.errorf(err, "select visits"))
			return
		}
		defer rows.Close()
		for rows.Next() {
			var row visitRow
			if err := rows.StructScan(&row); err != nil {
				yield(nil, s.errorf(err, "read visits"))
				return
			}
			if !yield(row.visit(), nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(nil, s.errorf(err, "read visits"))
		}
	}
}
