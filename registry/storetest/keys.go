package storetest

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/cityhall/registry/registry"
)

func testTokens(t *testing.T, s registry.Store) {
	ctx := context.Background()
	_, desk := registry.NewToken(registry.RoleIntake, "rathaus", "Pforte", t0.Add(time.Minute))
	_, office := registry.NewToken(registry.RoleHealthOffice, "", "Gesundheitsamt", t0)
	for _, tok := range []*registry.Token{desk, office} {
		if err := s.CreateToken(ctx, "dpo:anna", tok); err != nil {
			t.Fatalf("CreateToken() = %v", err)
		}
	}
	got, err := s.FindTokenByHash(ctx, desk.Hash)
	if err != nil {
		t.Fatalf("FindTokenByHash() = %v", err)
	}
	if got.ID != desk.ID || got.Role != desk.Role || got.Site != "rathaus" || got.Label != "Pforte" ||
		!bytes.Equal(got.Hash, desk.Hash) || !got.CreatedAt.Equal(desk.CreatedAt) || got.RevokedAt != nil {
		t.Errorf("FindTokenByHash() = %+v, want %+v", got, desk)
	}
	_, err = s.FindTokenByHash(ctx, registry.HashToken("rgt_unknown"))
	wantCode(t, err, registry.ENOTFOUND)

	_, clash := registry.NewToken(registry.RoleDPO, "", "", t0)
	clash.Hash = desk.Hash
	wantCode(t, s.CreateToken(ctx, "dpo:anna", clash), registry.ECONFLICT)

	list, err := s.Tokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != office.ID || list[1].ID != desk.ID {
		t.Errorf("Tokens() = %v, want [%s %s] (oldest first)", list, office.ID, desk.ID)
	}

	revokedAt := t0.Add(time.Hour)
	wantCode(t, s.RevokeToken(ctx, "dpo:anna", desk.ID, revokedAt), "")
	wantCode(t, s.RevokeToken(ctx, "dpo:anna", desk.ID, revokedAt), registry.ECONFLICT)
	wantCode(t, s.RevokeToken(ctx, "dpo:anna", "0123456789abcdef", revokedAt), registry.ENOTFOUND)
	got, err = s.FindTokenByHash(ctx, desk.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if got.RevokedAt == nil || !got.RevokedAt.Equal(revokedAt) {
		t.Errorf("RevokedAt = %v, want %v", got.RevokedAt, revokedAt)
	}

	created := wantEvents(t, s, registry.AuditTokenCreated, 2)
	if created[0].Subject != desk.ID || created[0].Actor != "dpo:anna" {
		t.Errorf("token.created subject %q actor %q, want %q dpo:anna", created[0].Subject, created[0].Actor, desk.ID)
	}
	if revoked := wantEvents(t, s, registry.AuditTokenRevoked, 1); revoked[0].Subject != desk.ID {
		t.Errorf("token.revoked subject = %q, want %q", revoked[0].Subject, desk.ID)
	}
	for _, e := range allEvents(t, s) {
		if bytes.Contains([]byte(e.Details), desk.Hash) {
			t.Errorf("audit event %d holds a token hash", e.Seq)
		}
	}
}

func testEpochKeys(t *testing.T, s registry.Store) {
	ctx := context.Background()
	day := registry.DayOf(t0)
	keys := []*registry.EpochKey{
		{Day: day.AddDays(1), Recipient: "age1second", CreatedAt: t0},
		{Day: day, Recipient: "age1first", CreatedAt: t0},
	}
	if err := s.AddEpochKeys(ctx, registry.ActorSystem, keys); err != nil {
		t.Fatalf("AddEpochKeys() = %v", err)
	}
	got, err := s.EpochKey(ctx, day)
	if err != nil {
		t.Fatalf("EpochKey() = %v", err)
	}
	if got.Day != day || got.Recipient != "age1first" || !got.CreatedAt.Equal(t0) || got.DestroyedAt != nil {
		t.Errorf("EpochKey() = %+v", got)
	}
	_, err = s.EpochKey(ctx, day.AddDays(5))
	wantCode(t, err, registry.ENOTFOUND)

	dup := []*registry.EpochKey{
		{Day: day.AddDays(2), Recipient: "age1third", CreatedAt: t0},
		{Day: day, Recipient: "age1again", CreatedAt: t0},
	}
	wantCode(t, s.AddEpochKeys(ctx, registry.ActorSystem, dup), registry.ECONFLICT)
	_, err = s.EpochKey(ctx, day.AddDays(2))
	wantCode(t, err, registry.ENOTFOUND) // the failed batch stored nothing

	all, err := s.EpochKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Day != day || all[1].Day != day.AddDays(1) {
		t.Errorf("EpochKeys() = %v, want days %s, %s", all, day, day.AddDays(1))
	}
	ev := wantEvents(t, s, registry.AuditEpochKeysCreated, 1)[0]
	if got, want := ev.Details, `{"days":["`+string(day.AddDays(1))+`","`+string(day)+`"]}`; got != want {
		t.Errorf("audit details = %s, want %s", got, want)
	}
}

func testPinRecipients(t *testing.T, s registry.Store) {
	ctx := context.Background()
	an := anna(t, s)
	tests := []struct {
		fingerprint string
		changed     bool
	}{
		{"SHA256:first", true},
		{"SHA256:first", false},
		{"SHA256:second", true},
		{"SHA256:second", false},
	}
	for _, tt := range tests {
		changed, err := s.PinRecipients(ctx, "dpo:anna", tt.fingerprint, []registry.RecipientsSignature{an.RecipientsSignature(tt.fingerprint)})
		if err != nil || changed != tt.changed {
			t.Errorf("PinRecipients(%s) = %v, %v; want %v, nil", tt.fingerprint, changed, err, tt.changed)
		}
	}
	// A change without a valid signature is refused and changes nothing.
	for _, sig := range [][]byte{nil, an.Key.Sign(registry.PurposeRecipients, []byte("SHA256:other")), an.Key.Sign(registry.PurposeApprover, []byte("SHA256:third"))} {
		sigs := []registry.RecipientsSignature{{Key: an.Key.ID(), Signature: sig}}
		if _, err := s.PinRecipients(ctx, "dpo:anna", "SHA256:third", sigs); registry.ErrorCode(err) != registry.EFORBIDDEN {
			t.Errorf("PinRecipients(unsigned change) = %v, want EFORBIDDEN", err)
		}
	}
	unknown := []registry.RecipientsSignature{{Key: "0123456789abcdef", Signature: an.Key.Sign(registry.PurposeRecipients, []byte("SHA256:third"))}}
	if _, err := s.PinRecipients(ctx, "dpo:anna", "SHA256:third", unknown); registry.ErrorCode(err) != registry.EFORBIDDEN {
		t.Errorf("PinRecipients(unknown signer) = %v, want EFORBIDDEN", err)
	}
	// From two persons on, a change needs both: one is not enough.
	bert := AddSigner(t, s, "Bert", t0, an)
	if _, err := s.PinRecipients(ctx, "dpo:anna", "SHA256:third", []registry.RecipientsSignature{an.RecipientsSignature("SHA256:third")}); registry.ErrorCode(err) != registry.EFORBIDDEN {
		t.Errorf("PinRecipients(one of two persons) = %v, want EFORBIDDEN", err)
	}
	if changed, err := s.PinRecipients(ctx, "dpo:anna", "SHA256:third", []registry.RecipientsSignature{an.RecipientsSignature("SHA256:third"), bert.RecipientsSignature("SHA256:third")}); err != nil || !changed {
		t.Errorf("PinRecipients(two persons) = %v, %v", changed, err)
	}
	if pinned, problems, err := s.Recipients(ctx); err != nil || pinned != "SHA256:third" || len(problems) != 0 {
		t.Errorf("Recipients() = %q, %v, %v; want SHA256:third", pinned, problems, err)
	}
	evs := wantEvents(t, s, registry.AuditRecipientsChanged, 3)
	if got, want := details(t, evs[1]), map[string]any{"old": "SHA256:first", "new": "SHA256:second"}; got["old"] != want["old"] || got["new"] != want["new"] {
		t.Errorf("audit details = %v, want %v", got, want)
	}
}
