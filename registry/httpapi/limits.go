package httpapi

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
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
	// PerClientConns caps the connections one client address (an IPv6
	// /64) holds open at once, and the requests one client has in flight
	// (behind a trusted proxy: per forwarded address). A connection past
	// it is never served (held a few seconds, then closed), a request
	// past it answered 429, so that one
	// client with thousands of idle connections cannot take the slots of
	// MaxConns from everyone else. Trusted proxies' own connections are
	// not capped: they carry many clients.
	PerClientConns int
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
		// A browser opens at most 6 connections to a host; a desk's
		// kiosk or a NAT of an office a few dozen.
		PerClientConns: 64,
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
	inFlight                                 *counter // requests in flight per client (PerClientConns)
}

func newLimits(cfg Limits) *limits {
	return &limits{cfg: cfg, client: newLimiter(cfg.PerClient), site: newLimiter(cfg.PerSite),
		total: newLimiter(cfg.Total), pages: newLimiter(cfg.Pages), authFailures: newLimiter(cfg.AuthFailures),
		inFlight: newCounter(cfg.PerClientConns)}
}

// clientKey is the limiter key of r's client: its address, an IPv6 one
// reduced to its /64 network.
func (l *limits) clientKey(r *http.Request) string { return addrKey(l.clientAddr(r)) }

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

// addrKey is the per-client key of an address: IPv4 as it is, IPv6 its
// /64 network.
func addrKey(addr netip.Addr) string {
	if addr.Is6() && !addr.Is4In6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.Unmap().String()
}

// counter counts what each key holds at once (connections, requests in
// flight), up to a cap.
type counter struct {
	cap int
	mu  sync.Mutex
	n   map[string]int
}

func newCounter(cap int) *counter { return &counter{cap: cap, n: map[string]int{}} }

// take counts one more for key and reports true, or false when key holds
// cap already.
func (c *counter) take(key string) bool {
	if c == nil || c.cap <= 0 {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[key] >= c.cap {
		return false
	}
	c.n[key]++
	return true
}

// release counts one less for key.
func (c *counter) release(key string) {
	if c == nil || c.cap <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[key]--; c.n[key] <= 0 {
		delete(c.n, key)
	}
}

// limitListener serves at most n connections at once; the others wait in
// the kernel's listen queue until one closes. A client address that holds
// perClient connections already has its next one refused (held, then
// closed, see hold), unless it is a trusted proxy.
type limitListener struct {
	net.Listener
	sem       chan struct{}
	full      func() // called when a connection had to wait
	perClient *counter
	trusted   func(netip.Addr) bool
	refused   func() // called when a client's connection was refused for its cap
	held      atomic.Int64
}

func newLimitListener(l net.Listener, lim *limits, full, refused func()) net.Listener {
	if lim.cfg.MaxConns <= 0 && lim.cfg.PerClientConns <= 0 {
		return l
	}
	ll := &limitListener{Listener: l, full: full, refused: refused, perClient: newCounter(lim.cfg.PerClientConns), trusted: lim.trusted}
	if lim.cfg.MaxConns > 0 {
		ll.sem = make(chan struct{}, lim.cfg.MaxConns)
	}
	return ll
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		if l.sem != nil {
			select {
			case l.sem <- struct{}{}:
			default:
				l.full()
				l.sem <- struct{}{}
			}
		}
		c, err := l.Listener.Accept()
		if err != nil {
			l.releaseSlot()
			return nil, err
		}
		key := ""
		if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil && !l.trusted(ap.Addr().Unmap()) {
			key = addrKey(ap.Addr())
		}
		if key != "" && !l.perClient.take(key) {
			l.releaseSlot()
			l.refused()
			l.hold(c)
			continue
		}
		return &limitConn{Conn: c, release: func() {
			if key != "" {
				l.perClient.release(key)
			}
			l.releaseSlot()
		}}, nil
	}
}

// Refused connections are held open, unserved and outside MaxConns, for
// refusedHold before they are closed (at most maxHeld at once; past that
// they are closed at once): a flooder whose connections were closed at
// once would reopen them as fast as the server accepts, crowding the
// listen queue that other clients' connections wait in.
const (
	refusedHold = 5 * time.Second
	maxHeld     = 4096
)

func (l *limitListener) hold(c net.Conn) {
	if l.held.Add(1) > maxHeld {
		l.held.Add(-1)
		c.Close()
		return
	}
	time.AfterFunc(refusedHold, func() {
		c.Close()
		l.held.Add(-1)
	})
}

func (l *limitListener) releaseSlot() {
	if l.sem != nil {
		<-l.sem
	}
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
