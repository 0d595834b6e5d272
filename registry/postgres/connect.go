package postgres

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/lib/pq"
	"golang.org/x/sys/unix"

	"github.com/cityhall/registry/registry"
)

// Connection timeouts. A database that does not answer must cost a caller
// seconds, not minutes: connecting gives up after connectTimeout, and a
// connection whose sent data the server's host does not acknowledge for
// userTimeout (a network black hole, a host that died) is dropped by the
// kernel. A server that accepts but never answers (a stopped process)
// is bounded by the callers' contexts.
const (
	connectTimeout = 5 * time.Second
	keepAlive      = 5 * time.Second
	userTimeout    = 10 * time.Second
)

// dialer dials PostgreSQL with bounded timeouts and TCP keep-alives.
type dialer struct{ d net.Dialer }

func newDialer() *dialer {
	return &dialer{d: net.Dialer{Timeout: connectTimeout, KeepAlive: keepAlive, Control: setUserTimeout}}
}

func (d *dialer) Dial(network, address string) (net.Conn, error) {
	return d.d.Dial(network, address)
}

func (d *dialer) DialTimeout(network, address string, timeout time.Duration) (net.Conn, error) {
	nd := d.d
	nd.Timeout = min(timeout, connectTimeout)
	return nd.Dial(network, address)
}

func (d *dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return d.d.DialContext(ctx, network, address)
}

// setUserTimeout sets TCP_USER_TIMEOUT on TCP sockets (Linux); elsewhere,
// or on unix sockets, it does nothing.
func setUserTimeout(network, _ string, c syscall.RawConn) error {
	if !strings.HasPrefix(network, "tcp") {
		return nil
	}
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(userTimeout/time.Millisecond))
	})
	if err != nil {
		return err
	}
	if errors.Is(serr, unix.ENOPROTOOPT) {
		return nil
	}
	return serr
}

// openDB returns a pool over dsn that dials with newDialer.
func openDB(dsn string) (*sql.DB, pq.Config, error) {
	cfg, err := pq.NewConfig(dsn)
	if err != nil {
		return nil, pq.Config{}, registry.Errorf(registry.EINVALID, "The PostgreSQL connection string is malformed.")
	}
	if cfg.ConnectTimeout <= 0 {
		// lib/pq bounds the TCP connect and the startup handshake (a server
		// that accepts but never answers) only with connect_timeout.
		cfg.ConnectTimeout = connectTimeout
	}
	// Sealed records and keys travel as bytea parameters: in binary, a
	// stored record is its own 3.6 KB on the wire instead of 7.2 KB of hex
	// that lib/pq encodes and the server decodes again, and a query with
	// parameters needs one round trip instead of two.
	cfg.BinaryParameters = true
	c, err := pq.NewConnectorConfig(cfg)
	if err != nil {
		return nil, pq.Config{}, registry.Errorf(registry.EINVALID, "The PostgreSQL connection string is malformed.")
	}
	c.Dialer(newDialer())
	return sql.OpenDB(c), cfg, nil
}

// connectError says which of the usual faults kept the first connection
// from working, so that the operator knows what to fix. It names the host,
// port, database and user (never a password), and keeps the driver's
// error in the chain for logs.
func connectError(err error, cfg pq.Config) error {
	where := fmt.Sprintf("%s:%d", cfg.Host, cfg.Port)
	if strings.HasPrefix(cfg.Host, "/") {
		where = "the socket in " + cfg.Host
	}
	msg := classifyConnect(err, cfg, where)
	return &openError{registry.Errorf(registry.EUNAVAILABLE, "%s", msg), err}
}

func classifyConnect(err error, cfg pq.Config, where string) string {
	var pqErr *pq.Error
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var unknownAuthority x509.UnknownAuthorityError
	var hostname x509.HostnameError
	switch {
	case errors.As(err, &pqErr):
		return classifyServer(pqErr, cfg)
	case errors.Is(err, pq.ErrSSLNotSupported):
		return fmt.Sprintf("PostgreSQL at %s does not offer TLS, but sslmode=%s requires it: enable ssl on the server, or (on a trusted local network only) set sslmode=disable.", where, cfg.SSLMode)
	case errors.As(err, &certErr), errors.As(err, &unknownAuthority), errors.As(err, &hostname):
		return fmt.Sprintf("The TLS certificate of PostgreSQL at %s is not trusted (sslmode=%s): install the CA with sslrootcert=FILE, and check that the host name matches the certificate.", where, cfg.SSLMode)
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("The PostgreSQL host %q cannot be resolved: check the host name in the connection string.", cfg.Host)
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ENOENT):
		return fmt.Sprintf("PostgreSQL at %s refused the connection: is the server running and listening there (listen_addresses, port)?", where)
	case isTimeout(err):
		return fmt.Sprintf("PostgreSQL at %s did not answer within %v: is the host up, and does a firewall let the connection through?", where, connectTimeout)
	}
	return fmt.Sprintf("PostgreSQL at %s cannot be reached.", where)
}

// classifyServer explains an error the server sent while connecting.
func classifyServer(e *pq.Error, cfg pq.Config) string {
	switch e.Code {
	case "28P01": // invalid_password
		return fmt.Sprintf("PostgreSQL refused the password of user %q: check PGPASSWORD, ~/.pgpass or the password in REGISTRY_DB.", cfg.User)
	case "28000": // invalid_authorization_specification: pg_hba.conf
		if cfg.SSLMode == "disable" {
			return fmt.Sprintf("PostgreSQL refused user %q on database %q from this host: pg_hba.conf has no entry for it without TLS (use sslmode=require or verify-full, or add a pg_hba.conf line).", cfg.User, cfg.Database)
		}
		return fmt.Sprintf("PostgreSQL refused user %q on database %q from this host: pg_hba.conf has no entry that allows it.", cfg.User, cfg.Database)
	case "3D000": // invalid_catalog_name
		return fmt.Sprintf("PostgreSQL has no database %q: create it (createdb -O %s %s) or correct the name.", cfg.Database, cfg.User, cfg.Database)
	case "53300": // too_many_connections
		return "PostgreSQL has no connection slot left (max_connections): try again, or raise the limit."
	case "57P03": // cannot_connect_now
		return "PostgreSQL is starting up or shutting down: try again in a moment."
	}
	return fmt.Sprintf("PostgreSQL refused the connection (SQLSTATE %s).", e.Code)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}
