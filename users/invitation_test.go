package users

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// newInviteStore returns a Store with a fake clock and an admin, the first
// account.
func newInviteStore(t *testing.T, opts Options) (*Store, *bbolt.DB, *fakeClock, User) {
	t.Helper()
	clock := newFakeClock()
	opts.Now = clock.Now
	s, db := newTestStore(t, opts)
	admin := mustSignUp(t, s, "admin@example.com", "Admin", testPassword)
	return s, db, clock, admin
}

func mustInvite(t *testing.T, s *Store, email string, role Role, by string, ttl time.Duration) (Invitation, string) {
	t.Helper()
	inv, token, err := s.CreateInvitation(context.Background(), email, role, by, ttl)
	if err != nil {
		t.Fatalf("CreateInvitation(%q): %v", email, err)
	}
	return inv, token
}

func TestCreateInvitation(t *testing.T) {
	ctx := context.Background()
	s, _, clock, admin := newInviteStore(t, Options{})

	cases := []struct {
		email, wantEmail string
		role             Role
		by               string
		ttl, wantTTL     time.Duration
	}{
		{"  Bob@Example.COM ", "bob@example.com", RoleViewer, admin.ID, 0, DefaultInvitationTTL},
		{"carol@example.com", "carol@example.com", RoleAdmin, "", -time.Hour, DefaultInvitationTTL},
		{"dave@example.com", "dave@example.com", RoleViewer, admin.ID, 2 * time.Hour, 2 * time.Hour},
	}
	ids := map[string]bool{}
	for _, c := range cases {
		inv, token := mustInvite(t, s, c.email, c.role, c.by, c.ttl)
		checkToken(t, token)
		if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(inv.ID) || ids[inv.ID] {
			t.Errorf("%s: ID %q not 128 bits of fresh hex", c.email, inv.ID)
		}
		ids[inv.ID] = true
		if strings.Contains(token, inv.ID) {
			t.Errorf("%s: the ID is part of the token", c.email)
		}
		want := Invitation{
			ID: inv.ID, Email: c.wantEmail, Role: c.role, OrgID: admin.OrgID, InvitedBy: c.by,
			CreatedAt: clock.Now(), ExpiresAt: clock.Now().Add(c.wantTTL),
		}
		if inv != want {
			t.Errorf("%s: invitation %+v, want %+v", c.email, inv, want)
		}
		got, err := s.Invitation(ctx, token)
		if err != nil || got != want {
			t.Errorf("%s: Invitation(token) = %+v, %v; want %+v", c.email, got, err, want)
		}
	}
	list, err := s.Invitations(ctx)
	if err != nil || len(list) != len(cases) {
		t.Fatalf("Invitations = %d, %v; want %d", len(list), err, len(cases))
	}
}

func TestInvitationTokenStoredOnlyAsHash(t *testing.T) {
	s, db, _, admin := newInviteStore(t, Options{})
	_, token := mustInvite(t, s, "bob@example.com", RoleViewer, admin.ID, 0)
	assertStoredUnder(t, db, bucketInvitations, token)
	assertSecretNotStored(t, db, token)
}

func TestCreateInvitationRefusals(t *testing.T) {
	ctx := context.Background()
	s, _, _, admin := newInviteStore(t, Options{ValidEmailDomain: "example.com"})
	viewer := mustSignUp(t, s, "viewer@example.com", "Viewer", testPassword)
	admin2 := mustSignUp(t, s, "admin2@example.com", "Admin 2", testPassword)
	if _, err := s.SetRole(ctx, admin2.ID, RoleAdmin); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDisabled(ctx, admin2.ID, true); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		desc  string
		email string
		role  Role
		by    string
		want  error
	}{
		{"invalid email", "bob", RoleViewer, admin.ID, ErrInvalidEmail},
		{"empty email", "", RoleViewer, admin.ID, ErrInvalidEmail},
		{"other domain", "bob@other.com", RoleViewer, admin.ID, ErrEmailDomain},
		{"subdomain", "bob@sub.example.com", RoleViewer, admin.ID, ErrEmailDomain},
		{"empty role", "bob@example.com", "", admin.ID, ErrInvalidRole},
		{"unknown role", "bob@example.com", "owner", admin.ID, ErrInvalidRole},
		{"role differs in case", "bob@example.com", "Admin", admin.ID, ErrInvalidRole},
		{"existing member", "viewer@example.com", RoleViewer, admin.ID, ErrEmailTaken},
		{"existing member, other case", " VIEWER@example.COM", RoleAdmin, "", ErrEmailTaken},
		{"existing admin", "admin@example.com", RoleAdmin, admin.ID, ErrEmailTaken},
		{"inviter is a viewer", "bob@example.com", RoleViewer, viewer.ID, ErrNotAdmin},
		{"inviter is a disabled admin", "bob@example.com", RoleViewer, admin2.ID, ErrNotAdmin},
		{"inviter unknown", "bob@example.com", RoleViewer, "nope", ErrNotAdmin},
	}
	for _, c := range cases {
		inv, token, err := s.CreateInvitation(ctx, c.email, c.role, c.by, 0)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: error %v, want %v", c.desc, err, c.want)
		}
		if token != "" || inv != (Invitation{}) {
			t.Errorf("%s: refused invitation returned %+v and a token", c.desc, inv)
		}
	}
	if list, _ := s.Invitations(ctx); len(list) != 0 {
		t.Errorf("refused invitations were stored: %+v", list)
	}

	// Before the first account there is no organization to join.
	empty, _ := newTestStore(t, Options{})
	if _, _, err := empty.CreateInvitation(ctx, "bob@example.com", RoleAdmin, "", 0); !errors.Is(err, ErrNoOrganization) {
		t.Errorf("no organization: error %v, want ErrNoOrganization", err)
	}
}

func TestReinviteReplaces(t *testing.T) {
	ctx := context.Background()
	s, _, clock, admin := newInviteStore(t, Options{})
	first, oldToken := mustInvite(t, s, "bob@example.com", RoleViewer, admin.ID, 0)
	clock.Advance(time.Minute)
	second, newToken := mustInvite(t, s, "BOB@example.com", RoleAdmin, admin.ID, 0)
	if first.ID == second.ID || oldToken == newToken {
		t.Fatal("re-invitation reused the ID or token")
	}
	if _, err := s.Invitation(ctx, oldToken); !errors.Is(err, ErrInvitationInvalid) {
		t.Errorf("old token: error %v, want ErrInvitationInvalid", err)
	}
	if _, err := s.AcceptInvitation(ctx, oldToken, "Bob", testPassword); !errors.Is(err, ErrInvitationInvalid) {
		t.Errorf("accept with old token: error %v, want ErrInvitationInvalid", err)
	}
	if _, err := s.RevokeInvitation(ctx, first.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("revoke replaced invitation: error %v, want ErrNotFound", err)
	}
	list, err := s.Invitations(ctx)
	if err != nil || len(list) != 1 || list[0] != second {
		t.Fatalf("Invitations = %+v, %v; want only the new one", list, err)
	}
	bob, err := s.AcceptInvitation(ctx, newToken, "Bob", testPassword)
	if err != nil || bob.Role != RoleAdmin {
		t.Fatalf("accept new token = %v, %v; want admin", bob, err)
	}
}

func TestInvitationExpiry(t *testing.T) {
	ctx := context.Background()
	s, db, clock, admin := newInviteStore(t, Options{})
	inv, token := mustInvite(t, s, "bob@example.com", RoleViewer, admin.ID, time.Hour)

	clock.Advance(time.Hour - time.Nanosecond)
	if _, err := s.Invitation(ctx, token); err != nil {
		t.Fatalf("just before expiry: %v", err)
	}
	clock.Advance(time.Nanosecond)
	if _, err := s.Invitation(ctx, token); !errors.Is(err, ErrInvitationInvalid) {
		t.Errorf("at expiry: error %v, want ErrInvitationInvalid", err)
	}
	if _, err := s.AcceptInvitation(ctx, token, "Bob", testPassword); !errors.Is(err, ErrInvitationInvalid) {
		t.Errorf("accept at expiry: error %v, want ErrInvitationInvalid", err)
	}
	if list, _ := s.Invitations(ctx); len(list) != 0 {
		t.Errorf("Invitations lists an expired invitation: %+v", list)
	}
	if _, err := s.RevokeInvitation(ctx, inv.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("revoke expired: error %v, want ErrNotFound", err)
	}
	if n, _ := s.Count(ctx); n != 1 {
		t.Errorf("Count = %d, want 1", n)
	}

	// The next invitation deletes expired ones.
	mustInvite(t, s, "carol@example.com", RoleViewer, admin.ID, 0)
	_ = db.View(func(tx *bbolt.Tx) error {
		if n := tx.Bucket(bucketInvitations).Stats().KeyN; n != 1 {
			t.Errorf("%d invitations stored, want 1 (the expired one deleted)", n)
		}
		if tx.Bucket(bucketInviteEmails).Get([]byte("bob@example.com")) != nil {
			t.Error("expired invitation's email index kept")
		}
		return nil
	})
}

func TestRevokeInvitation(t *testing.T) {
	ctx := context.Background()
	s, db, _, admin := newInviteStore(t, Options{})
	inv, token := mustInvite(t, s, "bob@example.com", RoleViewer, admin.ID, 0)
	keep, keepToken := mustInvite(t, s, "carol@example.com", RoleViewer, admin.ID, 0)

	got, err := s.RevokeInvitation(ctx, inv.ID)
	if err != nil || got != inv {
		t.Fatalf("RevokeInvitation = %+v, %v; want %+v", got, err, inv)
	}
	if _, err := s.Invitation(ctx, token); !errors.Is(err, ErrInvitationInvalid) {
		t.Errorf("revoked token: error %v, want ErrInvitationInvalid", err)
	}
	if _, err := s.AcceptInvitation(ctx, token, "Bob", testPassword); !errors.Is(err, ErrInvitationInvalid) {
		t.Errorf("accept revoked: error %v, want ErrInvitationInvalid", err)
	}
	if _, err := s.RevokeInvitation(ctx, inv.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("revoke twice: error %v, want ErrNotFound", err)
	}
	for _, id := range []string{"", "nope", keepToken} {
		if _, err := s.RevokeInvitation(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("RevokeInvitation(%.8q…): error %v, want ErrNotFound", id, err)
		}
	}
	list, _ := s.Invitations(ctx)
	if len(list) != 1 || list[0] != keep {
		t.Errorf("Invitations = %+v, want only %+v", list, keep)
	}
	_ = db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketInviteEmails).Get([]byte("bob@example.com")) != nil {
			t.Error("revoked invitation's email index kept")
		}
		return nil
	})
	// The address can be invited again.
	_, again := mustInvite(t, s, "bob@example.com", RoleViewer, admin.ID, 0)
	if _, err := s.Invitation(ctx, again); err != nil {
		t.Errorf("re-invited after revoke: %v", err)
	}
}

func TestInvitationsOrder(t *testing.T) {
	ctx := context.Background()
	s, _, clock, admin := newInviteStore(t, Options{})
	var want []string
	for _, email := range []string{"zed@example.com", "amy@example.com", "mia@example.com"} {
		mustInvite(t, s, email, RoleViewer, admin.ID, 0)
		want = append(want, email)
		clock.Advance(time.Second)
	}
	list, err := s.Invitations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, inv := range list {
		got = append(got, inv.Email)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Invitations order %v, want by CreatedAt %v", got, want)
	}
}

func TestAcceptInvitation(t *testing.T) {
	ctx := context.Background()
	for _, role := range []Role{RoleViewer, RoleAdmin} {
		t.Run(string(role), func(t *testing.T) {
			s, _, clock, admin := newInviteStore(t, Options{})
			inv, token := mustInvite(t, s, "Bob@Example.com", role, admin.ID, 0)
			clock.Advance(time.Minute)

			u, err := s.AcceptInvitation(ctx, token, "  Bob  ", testPassword)
			if err != nil {
				t.Fatal(err)
			}
			if u.Email != inv.Email || u.Name != "Bob" || u.Role != role || u.OrgID != admin.OrgID ||
				u.Disabled || !u.CreatedAt.Equal(clock.Now()) || u.ID == admin.ID ||
				!regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(u.ID) {
				t.Errorf("accepted user %v", u)
			}
			stored, err := s.ByEmail(ctx, inv.Email)
			if err != nil || stored.ID != u.ID || stored.Role != role {
				t.Errorf("stored = %v, %v", stored, err)
			}
			if _, err := s.Authenticate(ctx, "bob@example.com", testPassword); err != nil {
				t.Errorf("Authenticate after accept: %v", err)
			}
			// Used: gone for good.
			if _, err := s.Invitation(ctx, token); !errors.Is(err, ErrInvitationInvalid) {
				t.Errorf("used token: error %v, want ErrInvitationInvalid", err)
			}
			if _, err := s.AcceptInvitation(ctx, token, "Bob", testPassword); !errors.Is(err, ErrInvitationInvalid) {
				t.Errorf("accept twice: error %v, want ErrInvitationInvalid", err)
			}
			if list, _ := s.Invitations(ctx); len(list) != 0 {
				t.Errorf("Invitations after accept = %+v", list)
			}
		})
	}
}

func TestAcceptInvitationValidation(t *testing.T) {
	ctx := context.Background()
	s, _, _, admin := newInviteStore(t, Options{})
	_, token := mustInvite(t, s, "bob@example.com", RoleViewer, admin.ID, 0)
	bad := "A" + token[1:]
	if bad == token {
		bad = "B" + token[1:]
	}
	cases := []struct {
		desc, token, name, password string
		want                        error
	}{
		{"empty name", token, "  ", testPassword, ErrNameRequired},
		{"long name", token, strings.Repeat("x", MaxNameLength+1), testPassword, ErrNameTooLong},
		{"control in name", token, "Bo\x00b", testPassword, ErrInvalidName},
		{"short password", token, "Bob", "short", ErrPasswordTooShort},
		{"long password", token, "Bob", strings.Repeat("x", MaxPasswordLength+1), ErrPasswordTooLong},
		{"name checked before token", "nope", "", testPassword, ErrNameRequired},
		{"empty token", "", "Bob", testPassword, ErrInvitationInvalid},
		{"short token", token[:42], "Bob", testPassword, ErrInvitationInvalid},
		{"long token", token + "A", "Bob", testPassword, ErrInvitationInvalid},
		{"one character changed", bad, "Bob", testPassword, ErrInvitationInvalid},
		{"invitation ID as token", "0123456789abcdef0123456789abcdef", "Bob", testPassword, ErrInvitationInvalid},
	}
	for _, c := range cases {
		before := s.limiter.total.Load()
		_, err := s.AcceptInvitation(ctx, c.token, c.name, c.password)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: error %v, want %v", c.desc, err, c.want)
		}
		if n := s.limiter.total.Load() - before; n != 0 {
			t.Errorf("%s: computed %d hashes, want 0", c.desc, n)
		}
	}
	if n, _ := s.Count(ctx); n != 1 {
		t.Errorf("Count = %d, want 1", n)
	}
	if _, err := s.AcceptInvitation(ctx, token, "Bob", testPassword); err != nil {
		t.Errorf("refusals spent the invitation: %v", err)
	}
}

func TestAcceptInvitationEmailTaken(t *testing.T) {
	ctx := context.Background()
	s, _, _, admin := newInviteStore(t, Options{})
	_, token := mustInvite(t, s, "bob@example.com", RoleAdmin, admin.ID, 0)
	// Under SignupOpen the invitee may sign up directly meanwhile.
	bob := mustSignUp(t, s, "bob@example.com", "Bob", testPassword)
	if _, err := s.AcceptInvitation(ctx, token, "Bob 2", "another password"); !errors.Is(err, ErrEmailTaken) {
		t.Errorf("accept for a taken address: error %v, want ErrEmailTaken", err)
	}
	got, _ := s.Get(ctx, bob.ID)
	if got.Role != RoleViewer || got.Name != "Bob" || got.PasswordHash != bob.PasswordHash {
		t.Errorf("existing account changed: %v", got)
	}
	if n, _ := s.Count(ctx); n != 2 {
		t.Errorf("Count = %d, want 2", n)
	}
}

func TestAcceptInvitationConcurrent(t *testing.T) {
	ctx := context.Background()
	s, _, _, admin := newInviteStore(t, Options{MaxConcurrentHashes: 8})
	_, token := mustInvite(t, s, "bob@example.com", RoleViewer, admin.ID, 0)
	const n = 8
	var wg sync.WaitGroup
	results := make([]User, n)
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			results[i], errs[i] = s.AcceptInvitation(ctx, token, fmt.Sprintf("Bob %d", i), testPassword)
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for i := range n {
		switch {
		case errs[i] == nil:
			ok++
		case !errors.Is(errs[i], ErrInvitationInvalid):
			t.Errorf("accept %d: error %v, want ErrInvitationInvalid", i, errs[i])
		}
	}
	if ok != 1 {
		t.Errorf("%d accepts succeeded, want 1", ok)
	}
	if c, _ := s.Count(ctx); c != 2 {
		t.Errorf("Count = %d, want 2", c)
	}
}

func TestInvitationDomainPolicyChange(t *testing.T) {
	ctx := context.Background()
	s, db, clock, admin := newInviteStore(t, Options{})
	_, token := mustInvite(t, s, "bob@other.org", RoleViewer, admin.ID, 0)
	// Restarted with a domain policy: the invitation no longer admits.
	strict, err := New(db, Options{Hash: cheapParams, Now: clock.Now, ValidEmailDomain: "example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := strict.Invitation(ctx, token); !errors.Is(err, ErrInvitationInvalid) {
		t.Errorf("Invitation outside the new domain: error %v, want ErrInvitationInvalid", err)
	}
	if _, err := strict.AcceptInvitation(ctx, token, "Bob", testPassword); !errors.Is(err, ErrInvitationInvalid) {
		t.Errorf("accept outside the new domain: error %v, want ErrInvitationInvalid", err)
	}
}

func TestInvitationErrorsDoNotLeakToken(t *testing.T) {
	ctx := context.Background()
	s, _, clock, admin := newInviteStore(t, Options{})
	_, token := mustInvite(t, s, "bob@example.com", RoleViewer, admin.ID, time.Minute)
	clock.Advance(time.Hour)
	var errs []error
	_, err := s.Invitation(ctx, token)
	errs = append(errs, err)
	_, err = s.AcceptInvitation(ctx, token, "Bob", testPassword)
	errs = append(errs, err)
	_, err = s.AcceptInvitation(ctx, token, "", testPassword)
	errs = append(errs, err)
	_, err = s.RevokeInvitation(ctx, token)
	errs = append(errs, err)
	for _, err := range errs {
		if err == nil {
			t.Fatal("want an error")
		}
		if strings.Contains(err.Error(), token) || strings.Contains(err.Error(), token[:16]) {
			t.Errorf("error leaks the token: %v", err)
		}
	}
}

func TestInvitationVoidOnceTheInviterIsNoLongerAdmin(t *testing.T) {
	for _, change := range []string{"demote", "disable", "remove"} {
		t.Run(change, func(t *testing.T) {
			s, _ := newTestStore(t, Options{})
			ctx := context.Background()
			if _, err := s.SignUp(ctx, "ada@example.com", "Ada", "correct horse battery"); err != nil {
				t.Fatal(err)
			}
			// Bob becomes a second admin, so that he can be demoted.
			_, tok, err := s.CreateInvitation(ctx, "bob@example.com", RoleAdmin, "", 0)
			if err != nil {
				t.Fatal(err)
			}
			bob, err := s.AcceptInvitation(ctx, tok, "Bob", "bobs long password")
			if err != nil {
				t.Fatal(err)
			}
			_, pending, err := s.CreateInvitation(ctx, "carol@example.com", RoleAdmin, bob.ID, 0)
			if err != nil {
				t.Fatal(err)
			}
			switch change {
			case "demote":
				_, err = s.SetRole(ctx, bob.ID, RoleViewer)
			case "disable":
				err = s.SetDisabled(ctx, bob.ID, true)
			case "remove":
				_, err = s.Remove(ctx, bob.ID)
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Invitation(ctx, pending); !errors.Is(err, ErrInvitationInvalid) {
				t.Errorf("invitation of a %sd admin: %v", change, err)
			}
			if _, err := s.AcceptInvitation(ctx, pending, "Carol", "carols long password"); !errors.Is(err, ErrInvitationInvalid) {
				t.Errorf("accepting the invitation of a %sd admin: %v", change, err)
			}
		})
	}
}
