package users

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

func TestSetName(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t, Options{})
	u := mustSignUp(t, s, "alice@example.com", "Alice", testPassword)
	cases := []struct {
		name, want string
		err        error
	}{
		{"  Alice Smith ", "Alice Smith", nil},
		{"José Ñúñez", "José Ñúñez", nil},
		{strings.Repeat("é", MaxNameLength), strings.Repeat("é", MaxNameLength), nil},
		{"", "", ErrNameRequired},
		{" \t ", "", ErrNameRequired},
		{strings.Repeat("é", MaxNameLength+1), "", ErrNameTooLong},
		{"Bad\nName", "", ErrInvalidName},
		{"Bad\xffName", "", ErrInvalidName},
	}
	current := u.Name
	for _, c := range cases {
		got, err := s.SetName(ctx, u.ID, c.name)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("SetName(%q): error %v, want %v", c.name, err, c.err)
			}
		} else {
			if err != nil || got.Name != c.want {
				t.Errorf("SetName(%q) = %q, %v; want %q", c.name, got.Name, err, c.want)
			}
			current = c.want
		}
		if stored, _ := s.Get(ctx, u.ID); stored.Name != current {
			t.Errorf("after SetName(%q) stored name %q, want %q", c.name, stored.Name, current)
		}
	}
	if _, err := s.SetName(ctx, "nope", "X"); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetName(unknown): error %v, want ErrNotFound", err)
	}
}

func TestChangePassword(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	s, _ := newTestStore(t, Options{Now: clock.Now})
	mustSignUp(t, s, "admin@example.com", "Admin", testPassword)
	u := mustSignUp(t, s, "alice@example.com", "Alice", testPassword)
	const newPassword = "a brand new passphrase"

	cases := []struct {
		desc, current, next string
		want                error
		hashes              int64 // password hashes computed
	}{
		{"wrong current", "wrong password", newPassword, ErrInvalidCredentials, 1},
		{"empty current", "", newPassword, ErrInvalidCredentials, 1},
		{"huge current", strings.Repeat("x", 1<<20), newPassword, ErrInvalidCredentials, 0},
		{"wrong current and short new", "wrong password", "short", ErrInvalidCredentials, 1},
		{"short new", testPassword, "short", ErrPasswordTooShort, 1},
		{"long new", testPassword, strings.Repeat("x", MaxPasswordLength+1), ErrPasswordTooLong, 1},
	}
	for _, c := range cases {
		before := s.limiter.total.Load()
		_, err := s.ChangePassword(ctx, u.ID, c.current, c.next)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: error %v, want %v", c.desc, err, c.want)
		}
		if n := s.limiter.total.Load() - before; n != c.hashes {
			t.Errorf("%s: computed %d hashes, want %d", c.desc, n, c.hashes)
		}
		if got, _ := s.Get(ctx, u.ID); got.PasswordHash != u.PasswordHash || !got.SessionsNotBefore.IsZero() {
			t.Errorf("%s: refused change wrote %v", c.desc, got)
		}
	}
	if _, err := s.ChangePassword(ctx, "nope", testPassword, newPassword); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown user: error %v, want ErrNotFound", err)
	}

	reset, _, err := s.CreateResetToken(ctx, u.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	changed, err := s.ChangePassword(ctx, u.ID, testPassword, newPassword)
	if err != nil {
		t.Fatalf("ChangePassword: %v", err)
	}
	if changed.PasswordHash == u.PasswordHash || !changed.SessionsNotBefore.Equal(clock.Now()) {
		t.Errorf("changed = %v; want a new hash and SessionsNotBefore %v", changed, clock.Now())
	}
	if !strings.HasPrefix(changed.PasswordHash, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Error("new hash does not use the store's parameters")
	}
	if stored, _ := s.Get(ctx, u.ID); stored.PasswordHash != changed.PasswordHash || !stored.SessionsNotBefore.Equal(clock.Now()) {
		t.Errorf("stored = %v", stored)
	}
	if _, err := s.Authenticate(ctx, u.Email, testPassword); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("old password after change: error %v, want ErrInvalidCredentials", err)
	}
	if _, err := s.Authenticate(ctx, u.Email, newPassword); err != nil {
		t.Errorf("new password after change: %v", err)
	}
	if _, err := s.ResetTarget(ctx, reset); !errors.Is(err, ErrResetInvalid) {
		t.Errorf("pending reset after change: error %v, want ErrResetInvalid", err)
	}
	// The old password no longer counts as current.
	if _, err := s.ChangePassword(ctx, u.ID, testPassword, "yet another password"); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("change with the old password: error %v, want ErrInvalidCredentials", err)
	}

	if err := s.SetDisabled(ctx, u.ID, true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ChangePassword(ctx, u.ID, newPassword, "yet another password"); !errors.Is(err, ErrDisabled) {
		t.Errorf("disabled: error %v, want ErrDisabled", err)
	}
}

func TestChangePasswordStaleVerification(t *testing.T) {
	ctx := context.Background()
	// Two slots: the reset below hashes while the change holds one.
	s, _ := newTestStore(t, Options{MaxConcurrentHashes: 2})
	u := mustSignUp(t, s, "alice@example.com", "Alice", testPassword)
	reset, _, err := s.CreateResetToken(ctx, u.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	// While ChangePassword verifies the current password, a reset
	// replaces it: the change must not overwrite the reset.
	resetDone := make(chan error, 1)
	s.limiter.hook = func() {
		s.limiter.hook = nil // only the first computation: the verification
		go func() {
			_, err := s.ResetPassword(ctx, reset, "password from reset")
			resetDone <- err
		}()
		if err := <-resetDone; err != nil {
			t.Errorf("ResetPassword: %v", err)
		}
	}
	_, err = s.ChangePassword(ctx, u.ID, testPassword, "password from change")
	if !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("change with stale verification: error %v, want ErrInvalidCredentials", err)
	}
	if _, err := s.Authenticate(ctx, u.Email, "password from reset"); err != nil {
		t.Errorf("reset password lost: %v", err)
	}
}

func TestRevokeSessions(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	s, _ := newTestStore(t, Options{Now: clock.Now})
	u := mustSignUp(t, s, "alice@example.com", "Alice", testPassword)
	clock.Advance(time.Hour)
	got, err := s.RevokeSessions(ctx, u.ID)
	if err != nil || !got.SessionsNotBefore.Equal(clock.Now()) {
		t.Fatalf("RevokeSessions = %v, %v; want SessionsNotBefore %v", got, err, clock.Now())
	}
	if stored, _ := s.Get(ctx, u.ID); !stored.SessionsNotBefore.Equal(clock.Now()) || stored.PasswordHash != u.PasswordHash {
		t.Errorf("stored = %v", stored)
	}
	// A clock stepping back never moves it backwards.
	later := clock.Now()
	clock.Advance(-time.Minute)
	if got, err := s.RevokeSessions(ctx, u.ID); err != nil || !got.SessionsNotBefore.Equal(later) {
		t.Errorf("after clock step back: %v, %v; want %v", got.SessionsNotBefore, err, later)
	}
	if _, err := s.RevokeSessions(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown user: error %v, want ErrNotFound", err)
	}
}

// Accounts stored before SessionsNotBefore existed read as zero and gain
// the field when updated.
func TestSessionsNotBeforeOldRecords(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	s, db := newTestStore(t, Options{Now: clock.Now})
	u := mustSignUp(t, s, "alice@example.com", "Alice", testPassword)
	old := `{"id":"` + u.ID + `","email":"alice@example.com","name":"Alice","role":"admin","org_id":"` + u.OrgID +
		`","password_hash":"` + u.PasswordHash + `","disabled":false,"created_at":"2024-01-01T00:00:00Z","last_login_at":"0001-01-01T00:00:00Z"}`
	if err := db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketUsers).Put([]byte(u.ID), []byte(old))
	}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, u.ID)
	if err != nil || !got.SessionsNotBefore.IsZero() {
		t.Fatalf("old record: %v, %v", got, err)
	}
	if _, err := s.Authenticate(ctx, u.Email, testPassword); err != nil {
		t.Fatalf("Authenticate old record: %v", err)
	}
	if got, _ := s.RevokeSessions(ctx, u.ID); !got.SessionsNotBefore.Equal(clock.Now()) {
		t.Errorf("RevokeSessions on old record: %v", got)
	}
}

func TestRecordSignIn(t *testing.T) {
	s, _ := newTestStore(t, Options{})
	ctx := context.Background()
	u, err := s.SignUp(ctx, "ada@example.com", "Ada", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !u.LastLoginAt.IsZero() {
		t.Fatalf("a new account has LastLoginAt %v", u.LastLoginAt)
	}
	if err := s.RecordSignIn(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(ctx, u.ID); got.LastLoginAt.IsZero() {
		t.Error("RecordSignIn did not set LastLoginAt")
	}
	if err := s.RecordSignIn(ctx, "no-such-user"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown user: %v", err)
	}
}
