package users

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestList(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t, Options{})
	if list, err := s.List(ctx); err != nil || len(list) != 0 {
		t.Fatalf("List on an empty store = %v, %v", list, err)
	}
	for _, email := range []string{"mia@example.com", "Zed@example.com", "amy@example.com", "bob@example.com"} {
		mustSignUp(t, s, email, "X", testPassword)
	}
	list, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range list {
		got = append(got, u.Email)
	}
	want := []string{"amy@example.com", "bob@example.com", "mia@example.com", "zed@example.com"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("List order %v, want %v", got, want)
	}
	if list[2].Role != RoleAdmin {
		t.Errorf("List lost fields: %v", list[2])
	}
}

func TestSetRole(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	s, _ := newTestStore(t, Options{Now: clock.Now})
	admin := mustSignUp(t, s, "admin@example.com", "Admin", testPassword)
	bob := mustSignUp(t, s, "bob@example.com", "Bob", testPassword)

	cases := []struct {
		desc string
		id   string
		role Role
		want error
	}{
		{"invalid role", bob.ID, "owner", ErrInvalidRole},
		{"empty role", bob.ID, "", ErrInvalidRole},
		{"unknown user", "nope", RoleAdmin, ErrNotFound},
		{"demote the last admin", admin.ID, RoleViewer, ErrLastAdmin},
		{"last admin stays admin", admin.ID, RoleAdmin, nil},
		{"viewer stays viewer", bob.ID, RoleViewer, nil},
		{"promote", bob.ID, RoleAdmin, nil},
		{"demote one of two admins", admin.ID, RoleViewer, nil},
		{"demote the new last admin", bob.ID, RoleViewer, ErrLastAdmin},
	}
	for _, c := range cases {
		clock.Advance(time.Second)
		u, err := s.SetRole(ctx, c.id, c.role)
		if c.want != nil {
			if !errors.Is(err, c.want) {
				t.Errorf("%s: error %v, want %v", c.desc, err, c.want)
			}
			continue
		}
		if err != nil || u.Role != c.role {
			t.Errorf("%s: SetRole = %v, %v", c.desc, u, err)
			continue
		}
		if stored, _ := s.Get(ctx, c.id); stored.Role != c.role || !stored.SessionsNotBefore.IsZero() {
			t.Errorf("%s: stored %v; want role %q and SessionsNotBefore untouched", c.desc, stored, c.role)
		}
	}
}

// Each configuration has admin a (the one acted on), and others; the
// action must fail with ErrLastAdmin exactly when no other active admin
// exists.
func TestLastAdminRule(t *testing.T) {
	ctx := context.Background()
	actions := []struct {
		name string
		do   func(s *Store, id string) error
	}{
		{"demote", func(s *Store, id string) error { _, err := s.SetRole(ctx, id, RoleViewer); return err }},
		{"disable", func(s *Store, id string) error { return s.SetDisabled(ctx, id, true) }},
		{"remove", func(s *Store, id string) error { _, err := s.Remove(ctx, id); return err }},
	}
	configs := []struct {
		desc   string
		setup  func(t *testing.T, s *Store, other User) // other starts as a viewer
		refuse bool
	}{
		{"only admin", func(*testing.T, *Store, User) {}, true},
		{"other admin disabled", func(t *testing.T, s *Store, other User) {
			mustSetRole(t, s, other.ID, RoleAdmin)
			if err := s.SetDisabled(ctx, other.ID, true); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"other admin active", func(t *testing.T, s *Store, other User) {
			mustSetRole(t, s, other.ID, RoleAdmin)
		}, false},
	}
	for _, a := range actions {
		for _, c := range configs {
			t.Run(a.name+"/"+c.desc, func(t *testing.T) {
				s, _ := newTestStore(t, Options{})
				admin := mustSignUp(t, s, "admin@example.com", "Admin", testPassword)
				other := mustSignUp(t, s, "other@example.com", "Other", testPassword)
				c.setup(t, s, other)
				err := a.do(s, admin.ID)
				if c.refuse && !errors.Is(err, ErrLastAdmin) {
					t.Errorf("error %v, want ErrLastAdmin", err)
				}
				if !c.refuse && err != nil {
					t.Errorf("error %v, want success", err)
				}
				if c.refuse {
					if got, err := s.Get(ctx, admin.ID); err != nil || !got.activeAdmin() {
						t.Errorf("refused action changed the admin: %v, %v", got, err)
					}
				}
			})
		}
	}

	// Acting on non-admins and inactive admins is never refused.
	s, _ := newTestStore(t, Options{})
	mustSignUp(t, s, "admin@example.com", "Admin", testPassword)
	v := mustSignUp(t, s, "v@example.com", "V", testPassword)
	if err := s.SetDisabled(ctx, v.ID, true); err != nil {
		t.Errorf("disable a viewer: %v", err)
	}
	if _, err := s.Remove(ctx, v.ID); err != nil {
		t.Errorf("remove a viewer: %v", err)
	}
}

func mustSetRole(t *testing.T, s *Store, id string, role Role) {
	t.Helper()
	if _, err := s.SetRole(context.Background(), id, role); err != nil {
		t.Fatalf("SetRole(%s, %s): %v", id, role, err)
	}
}

// Two admins; both demoted (or disabled, or removed) at once: exactly one
// change succeeds, so one active admin remains.
func TestLastAdminConcurrent(t *testing.T) {
	ctx := context.Background()
	actions := map[string]func(s *Store, id string) error{
		"demote":  func(s *Store, id string) error { _, err := s.SetRole(ctx, id, RoleViewer); return err },
		"disable": func(s *Store, id string) error { return s.SetDisabled(ctx, id, true) },
		"remove":  func(s *Store, id string) error { _, err := s.Remove(ctx, id); return err },
		"mixed": func(s *Store, id string) error {
			if id[0]%2 == 0 {
				_, err := s.SetRole(ctx, id, RoleViewer)
				return err
			}
			return s.SetDisabled(ctx, id, true)
		},
	}
	for name, act := range actions {
		t.Run(name, func(t *testing.T) {
			for round := range 10 {
				s, _ := newTestStore(t, Options{})
				a := mustSignUp(t, s, "a@example.com", "A", testPassword)
				b := mustSignUp(t, s, "b@example.com", "B", testPassword)
				mustSetRole(t, s, b.ID, RoleAdmin)

				var wg sync.WaitGroup
				errs := make([]error, 2)
				start := make(chan struct{})
				for i, id := range []string{a.ID, b.ID} {
					wg.Go(func() {
						<-start
						errs[i] = act(s, id)
					})
				}
				close(start)
				wg.Wait()

				ok, refused := 0, 0
				for _, err := range errs {
					switch {
					case err == nil:
						ok++
					case errors.Is(err, ErrLastAdmin):
						refused++
					default:
						t.Errorf("round %d: unexpected error %v", round, err)
					}
				}
				if ok != 1 || refused != 1 {
					t.Fatalf("round %d: %d succeeded, %d refused; want 1 and 1", round, ok, refused)
				}
				list, _ := s.List(ctx)
				active := 0
				for _, u := range list {
					if u.activeAdmin() {
						active++
					}
				}
				if active != 1 {
					t.Fatalf("round %d: %d active admins remain, want 1", round, active)
				}
			}
		})
	}
}

func TestSetDisabledRevokesSessions(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	s, _ := newTestStore(t, Options{Now: clock.Now})
	mustSignUp(t, s, "admin@example.com", "Admin", testPassword)
	u := mustSignUp(t, s, "bob@example.com", "Bob", testPassword)
	if !u.SessionsNotBefore.IsZero() {
		t.Fatalf("new account SessionsNotBefore = %v, want zero", u.SessionsNotBefore)
	}
	clock.Advance(time.Hour)
	disabledAt := clock.Now()
	if err := s.SetDisabled(ctx, u.ID, true); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Get(ctx, u.ID)
	if !got.Disabled || !got.SessionsNotBefore.Equal(disabledAt) {
		t.Errorf("after disable: %v; want SessionsNotBefore %v", got, disabledAt)
	}
	clock.Advance(time.Hour)
	if err := s.SetDisabled(ctx, u.ID, false); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Get(ctx, u.ID)
	if got.Disabled || !got.SessionsNotBefore.Equal(disabledAt) {
		t.Errorf("after enable: %v; want SessionsNotBefore still %v", got, disabledAt)
	}
	if err := s.SetDisabled(ctx, "nope", true); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetDisabled(unknown) error %v, want ErrNotFound", err)
	}
}

func TestRemove(t *testing.T) {
	ctx := context.Background()
	s, db := newTestStore(t, Options{})
	admin := mustSignUp(t, s, "admin@example.com", "Admin", testPassword)
	bob := mustSignUp(t, s, "Bob@example.com", "Bob", testPassword)
	token, _, err := s.CreateResetToken(ctx, bob.ID, 0)
	if err != nil {
		t.Fatal(err)
	}

	removed, err := s.Remove(ctx, bob.ID)
	if err != nil || removed.ID != bob.ID || removed.Email != "bob@example.com" {
		t.Fatalf("Remove = %v, %v", removed, err)
	}
	if _, err := s.Get(ctx, bob.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get removed: error %v, want ErrNotFound", err)
	}
	if _, err := s.ByEmail(ctx, "bob@example.com"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ByEmail removed: error %v, want ErrNotFound", err)
	}
	if _, err := s.Authenticate(ctx, "bob@example.com", testPassword); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("Authenticate removed: error %v, want ErrInvalidCredentials", err)
	}
	if _, err := s.ResetTarget(ctx, token); !errors.Is(err, ErrResetInvalid) {
		t.Errorf("reset token of removed user: error %v, want ErrResetInvalid", err)
	}
	if n, _ := s.Count(ctx); n != 1 {
		t.Errorf("Count = %d, want 1", n)
	}
	if _, err := s.Remove(ctx, bob.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Remove twice: error %v, want ErrNotFound", err)
	}
	assertBucketEmpty(t, db, bucketResets)
	assertBucketEmpty(t, db, bucketResetUsers)

	// The address is free again: a new account, a new ID.
	again := mustSignUp(t, s, "bob@example.com", "Bob again", "another password")
	if again.ID == bob.ID || again.Role != RoleViewer || again.OrgID != admin.OrgID {
		t.Errorf("signed up again: %v", again)
	}
	if _, err := s.Authenticate(ctx, "bob@example.com", "another password"); err != nil {
		t.Errorf("Authenticate new account: %v", err)
	}
	// Or be invited again.
	if _, err := s.Remove(ctx, again.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreateInvitation(ctx, "bob@example.com", RoleViewer, admin.ID, 0); err != nil {
		t.Errorf("invite a removed address: %v", err)
	}
}

func TestByEmailOrID(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t, Options{})
	u := mustSignUp(t, s, "alice@example.com", "Alice", testPassword)
	for _, ref := range []string{u.ID, "alice@example.com", " ALICE@example.com "} {
		got, err := s.ByEmailOrID(ctx, ref)
		if err != nil || got.ID != u.ID {
			t.Errorf("ByEmailOrID(%q) = %v, %v", ref, got, err)
		}
	}
	for _, ref := range []string{"", "nope", "bob@example.com", "@", u.ID + "@"} {
		if _, err := s.ByEmailOrID(ctx, ref); !errors.Is(err, ErrNotFound) {
			t.Errorf("ByEmailOrID(%q): error %v, want ErrNotFound", ref, err)
		}
	}
}
