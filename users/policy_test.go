package users

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestParseSignupPolicy(t *testing.T) {
	cases := []struct {
		in   string
		want SignupPolicy // "" means error
	}{
		{"", SignupOpen},
		{"open", SignupOpen},
		{"invite", SignupInvite},
		{"Invite", ""},
		{" open", ""},
		{"closed", ""},
		{"invitation", ""},
	}
	for _, c := range cases {
		got, err := ParseSignupPolicy(c.in)
		if c.want == "" {
			if err == nil {
				t.Errorf("ParseSignupPolicy(%q) = %q, want error", c.in, got)
			} else if !strings.Contains(err.Error(), `"open"`) || !strings.Contains(err.Error(), `"invite"`) {
				t.Errorf("ParseSignupPolicy(%q) error %q does not name the accepted values", c.in, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseSignupPolicy(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestNewSignupPolicy(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "db"))
	if _, err := New(db, Options{Hash: cheapParams, SignupPolicy: "closed"}); err == nil {
		t.Error("New with an unknown sign-up policy: want error")
	}
	for opt, want := range map[SignupPolicy]SignupPolicy{"": SignupOpen, SignupOpen: SignupOpen, SignupInvite: SignupInvite} {
		s, err := New(db, Options{Hash: cheapParams, SignupPolicy: opt})
		if err != nil {
			t.Fatal(err)
		}
		if s.SignupPolicy() != want {
			t.Errorf("policy %q: SignupPolicy() = %q, want %q", opt, s.SignupPolicy(), want)
		}
	}
}

func TestSignupInvitePolicy(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t, Options{SignupPolicy: SignupInvite})

	admin := mustSignUp(t, s, "admin@example.com", "Admin", testPassword)
	if admin.Role != RoleAdmin {
		t.Fatalf("first account role %q, want admin", admin.Role)
	}

	before := s.limiter.total.Load()
	_, err := s.SignUp(ctx, "bob@example.com", "Bob", testPassword)
	if !errors.Is(err, ErrSignupClosed) {
		t.Fatalf("second SignUp error %v, want ErrSignupClosed", err)
	}
	if n := s.limiter.total.Load() - before; n != 0 {
		t.Errorf("closed sign-up computed %d hashes, want 0", n)
	}
	// Same for an address that already has an account: closed, nothing
	// revealed.
	if _, err := s.SignUp(ctx, "admin@example.com", "Admin", testPassword); !errors.Is(err, ErrSignupClosed) {
		t.Errorf("SignUp of the existing address: error %v, want ErrSignupClosed", err)
	}

	inv, token, err := s.CreateInvitation(ctx, "bob@example.com", RoleViewer, admin.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	bob, err := s.AcceptInvitation(ctx, token, "Bob", testPassword)
	if err != nil {
		t.Fatalf("AcceptInvitation under SignupInvite: %v", err)
	}
	if bob.Email != inv.Email || bob.Role != RoleViewer || bob.OrgID != admin.OrgID {
		t.Errorf("accepted = %v", bob)
	}
	if n, _ := s.Count(ctx); n != 2 {
		t.Errorf("Count = %d, want 2", n)
	}
}

func TestSignupInviteConcurrentFirstSignUps(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t, Options{SignupPolicy: SignupInvite, MaxConcurrentHashes: 4})
	const n = 8
	var wg sync.WaitGroup
	results := make([]User, n)
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			results[i], errs[i] = s.SignUp(ctx, fmt.Sprintf("user%d@example.com", i), "User", testPassword)
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for i := range n {
		switch {
		case errs[i] == nil:
			ok++
			if results[i].Role != RoleAdmin {
				t.Errorf("the one sign-up is %q, want admin", results[i].Role)
			}
		case !errors.Is(errs[i], ErrSignupClosed):
			t.Errorf("SignUp %d: error %v, want ErrSignupClosed", i, errs[i])
		}
	}
	if ok != 1 {
		t.Errorf("%d sign-ups succeeded, want 1", ok)
	}
	if c, _ := s.Count(ctx); c != 1 {
		t.Errorf("Count = %d, want 1", c)
	}
}
