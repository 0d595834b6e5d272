// Package notify tells hosts that the visitor of their appointment has
// arrived: an outgoing webhook per site or host (for example a chat
// system's incoming webhook), JSON with the appointment's code, time,
// room and host, never the visitor's name, signed with a shared secret
// (HMAC-SHA256) and retried.
package notify

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cityhall/registry/registry"
)

// Arrival is what a host is told.
type Arrival struct {
	Event   string    `json:"event"` // "visitor.arrived"
	Site    string    `json:"site"`
	Code    string    `json:"code"`
	Host    string    `json:"host"`
	Area    string    `json:"area,omitempty"`
	Start   time.Time `json:"start"`   // the appointment's start
	Arrived time.Time `json:"arrived"` // the registration's check-in
	Text    string    `json:"text"`    // a line for chat systems
}

// NewArrival describes the arrival for an appointment.
func NewArrival(a *registry.Appointment, site *registry.Site, at time.Time) Arrival {
	name := a.Site
	if site != nil {
		name = site.Name
	}
	room := ""
	if a.Area != "" {
		room = ", " + a.Area
	}
	return Arrival{Event: "visitor.arrived", Site: a.Site, Code: a.Code, Host: a.Host, Area: a.Area, Start: a.Start.UTC(), Arrived: at.UTC(),
		Text: fmt.Sprintf("Ihr Besuch zum Termin %s (%s Uhr%s) ist an der Pforte %s angekommen.", a.Code,
			a.Start.In(registry.LocalZone).Format("15:04"), room, name)}
}

// Target is where the arrivals of a site (and, when Host is not "", of
// one host there) go.
type Target struct {
	Site, Host string
	URL        string
	Secret     []byte
}

// ReadTargets reads the webhook file: one target per line, "SITE URL
// SECRET-FILE" or "SITE/HOST URL SECRET-FILE" ('#' comments), the secret
// in a file of its own (mode 0600), never in the list. The URL must be
// https (http only to localhost).
func ReadTargets(path string) ([]Target, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, registry.Errorf(registry.EINVALID, "Cannot read the webhook file %q: %v.", path, err)
	}
	defer f.Close()
	var out []Target
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 3 {
			return nil, registry.Errorf(registry.EINVALID, "Webhook file %q, line %d: expected SITE[/HOST] URL SECRET-FILE.", path, n)
		}
		site, host, _ := strings.Cut(fields[0], "/")
		u, err := url.Parse(fields[1])
		if err != nil || !(u.Scheme == "https" || u.Scheme == "http" && (u.Hostname() == "localhost" || u.Hostname() == "127.0.0.1")) || u.Host == "" {
			return nil, registry.Errorf(registry.EINVALID, "Webhook file %q, line %d: the URL must be https://….", path, n)
		}
		secret, err := readSecret(fields[2])
		if err != nil {
			return nil, registry.Errorf(registry.EINVALID, "Webhook file %q, line %d: %s", path, n, registry.ErrorMessage(err))
		}
		out = append(out, Target{Site: site, Host: strings.ReplaceAll(host, "_", " "), URL: u.String(), Secret: secret})
	}
	return out, sc.Err()
}

func readSecret(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, registry.Errorf(registry.EINVALID, "cannot read the secret file %q.", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, registry.Errorf(registry.EINVALID, "the secret file %q may be read by others; chmod 600 it.", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, registry.Errorf(registry.EINVALID, "cannot read the secret file %q.", path)
	}
	b = bytes.TrimSpace(b)
	if len(b) < 16 {
		return nil, registry.Errorf(registry.EINVALID, "the secret in %q is shorter than 16 characters.", path)
	}
	return b, nil
}

// Sign returns the signature header value of a webhook body sent at ts:
// "sha256=" and the hex HMAC-SHA256 of "<unix seconds>.<body>" under the
// secret. The receiver recomputes it and refuses stale timestamps.
func Sign(secret []byte, ts time.Time, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(strconv.FormatInt(ts.Unix(), 10) + "."))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Notifier sends arrivals to their targets from a bounded queue, retrying
// each delivery with backoff. Deliveries are best effort: a notification
// is a convenience for the host, not a record (the registration is stored
// and audited whether or not it arrives), and the queue lives in memory.
type Notifier struct {
	Targets []Target
	Client  *http.Client
	Logger  *slog.Logger
	Now     func() time.Time
	// Attempts per delivery (default 5) and the first backoff (default 2 s,
	// doubling).
	Attempts int
	Backoff  time.Duration

	queue chan delivery
}

type delivery struct {
	t    Target
	body []byte
}

// QueueSize bounds the deliveries waiting.
const QueueSize = 1000

// Start starts the sender; it stops when ctx ends.
func (n *Notifier) Start(ctx context.Context) {
	if n.Client == nil {
		n.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if n.Now == nil {
		n.Now = time.Now
	}
	if n.Attempts <= 0 {
		n.Attempts = 5
	}
	if n.Backoff <= 0 {
		n.Backoff = 2 * time.Second
	}
	n.queue = make(chan delivery, QueueSize)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case d := <-n.queue:
				n.send(ctx, d)
			}
		}
	}()
}

// Notify queues the arrival for every target of its site and host. It
// never blocks: with the queue full the notification is dropped and
// logged.
func (n *Notifier) Notify(a Arrival) {
	body, err := json.Marshal(a)
	if err != nil {
		return
	}
	for _, t := range n.Targets {
		if t.Site != a.Site || t.Host != "" && t.Host != a.Host {
			continue
		}
		select {
		case n.queue <- delivery{t, body}:
		default:
			n.Logger.Warn("webhook queue full: arrival notification dropped", "site", a.Site, "code", a.Code)
		}
	}
}

func (n *Notifier) send(ctx context.Context, d delivery) {
	wait := n.Backoff
	for attempt := 1; attempt <= n.Attempts; attempt++ {
		err := n.post(ctx, d)
		if err == nil {
			return
		}
		n.Logger.Warn("webhook delivery failed", "site", d.t.Site, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait *= 2
	}
	n.Logger.Error("webhook delivery given up", "site", d.t.Site, "attempts", n.Attempts)
}

func (n *Notifier) post(ctx context.Context, d delivery) error {
	ts := n.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.t.URL, bytes.NewReader(d.body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "registry-webhook/1")
	req.Header.Set("X-Registry-Timestamp", strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set("X-Registry-Signature", Sign(d.t.Secret, ts, d.body))
	resp, err := n.Client.Do(req)
	if err != nil {
		return fmt.Errorf("post: %w", errorWithoutURL(err))
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("answered %d", resp.StatusCode)
	}
	return nil
}

// errorWithoutURL drops the URL from a client error: webhook URLs often
// carry their own token.
func errorWithoutURL(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}
