package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// newLogger builds the one logger of the process: text or JSON on w, at
// level, behind a guard (guardHandler) that removes network addresses from
// every line and collapses repeated warnings and errors.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, withHint(fmt.Errorf("unknown log level %q", level), "use debug, info, warn or error")
	}
	opts := &slog.HandlerOptions{Level: l}
	var h slog.Handler
	switch format {
	case "text":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		return nil, withHint(fmt.Errorf("unknown log format %q", format), "use text or json")
	}
	return slog.New(newGuard(h, time.Now)), nil
}

// repeatWindow is how long identical warnings are collapsed into one line.
const repeatWindow = time.Second

// guardHandler wraps the output handler.
//
// Addresses: IPv4 and IPv6 addresses (with or without port) in the message
// and in every attribute, errors included, become "[address]": a client's
// address is personal data, and the network errors of net/http and the
// database driver name the addresses of both ends.
//
// Repeats: a warning or error with the same message as one logged less than
// repeatWindow ago is not written; the next one after the window carries
// "repeated" with the number left out. An outage that fails every request
// so writes one line a second, not one per request.
type guardHandler struct {
	next    slog.Handler
	now     func() time.Time
	repeats *repeats
}

type repeats struct {
	mu   sync.Mutex
	seen map[string]*repeat
}

type repeat struct {
	last       time.Time
	suppressed int
}

func newGuard(next slog.Handler, now func() time.Time) *guardHandler {
	return &guardHandler{next: next, now: now, repeats: &repeats{seen: map[string]*repeat{}}}
}

func (g *guardHandler) Enabled(ctx context.Context, l slog.Level) bool { return g.next.Enabled(ctx, l) }

func (g *guardHandler) Handle(ctx context.Context, r slog.Record) error {
	n := 0
	if r.Level >= slog.LevelWarn {
		var keep bool
		if keep, n = g.repeats.admit(r.Level.String()+" "+r.Message, g.now()); !keep {
			return nil
		}
	}
	out := slog.NewRecord(r.Time, r.Level, redactAddrs(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redactAttr(a))
		return true
	})
	if n > 0 {
		out.AddAttrs(slog.Int("repeated", n))
	}
	return g.next.Handle(ctx, out)
}

func (g *guardHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		clean[i] = redactAttr(a)
	}
	return &guardHandler{next: g.next.WithAttrs(clean), now: g.now, repeats: g.repeats}
}

func (g *guardHandler) WithGroup(name string) slog.Handler {
	return &guardHandler{next: g.next.WithGroup(name), now: g.now, repeats: g.repeats}
}

// admit reports whether a record with the key is written now and how many
// were left out before it.
func (rs *repeats) admit(key string, now time.Time) (bool, int) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r, ok := rs.seen[key]
	if !ok {
		if len(rs.seen) > 1024 {
			clear(rs.seen)
		}
		rs.seen[key] = &repeat{last: now}
		return true, 0
	}
	if now.Sub(r.last) < repeatWindow {
		r.suppressed++
		return false, 0
	}
	n := r.suppressed
	r.last, r.suppressed = now, 0
	return true, n
}

// ownAddress is an address of this server (where it listens), which is
// no one's personal data and is logged as it is.
type ownAddress string

// redactAttr returns a with addresses removed from its value; groups are
// redacted member by member, errors and other values by their text.
func redactAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	if own, ok := v.Any().(ownAddress); ok && v.Kind() == slog.KindAny {
		return slog.String(a.Key, string(own))
	}
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, redactAddrs(v.String()))
	case slog.KindGroup:
		members := v.Group()
		clean := make([]any, len(members))
		for i, m := range members {
			clean[i] = redactAttr(m)
		}
		return slog.Group(a.Key, clean...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.String(a.Key, redactAddrs(x.Error()))
		case fmt.Stringer:
			return slog.String(a.Key, redactAddrs(x.String()))
		case []string:
			clean := make([]string, len(x))
			for i, s := range x {
				clean[i] = redactAddrs(s)
			}
			return slog.Any(a.Key, clean)
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

// redactAddrs replaces every IPv4 or IPv6 address in s, with its port and
// brackets, by "[address]".
func redactAddrs(s string) string {
	if !strings.ContainsAny(s, ".:") {
		return s
	}
	var b strings.Builder
	i := 0
	for i < len(s) {
		j := i
		for j < len(s) && addrByte(s[j]) {
			j++
		}
		if j == i {
			b.WriteByte(s[i])
			i++
			continue
		}
		b.WriteString(redactToken(s[i:j]))
		i = j
	}
	return b.String()
}

// addrByte reports whether c can be part of an address with port in
// brackets: hex digits, '.', ':', '[', ']' and '%' (an IPv6 zone).
func addrByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || strings.IndexByte(".:[]%", c) >= 0
}

// redactToken returns "[address]" when tok (a run of addrBytes) is an
// address, an address with a port, or starts with an address followed by
// punctuation, and tok otherwise.
func redactToken(tok string) string {
	core := strings.TrimRight(tok, ".:")
	rest := tok[len(core):]
	if ap, err := netip.ParseAddrPort(core); err == nil && ap.Addr().IsValid() {
		return "[address]" + rest
	}
	trimmed := strings.Trim(core, "[]")
	if addr, err := netip.ParseAddr(trimmed); err == nil && (addr.Is6() || strings.Count(trimmed, ".") == 3) {
		return "[address]" + rest
	}
	return tok
}
