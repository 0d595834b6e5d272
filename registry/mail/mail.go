// Package mail sends the registry's notifications by e-mail over SMTP
// (github.com/wneessen/go-mail): to the DPO that a request waits, to the
// health office that a request changed. A notification names a case
// reference and a link, never personal data; the message says so in its
// own words only.
package mail

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/mail"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/cityhall/registry/registry"
)

// Config is the SMTP server notifications go through.
type Config struct {
	// URL names the server and how to reach it:
	// smtp://host[:587] speaks STARTTLS and refuses to send without it;
	// smtps://host[:465] speaks TLS from the start;
	// smtp+plain://host[:25] sends without TLS (a relay on the same
	// machine only).
	URL string
	// Username and Password log in (PLAIN or LOGIN after TLS); none: no
	// login. The password comes from a file, never a flag.
	Username, Password string
	// From is the sender address.
	From string
	// CAFile, when set, is the PEM file of the CA that signed the
	// server's certificate (an internal relay); else the system's.
	CAFile string
}

// Mailer sends notifications.
type Mailer struct {
	host string
	opts []gomail.Option
	from string
}

// New checks cfg and returns a Mailer.
func New(cfg Config) (*Mailer, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Host == "" || u.User != nil || u.Path != "" && u.Path != "/" {
		return nil, registry.Errorf(registry.EINVALID, "The SMTP URL must be smtp://HOST[:PORT], smtps://HOST[:PORT] or smtp+plain://HOST[:PORT] (the password goes in a file).")
	}
	if _, err := mail.ParseAddress(cfg.From); err != nil || cfg.From == "" {
		return nil, registry.Errorf(registry.EINVALID, "The sender address %q is not an e-mail address.", cfg.From)
	}
	host := u.Hostname()
	tc := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, registry.Errorf(registry.EINVALID, "Cannot read the SMTP CA file %s: %v.", cfg.CAFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, registry.Errorf(registry.EINVALID, "The SMTP CA file %s holds no PEM certificate.", cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	opts := []gomail.Option{gomail.WithTimeout(20 * time.Second), gomail.WithTLSConfig(tc)}
	port := 0
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil || port <= 0 || port > 65535 {
			return nil, registry.Errorf(registry.EINVALID, "The SMTP port %q is not a port.", p)
		}
	}
	switch u.Scheme {
	case "smtp":
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory), gomail.WithPort(or(port, 587)))
	case "smtps":
		opts = append(opts, gomail.WithSSL(), gomail.WithPort(or(port, 465)))
	case "smtp+plain":
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS), gomail.WithPort(or(port, 25)))
		if cfg.Username != "" {
			return nil, registry.Errorf(registry.EINVALID, "A login over smtp+plain would send the password in clear: use smtp:// (STARTTLS) or smtps://.")
		}
	default:
		return nil, registry.Errorf(registry.EINVALID, "The SMTP URL's scheme %q is not smtp, smtps or smtp+plain.", u.Scheme)
	}
	if cfg.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover), gomail.WithUsername(cfg.Username), gomail.WithPassword(cfg.Password))
	}
	return &Mailer{host: host, opts: opts, from: cfg.From}, nil
}

func or(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// Send sends one plain-text message to the recipients.
func (m *Mailer) Send(ctx context.Context, to []string, subject, body string) error {
	msg := gomail.NewMsg()
	if err := msg.From(m.from); err != nil {
		return fmt.Errorf("sender: %w", err)
	}
	if err := msg.To(to...); err != nil {
		return registry.Errorf(registry.EINVALID, "A recipient is not an e-mail address: %v.", err)
	}
	msg.Subject(subject)
	msg.SetDate()
	msg.SetMessageID()
	msg.SetBodyString(gomail.TypeTextPlain, body)
	c, err := gomail.NewClient(m.host, m.opts...)
	if err != nil {
		return fmt.Errorf("smtp client: %w", err)
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("send mail via %s: %w", m.host, err)
	}
	return nil
}

// Recipients parses a comma-separated list of addresses.
func Recipients(list string) ([]string, error) {
	var out []string
	for _, a := range strings.Split(list, ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		addr, err := mail.ParseAddress(a)
		if err != nil {
			return nil, registry.Errorf(registry.EINVALID, "%q is not an e-mail address.", a)
		}
		out = append(out, addr.Address)
	}
	return out, nil
}
