package httpapi

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"time"
)

// DefaultRequestTimeout bounds how long a request of the API or of a page
// may take before it is answered 503 with Retry-After. The database driver
// does not give up on a database that accepts connections but never
// answers (a stopped process), so the answer cannot wait for it; the
// handler goes on in the background and its late result is dropped. A
// registration answered this way may still be committed afterwards: the
// client retries with the same Idempotency-Key and gets the stored visit.
const DefaultRequestTimeout = 5 * time.Second

// deadline runs next with a context that ends after d and answers with
// onTimeout when next has not finished by then. The clock starts once the
// request body (up to limit+1 bytes) is in memory: a client that stalls
// its body is the server's read timeout's business (408), not the
// request's (503, which would tell it to retry what it never sent). A
// body read that fails is answered with onBodyError (see bodyError). next writes into a buffer,
// which is copied to w when it finishes in time, so that a late handler
// can never write into an answered response. Panics in next are re-raised
// in the serving goroutine. Streaming routes (the export download) must
// not be wrapped.
func deadline(d time.Duration, limit int64, onTimeout http.HandlerFunc, onBodyError func(http.ResponseWriter, *http.Request, error), next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A body that broke off or stalled ends the request here: the
		// connection's context is cancelled with it.
		if err := prefetchBody(r, limit); err != nil && onBodyError != nil {
			onBodyError(w, r, bodyError(err))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		bw := &bufferedWriter{header: http.Header{}}
		done := make(chan struct{})
		panicked := make(chan any, 1)
		go func() {
			defer func() {
				if p := recover(); p != nil {
					panicked <- p
				}
			}()
			next.ServeHTTP(bw, r.WithContext(ctx))
			close(done)
		}()
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case p := <-panicked:
			panic(p)
		case <-done:
			// Also when the client went away (its request context ended):
			// a half-closed connection may still read the answer.
			bw.copyTo(w)
		case <-timer.C:
			bw.abandon()
			onTimeout(w, r)
		}
	})
}

// prefetchBody reads up to limit+1 bytes of r's body into memory and
// replaces the body with them, followed by the error the read ended with
// (a read timeout, a broken connection), which it also returns. More than
// limit bytes stay for the handler's own limit to refuse (413).
func prefetchBody(r *http.Request, limit int64) error {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	var buf bytes.Buffer
	_, err := io.Copy(&buf, io.LimitReader(r.Body, limit+1))
	r.Body = &prefetched{Reader: bytes.NewReader(buf.Bytes()), err: err, orig: r.Body}
	return err
}

// prefetched is a body read ahead: its bytes, then its error.
type prefetched struct {
	*bytes.Reader
	err  error
	orig io.ReadCloser
}

func (p *prefetched) Read(b []byte) (int, error) {
	n, err := p.Reader.Read(b)
	if err == io.EOF && p.err != nil {
		return n, p.err
	}
	return n, err
}

func (p *prefetched) Close() error { return p.orig.Close() }

// bufferedWriter collects a handler's response.
type bufferedWriter struct {
	mu        sync.Mutex
	header    http.Header
	status    int
	body      bytes.Buffer
	abandoned bool
}

func (b *bufferedWriter) Header() http.Header { return b.header }

func (b *bufferedWriter) WriteHeader(status int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.status == 0 {
		b.status = status
	}
}

func (b *bufferedWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.abandoned {
		return 0, http.ErrHandlerTimeout
	}
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

func (b *bufferedWriter) abandon() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.abandoned = true
}

func (b *bufferedWriter) copyTo(w http.ResponseWriter) {
	b.mu.Lock()
	defer b.mu.Unlock()
	h := w.Header()
	for k, v := range b.header {
		h[k] = v
	}
	if b.status == 0 {
		b.status = http.StatusOK
	}
	w.WriteHeader(b.status)
	w.Write(b.body.Bytes())
}
