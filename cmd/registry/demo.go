package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/cityhall/registry/crypto"
	"github.com/cityhall/registry/registry"
)

// Demo file names under --demo-dir.
const (
	demoIdentity   = "demo-health-office.key"
	demoRecipients = "demo-recipients.txt"
	demoToken      = "demo-intake.token"
	demoKeystore   = "keystore"
	demoPassword   = "demo-desk.password"
	demoSite       = "rathaus"
	demoLogin      = "pforte"
)

// setupDemo fills in what is not configured with demo material under
// o.demoDir, creating it when missing, and prints a loud warning. The demo
// identity sits next to the data it opens, which defeats the whole point of
// the product: it is for trying things out only.
func (a *app) setupDemo(ctx context.Context, store registry.Store, o *serveOptions) error {
	if err := os.MkdirAll(o.demoDir, 0o700); err != nil {
		return fmt.Errorf("create demo directory: %w", err)
	}
	if o.recipients == "" {
		path, err := a.demoRecipients(o.demoDir)
		if err != nil {
			return err
		}
		o.recipients = path
	}
	if o.keystore == "" {
		o.keystore = filepath.Join(o.demoDir, demoKeystore)
	}
	token, err := a.demoToken(ctx, store, o.demoDir)
	if err != nil {
		return err
	}
	if err := a.demoSite(ctx, store); err != nil {
		return err
	}
	password, err := a.demoDesk(ctx, store, o.demoDir)
	if err != nil {
		return err
	}
	a.printDemoBanner(o, token, password)
	return nil
}

// demoSite configures the demo's site when it is missing.
func (a *app) demoSite(ctx context.Context, store registry.Store) error {
	if _, err := store.Site(ctx, demoSite); err == nil {
		return nil
	} else if registry.ErrorCode(err) != registry.ENOTFOUND {
		return err
	}
	site := &registry.Site{
		Code: demoSite, Name: "Rathaus Musterstadt (DEMO)", Address: "Marktplatz 1, 12345 Musterstadt",
		Areas:    []registry.Area{{Name: "Bürgerbüro", Capacity: 8}, {Name: "Standesamt", Capacity: 4}, {Name: "Bauamt"}},
		Capacity: 30, Opens: "08:00", Closes: "18:00", SelfCheckin: true, FullNotice: true,
		Controller: "Stadt Musterstadt, Der Bürgermeister, Marktplatz 1, 12345 Musterstadt (DEMO)",
		DPOContact: "Datenschutzbeauftragte der Stadt Musterstadt, datenschutz@musterstadt.example (DEMO)",
	}
	if err := store.PutSite(ctx, registry.ActorSystem, site, true); err != nil {
		return fmt.Errorf("create demo site: %w", err)
	}
	return nil
}

// demoDesk returns the demo desk account's password, creating the
// account (without the first-sign-in change) when it is missing.
func (a *app) demoDesk(ctx context.Context, store registry.Store, dir string) (string, error) {
	path := filepath.Join(dir, demoPassword)
	if _, err := store.User(ctx, demoLogin); err == nil {
		b, err := os.ReadFile(path)
		if err != nil {
			return "(unknown: registry users reset-password " + demoLogin + ")", nil
		}
		return strings.TrimSpace(string(b)), nil
	} else if registry.ErrorCode(err) != registry.ENOTFOUND {
		return "", err
	}
	pw := registry.NewPassword()
	u := &registry.User{Login: demoLogin, Name: "Demo-Pforte", Role: registry.UserDesk, Sites: []string{demoSite}, PasswordHash: crypto.HashPassword(pw)}
	if err := store.CreateUser(ctx, registry.ActorSystem, u); err != nil {
		return "", fmt.Errorf("create demo desk account: %w", err)
	}
	if err := os.WriteFile(path, []byte(pw+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write demo desk password: %w", err)
	}
	return pw, nil
}

func (a *app) demoRecipients(dir string) (string, error) {
	idPath, rPath := filepath.Join(dir, demoIdentity), filepath.Join(dir, demoRecipients)
	if _, err := os.Stat(rPath); err == nil {
		return rPath, nil
	}
	rcpt, err := crypto.WriteIdentityFile(idPath, crypto.Hybrid, a.now())
	if err != nil {
		return "", fmt.Errorf("create demo health-office identity: %w", err)
	}
	body := "# DEMO health-office recipient, created by 'registry serve --demo'. Not for real data.\n" + rcpt + "\n"
	if err := os.WriteFile(rPath, []byte(body), 0o644); err != nil {
		return "", fmt.Errorf("write demo recipients: %w", err)
	}
	return rPath, nil
}

// demoToken returns the demo intake token, reusing the one saved in the
// demo directory while the database still knows it.
func (a *app) demoToken(ctx context.Context, store registry.Store, dir string) (string, error) {
	path := filepath.Join(dir, demoToken)
	b, err := os.ReadFile(path)
	if err == nil {
		secret := strings.TrimSpace(string(b))
		t, err := store.FindTokenByHash(ctx, registry.HashToken(secret))
		if err == nil && t.RevokedAt == nil {
			return secret, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read demo token: %w", err)
	}
	secret, t := registry.NewToken(registry.RoleIntake, "", "demo (make run)", a.now())
	if err := store.CreateToken(ctx, registry.ActorSystem, t); err != nil {
		return "", fmt.Errorf("create demo token: %w", err)
	}
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write demo token: %w", err)
	}
	return secret, nil
}

func (a *app) printDemoBanner(o *serveOptions, token, password string) {
	bar := strings.Repeat("#", 78)
	tokenFile := filepath.Join(o.demoDir, demoToken)
	fmt.Fprintf(a.stderr, `%[1]s
##  DEMO MODE: NOT FOR REAL VISITOR DATA
##
##  The health-office identity below was created on THIS machine, so this
##  machine can read everything it stores. In production the identity is
##  created with 'registry keygen' on the health office's own machine, and
##  the server only ever gets the public recipients file.
%[1]s
  health-office identity (DEMO):  %[2]s
  recipients file:                %[3]s
  epoch key store:                %[4]s
  database:                       %[5]s
  intake token (DEMO):            %[6]s   (also in %[7]s)

  Register a visitor:

  curl -sS http://%[8]s/v1/visits \
    -H "Authorization: Bearer $(cat %[7]s)" \
    -H 'Content-Type: application/json' \
    -d '{"site":"rathaus","area":"Bürgerbüro","given_name":"Erika","family_name":"Mustermann","street":"Heidestraße","house_number":"17","postcode":"51147","city":"Köln","phone":"+49 221 1234567","host":"Frau Schmidt"}'

  Reception desk (Pforte):        http://%[8]s/desk/
    user name %[9]s, password %[10]s   (also in %[11]s)
  Visitors' own check-in page:    http://%[8]s/checkin/rathaus

  The whole story in one step (in another terminal):

  bin/registry demo tour --server http://%[8]s

  The other commands on this demo installation need its settings:

  export REGISTRY_DB=%[12]s REGISTRY_KEYSTORE=%[4]s REGISTRY_RECIPIENTS=%[3]s
%[1]s
`, bar, filepath.Join(o.demoDir, demoIdentity), o.recipients, o.keystore, describeDB(a.db), token, tokenFile, o.listen,
		demoLogin, password, filepath.Join(o.demoDir, demoPassword), a.db)
}
