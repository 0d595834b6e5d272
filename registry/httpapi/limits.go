package httpapi

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Rate is a token bucket: PerMinute requests a minute on average, Burst at
// once. A zero Rate is unlimited.
type Rate struct {
	PerMinute float64
	Burst     int
}

// Limits bound what the public pages accept, so that a script cannot fill
// the registry with fake visits, while a city hall's entrance never meets
// them: even a queue of families at one door registers far less than one
// visit every ten seconds, and a building far less than one a second.
type Limits struct {
	// PerClient limits registrations from one client address (for IPv6
	// one /64 network, which one client may hold whole).
	PerClient Rate
	// PerSite limits registrations at one site, from all clients.
	PerSite Rate
	// Total limits registrations at all sites together.
	Total Rate
	// Pages limits every other request of the public pages (the form, the
	// check-out) from one client address.
	Pages Rate
	// AuthFailures limits the requests with a missing or wrong credential
	// from one client address on the API, so that guessing costs the
	// guesser, not the database.
	AuthFailures Rate
	// MaxConns caps the connections served at once; more wait in the
	// listen queue.
	MaxConns int
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is
	// believed: the client address of a request from one of them is the
	// last address in the header that is not itself a trusted proxy. None
	// by default: then the connection's address is the client's.
	TrustedProxies []netip.Prefix
}

// DefaultLimits are the limits of a server whose Config sets none.
func DefaultLimits() Limits {
	return Limits{
		PerClient:    Rate{PerMinute: 20, Burst: 10},
		PerSite:      Rate{PerMinute: 120, Burst: 60},
		Total:        Rate{PerMinute: 600, Burst: 200},
		Pages:        Rate{PerMinute: 120, Burst: 60},
		AuthFailures: Rate{PerMinute: 30, Burst: 20},
		MaxConns:     1024,
	}
}

// maxLimiterKeys bounds the memory of the per-client limiters; past it
// the idlest half is dropped.
const maxLimiterKeys = 50_000

// limiter holds one token bucket per key.
type limiter struct {
	rate Rate
	mu   sync.Mutex
	keys map[string]*bucket
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

func newLimiter(r Rate) *limiter { return &limiter{rate: r, keys: map[string]*bucket{}} }

// allow takes a token of key's bucket at now. When none is left it returns
// false and how long until one is.
func (l *limiter) allow(key string, now time.Time) (bool, time.Duration) {
	if l == nil || l.rate.PerMinute <= 0 {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.keys[key]
	if b == nil {
		if len(l.keys) >= maxLimiterKeys {
			l.evict()
		}
		b = &bucket{lim: rate.NewLimiter(rate.Limit(l.rate.PerMinute/60), max(1, l.rate.Burst))}
		l.keys[key] = b
	}
	b.seen = now
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// exhausted reports whether key's bucket is empty at now, without taking
// from it.
func (l *limiter) exhausted(key string, now time.Time) bool {
	if l == nil || l.rate.PerMinute <= 0 {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.keys[key]
	return b != nil && b.lim.TokensAt(now) < 1
}

// evict drops the buckets idle longer than the median.
func (l *limiter) evict() {
	var oldest, newest time.Time
	for _, b := range l.keys {
		if oldest.IsZero() || b.seen.Before(oldest) {
			oldest = b.seen
		}
		if b.seen.After(newest) {
			newest = b.seen
		}
	}
	mid := oldest.Add(newest.Sub(oldest) / 2)
	for k, b := range l.keys {
		if !b.seen.After(mid) {
			delete(l.keys, k)
		}
	}
}

// limits are the Server's limiters.
type limits struct {
	cfg                                      Limits
	client, site, total, pages, authFailures *limiter
}

func newLimits(cfg Limits) *limits {
	return &limits{cfg: cfg, client: newLimiter(cfg.PerClient), site: newLimiter(cfg.PerSite),
		total: newLimiter(cfg.Total), pages: newLimiter(cfg.Pages), authFailures: newLimiter(cfg.AuthFailures)}
}

// clientKey is the limiter key of r's client: its address, an IPv6 one
// reduced to its /64 network.
func (l *limits) clientKey(r *http.Request) string {
	addr := l.clientAddr(r)
	if addr.Is6() && !addr.Is4In6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.Unmap().String()
}

// clientAddr is the client's address: the connection's, or, from a
// trusted proxy, the last untrusted address in X-Forwarded-For.
func (l *limits) clientAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	addr := ap.Addr().Unmap()
	if !l.trusted(addr) {
		return addr
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return addr // a malformed header: believe no more of it
		}
		if hop = hop.Unmap(); !l.trusted(hop) {
			return hop
		}
		addr = hop
	}
	return addr
}

// fromTrustedProxy reports whether r's connection comes from a trusted
// proxy, whose X-Forwarded-* headers are believed.
func (l *limits) fromTrustedProxy(r *http.Request) bool {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	return err == nil && l.trusted(ap.Addr().Unmap())
}

func (l *limits) trusted(a netip.Addr) bool {
	for _, p := range l.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// registration takes a token of each registration limit for a
// registration at site, the narrowest first. It returns the limit that
// refused ("" for none) and when to retry.
func (l *limits) registration(r *http.Request, site string, now time.Time) (string, time.Duration) {
	if ok, d := l.client.allow(l.clientKey(r), now); !ok {
		return "client", d
	}
	if ok, d := l.site.allow(site, now); !ok {
		return "site", d
	}
	if ok, d := l.total.allow("", now); !ok {
		return "total", d
	}
	return "", 0
}

// limitListener serves at most n connections at once; the others wait in
// the kernel's listen queue until one closes.
type limitListener struct {
	net.Listener
	sem  chan struct{}
	full func() // called when a connection had to wait
}

func newLimitListener(l net.Listener, n int, full func()) net.Listener {
	if n <= 0 {
		return l
	}
	return &limitListener{Listener: l, sem: make(chan struct{}, n), full: full}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	default:
		l.full()
		l.sem <- struct{}{}
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
