package mail_test

import (
	"context"
	"strings"
	"testing"

	"github.com/cityhall/registry/registry/mail"
	"github.com/cityhall/registry/registry/mail/mailtest"
)

// TestSendOverSTARTTLS sends to a real SMTP server that requires STARTTLS,
// trusting its CA; without the CA the certificate is refused.
func TestSendOverSTARTTLS(t *testing.T) {
	srv := mailtest.Start(t)
	m, err := mail.New(mail.Config{URL: srv.URL, From: "registry@musterstadt.de", CAFile: srv.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(context.Background(), []string{"dsb@musterstadt.de"}, "Anfrage GA-2026-0900 wartet", "Eine Anfrage wartet auf Ihre Freigabe.\n"); err != nil {
		t.Fatalf("Send: %v", err)
	}
	msgs := srv.Wait(t, 1)
	if !strings.Contains(msgs[0], "Subject: Anfrage GA-2026-0900 wartet") || !strings.Contains(msgs[0], "dsb@musterstadt.de") {
		t.Errorf("received:\n%s", msgs[0])
	}
	untrusted, err := mail.New(mail.Config{URL: srv.URL, From: "registry@musterstadt.de"})
	if err != nil {
		t.Fatal(err)
	}
	if err := untrusted.Send(context.Background(), []string{"dsb@musterstadt.de"}, "x", "x"); err == nil {
		t.Errorf("a server certificate of an unknown CA was accepted")
	}
}

func TestConfigRefusals(t *testing.T) {
	for _, c := range []mail.Config{
		{URL: "http://x", From: "a@b.de"},
		{URL: "smtp://user:pw@x", From: "a@b.de"},
		{URL: "smtp://x", From: "not an address"},
		{URL: "smtp+plain://x", From: "a@b.de", Username: "u", Password: "p"},
		{URL: "smtp://x:99999", From: "a@b.de"},
	} {
		if _, err := mail.New(c); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
}
