package intake

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
)

// IndexStore is what ResolveIndex reads.
type IndexStore interface {
	VisitsAt(ctx context.Context, site string, from, to time.Time) ([]*registry.Visit, error)
	FindAppointment(ctx context.Context, site string, day registry.Day, code string) (*registry.Appointment, error)
}

// ResolveIndex resolves the index codes of r to the visits they name at
// r's sites in r's window (a stay that began up to the longest stay before
// it included) and sets r.IndexVisits: a visitor slip's code (the short
// code of the slip and the check-out page) names that visit, an
// appointment's code every visit registered for it. A code that names
// nothing is refused with one answer for every reason (unknown, another
// site or office, purged), which names the codes only: EINVALID.
func ResolveIndex(ctx context.Context, s IndexStore, secret *crypto.Secret, r *registry.TraceRequest) error {
	if len(r.Index) == 0 {
		return nil
	}
	from := r.From.Add(-registry.MaxStayLimit)
	var visits []*registry.Visit
	for _, site := range r.Sites {
		vs, err := s.VisitsAt(ctx, site, from, r.To)
		if err != nil {
			return err
		}
		visits = append(visits, vs...)
	}
	var ids, missing []string
	for _, code := range r.Index {
		found := false
		if registry.ValidID(code) { // a visit's id, from a slip's QR code
			for _, v := range visits {
				if v.ID == code {
					ids, found = append(ids, v.ID), true
				}
			}
		} else if appt := registry.NormalizeCode(code); appt != "" {
			for _, site := range r.Sites {
				for day := registry.LocalDay(from); day <= registry.LocalDay(r.To); day = registry.LocalDay(registry.LocalDayStart(day).AddDate(0, 0, 1)) {
					a, err := s.FindAppointment(ctx, site, day, appt)
					if registry.ErrorCode(err) == registry.ENOTFOUND {
						continue
					} else if err != nil {
						return err
					}
					for _, v := range visits {
						if v.Appointment == a.ID || v.ID == a.VisitID {
							ids, found = append(ids, v.ID), true
						}
					}
				}
			}
		} else {
			for _, v := range visits {
				if secret.ShortCode(v.ID) == code {
					ids, found = append(ids, v.ID), true
				}
			}
		}
		if !found {
			missing = append(missing, code)
		}
	}
	if len(missing) > 0 {
		return registry.FieldError("index", "The code %s names no visit at these sites in this window: check the code and the window (a code of a day whose data is deleted names nothing either).",
			strings.Join(missing, ", "))
	}
	slices.Sort(ids)
	r.IndexVisits = slices.Compact(ids)
	return nil
}
