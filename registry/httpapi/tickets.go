package httpapi

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cityhall/registry/registry/intake"
)

// A ticket is a visit's id and checkout token, "id.token": what the
// visitor's phone keeps in a cookie after checking in, what the check-out
// link carries in its fragment, and what a visitor slip's QR code holds.
// Tickets never appear in a URL path or query, so no server or proxy log
// holds one.

// maxTickets is the most tickets one phone keeps for a site (two
// households' worth); older ones drop out.
const maxTickets = 20

// ticketCookie is the visitor's cookie of a site: scoped to the site's
// /checkin path, HttpOnly, SameSite=Lax (it must come along when the
// poster's QR code opens the page from the camera app), Secure behind
// TLS, kept for the longest stay.
const ticketCookie = "rg_visits"

func encodeTicket(t intake.Ticket) string { return t.ID + "." + t.Token }

// parseTicket parses "id.token"; ok is false for anything else.
func parseTicket(s string) (intake.Ticket, bool) {
	id, token, ok := strings.Cut(s, ".")
	if !ok || len(id) != 32 || !strings.HasPrefix(token, "rgc_") || len(token) != 47 {
		return intake.Ticket{}, false
	}
	return intake.Ticket{ID: id, Token: token}, true
}

// parseTickets parses tickets joined by "~", skipping malformed ones and
// repeats, keeping at most maxTickets (the newest, at the end).
func parseTickets(s string) []intake.Ticket {
	var ts []intake.Ticket
	for _, part := range strings.Split(s, "~") {
		if t, ok := parseTicket(part); ok && !slices.Contains(ts, t) {
			ts = append(ts, t)
		}
	}
	if len(ts) > maxTickets {
		ts = ts[len(ts)-maxTickets:]
	}
	return ts
}

func joinTickets(ts []intake.Ticket) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = encodeTicket(t)
	}
	return strings.Join(parts, "~")
}

// cookieTickets returns the tickets of the site's cookie.
func cookieTickets(r *http.Request) []intake.Ticket {
	c, err := r.Cookie(ticketCookie)
	if err != nil {
		return nil
	}
	return parseTickets(c.Value)
}

// setTickets writes the site's cookie with ts, or deletes it when ts is
// empty.
func (s *Server) setTickets(w http.ResponseWriter, r *http.Request, site string, ts []intake.Ticket) {
	c := &http.Cookie{
		Name: ticketCookie, Value: joinTickets(ts), Path: "/checkin/" + site, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: s.secure(r), MaxAge: int(s.cfg.MaxStay / time.Second),
	}
	if len(ts) == 0 {
		c.Value, c.MaxAge = "", -1
	}
	http.SetCookie(w, c)
}

// outLink is the check-out link of tickets: the site's out page with the
// tickets in the fragment.
func (s *Server) outLink(r *http.Request, site string, ts []intake.Ticket) string {
	return s.baseURL(r) + "/checkin/" + site + "/out#" + joinTickets(ts)
}

// secure reports whether the client reached the server through TLS
// (directly, by Config.PublicURL, or through a trusted proxy that says
// so), so that cookies get the Secure flag.
func (s *Server) secure(r *http.Request) bool {
	if r.TLS != nil || strings.HasPrefix(s.cfg.PublicURL, "https://") {
		return true
	}
	return s.limits.fromTrustedProxy(r) && r.Header.Get("X-Forwarded-Proto") == "https"
}

// baseURL is the URL visitors reach the server at: Config.PublicURL, or
// else the request's own scheme and host.
func (s *Server) baseURL(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return strings.TrimSuffix(s.cfg.PublicURL, "/")
	}
	scheme := "http"
	if s.secure(r) {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
