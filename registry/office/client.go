package office

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/cityhall/registry/registry"
)

// Client speaks the registries' API with the office's tokens.
type Client struct {
	HTTP *http.Client
}

// RemoteError is a registry's answer that is not a success: Status and
// the problem's detail.
type RemoteError struct {
	Status int
	Detail string
}

func (e *RemoteError) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("the registry answered %d %s", e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("the registry answered %d: %s", e.Status, e.Detail)
}

// Transient reports whether err may go away on its own (the network, a
// registry restarting or busy): the request is tried again later.
func Transient(err error) bool {
	var re *RemoteError
	if errors.As(err, &re) {
		return re.Status >= 500 || re.Status == http.StatusTooManyRequests || re.Status == http.StatusRequestTimeout
	}
	return err != nil
}

// RemoteRequest is what a registry says of a request of the office.
type RemoteRequest struct {
	ID           string     `json:"id"`
	CaseRef      string     `json:"case_ref"`
	From         time.Time  `json:"from"`
	To           time.Time  `json:"to"`
	Sites        []string   `json:"sites"`
	Status       Status     `json:"status"`
	CreatedAt    time.Time  `json:"created_at"`
	DecisionNote string     `json:"decision_note"`
	ExpiresAt    *time.Time `json:"expires_at"`
	ExportDigest string     `json:"export_digest"`
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 30 * time.Second}
}

// do sends a request with the registry's token and decodes a JSON answer
// into out (nil: none expected).
func (c *Client) do(ctx context.Context, reg *Registry, method, path string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, reg.URL+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+reg.Token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return fmt.Errorf("reach %s: %w", reg.Name, scrub(err, reg))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("read the answer of %s: %w", reg.Name, scrub(err, reg))
	}
	if resp.StatusCode != want {
		var p struct {
			Detail string `json:"detail"`
		}
		json.Unmarshal(data, &p)
		return &RemoteError{Status: resp.StatusCode, Detail: p.Detail}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("the answer of %s is not what the registry sends: %w", reg.Name, err)
	}
	return nil
}

// scrub keeps the token out of an error (a URL never holds it, but be
// sure).
func scrub(err error, reg *Registry) error {
	if reg.Token != "" && strings.Contains(err.Error(), reg.Token) {
		return errors.New(strings.ReplaceAll(err.Error(), reg.Token, "…"))
	}
	return err
}

// Sites lists the registry's sites and areas.
func (c *Client) Sites(ctx context.Context, reg *Registry) ([]RemoteSite, error) {
	var out struct {
		Sites []RemoteSite `json:"sites"`
	}
	if err := c.do(ctx, reg, "GET", "/v1/sites", nil, http.StatusOK, &out); err != nil {
		return nil, err
	}
	return out.Sites, nil
}

// File files a trace request and returns the registry's id for it.
func (c *Client) File(ctx context.Context, reg *Registry, in *registry.TraceInput) (string, error) {
	var out struct {
		ID string `json:"id"`
	}
	if err := c.do(ctx, reg, "POST", "/v1/trace-requests", in, http.StatusCreated, &out); err != nil {
		return "", err
	}
	if !registry.ValidID(out.ID) {
		return "", fmt.Errorf("%s answered a malformed request id", reg.Name)
	}
	return out.ID, nil
}

// Get returns a request's state.
func (c *Client) Get(ctx context.Context, reg *Registry, id string) (*RemoteRequest, error) {
	var out RemoteRequest
	if err := c.do(ctx, reg, "GET", "/v1/trace-requests/"+id, nil, http.StatusOK, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// List returns the office's requests at the registry, newest first.
func (c *Client) List(ctx context.Context, reg *Registry) ([]RemoteRequest, error) {
	var out struct {
		Requests []RemoteRequest `json:"requests"`
	}
	if err := c.do(ctx, reg, "GET", "/v1/trace-requests", nil, http.StatusOK, &out); err != nil {
		return nil, err
	}
	return out.Requests, nil
}

// Withdraw withdraws a request before its export.
func (c *Client) Withdraw(ctx context.Context, reg *Registry, id string) error {
	return c.do(ctx, reg, "POST", "/v1/trace-requests/"+id+"/withdraw", nil, http.StatusOK, nil)
}

// Download fetches the export of an approved request into w and returns
// its hex SHA-256, checked against the answer's Repr-Digest and size. The
// registry records the export before it sends the first byte: a download
// that breaks off cannot be repeated (ErrBrokenOff).
func (c *Client) Download(ctx context.Context, reg *Registry, id string, w io.Writer) (string, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", reg.URL+"/v1/trace-requests/"+id+"/export", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+reg.Token)
	hc := *c.http()
	hc.Timeout = 30 * time.Minute // a large bundle; the registry bounds its own side
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("reach %s: %w", reg.Name, scrub(err, reg))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var p struct {
			Detail string `json:"detail"`
		}
		json.Unmarshal(data, &p)
		return "", &RemoteError{Status: resp.StatusCode, Detail: p.Detail}
	}
	want, ok := reprDigest(resp.Header.Get("Repr-Digest"))
	if !ok {
		return "", fmt.Errorf("%w: %s sent no Repr-Digest", ErrBrokenOff, reg.Name)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), resp.Body)
	switch {
	case err != nil:
		return "", fmt.Errorf("%w: %v", ErrBrokenOff, scrub(err, reg))
	case resp.ContentLength >= 0 && n != resp.ContentLength:
		return "", fmt.Errorf("%w: %d of %d bytes", ErrBrokenOff, n, resp.ContentLength)
	}
	got := h.Sum(nil)
	if !bytes.Equal(got, want) {
		return "", fmt.Errorf("%w: the bundle's SHA-256 differs from the Repr-Digest %s sent", ErrBrokenOff, reg.Name)
	}
	return hex.EncodeToString(got), nil
}

// ErrBrokenOff is a download that did not arrive whole.
var ErrBrokenOff = errors.New("the download broke off")

// reprDigest parses "sha-256=:BASE64:".
func reprDigest(h string) ([]byte, bool) {
	for _, part := range strings.Split(h, ",") {
		v, ok := strings.CutPrefix(strings.TrimSpace(part), "sha-256=:")
		if !ok || !strings.HasSuffix(v, ":") {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(v, ":"))
		if err == nil && len(b) == sha256.Size {
			return b, true
		}
	}
	return nil, false
}
