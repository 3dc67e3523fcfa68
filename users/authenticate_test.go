package users

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

func TestAuthenticateSuccess(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	s, _ := newTestStore(t, Options{Now: clock.Now})
	u := mustSignUp(t, s, "alice@example.com", "Alice", testPassword)

	clock.Advance(time.Hour)
	got, err := s.Authenticate(ctx, "  ALICE@Example.com ", testPassword)
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	if got.ID != u.ID || !got.LastLoginAt.Equal(clock.Now()) {
		t.Errorf("Authenticate = %v; want LastLoginAt %v", got, clock.Now())
	}
	if got.PasswordHash != u.PasswordHash {
		t.Error("hash changed although the parameters did not")
	}
	stored, _ := s.Get(ctx, u.ID)
	if !stored.LastLoginAt.Equal(clock.Now()) {
		t.Errorf("stored LastLoginAt = %v, want %v", stored.LastLoginAt, clock.Now())
	}
}

func TestAuthenticateFailuresAreInvalidCredentials(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t, Options{})
	u := mustSignUp(t, s, "alice@example.com", "Alice", testPassword)

	cases := []struct{ desc, email, password string }{
		{"wrong password", "alice@example.com", testPassword + "!"},
		{"password differs in case", "alice@example.com", strings.ToUpper(testPassword)},
		{"empty password", "alice@example.com", ""},
		{"unknown email", "bob@example.com", testPassword},
		{"invalid email", "alice", testPassword},
		{"empty email", "", testPassword},
		{"overlong password", "alice@example.com", strings.Repeat("x", MaxPasswordLength+1)},
		{"huge password", "alice@example.com", strings.Repeat("x", 1<<20)},
	}
	for _, c := range cases {
		_, err := s.Authenticate(ctx, c.email, c.password)
		if !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("%s: error %v, want ErrInvalidCredentials", c.desc, err)
		}
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrInvalidEmail) {
			t.Errorf("%s: error %v reveals why", c.desc, err)
		}
	}
	if got, _ := s.Get(ctx, u.ID); !got.LastLoginAt.IsZero() {
		t.Error("failed logins set LastLoginAt")
	}
}

// An unknown email must cost one password verification, like a wrong
// password does.
func TestAuthenticateUnknownEmailStillHashes(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t, Options{})
	mustSignUp(t, s, "alice@example.com", "Alice", testPassword)

	before := s.limiter.total.Load()
	if _, err := s.Authenticate(ctx, "nobody@example.com", testPassword); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("unknown email: %v", err)
	}
	if n := s.limiter.total.Load() - before; n != 1 {
		t.Errorf("unknown email computed %d hashes, want 1", n)
	}

	before = s.limiter.total.Load()
	if _, err := s.Authenticate(ctx, "alice@example.com", "wrong password"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
	if n := s.limiter.total.Load() - before; n != 1 {
		t.Errorf("wrong password computed %d hashes, want 1", n)
	}

	// The dummy hash has the store's current parameters.
	h, err := parsePasswordHash(s.dummyHash)
	if err != nil || h.params != s.params {
		t.Errorf("dummy hash params %+v, %v; want %+v", h.params, err, s.params)
	}
}

func TestAuthenticateDisabled(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t, Options{})
	mustSignUp(t, s, "admin@example.com", "Admin", testPassword) // the last admin cannot be disabled
	u := mustSignUp(t, s, "alice@example.com", "Alice", testPassword)
	if err := s.SetDisabled(ctx, u.ID, true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, u.Email, testPassword); !errors.Is(err, ErrDisabled) {
		t.Errorf("disabled, right password: error %v, want ErrDisabled", err)
	}
	_, err := s.Authenticate(ctx, u.Email, "wrong password")
	if !errors.Is(err, ErrInvalidCredentials) || errors.Is(err, ErrDisabled) {
		t.Errorf("disabled, wrong password: error %v, want only ErrInvalidCredentials", err)
	}
	if got, _ := s.Get(ctx, u.ID); !got.LastLoginAt.IsZero() {
		t.Error("disabled login set LastLoginAt")
	}
	if err := s.SetDisabled(ctx, u.ID, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, u.Email, testPassword); err != nil {
		t.Errorf("re-enabled: %v", err)
	}
}

func TestAuthenticateRehashesOnParamChange(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "latchkey.db")
	db := openDB(t, path)

	paramsA := cheapParams
	paramsB := HashParams{Memory: 128, Time: 2, Threads: 2, KeyLen: 24, SaltLen: 12}

	sA, err := New(db, Options{Hash: paramsA})
	if err != nil {
		t.Fatal(err)
	}
	u := mustSignUp(t, sA, "alice@example.com", "Alice", testPassword)
	if h, _ := parsePasswordHash(u.PasswordHash); h.params != paramsA {
		t.Fatalf("initial params %+v, want %+v", h.params, paramsA)
	}

	sB, err := New(db, Options{Hash: paramsB})
	if err != nil {
		t.Fatal(err)
	}
	// A wrong password does not trigger a rehash.
	if _, err := sB.Authenticate(ctx, u.Email, "wrong password"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
	if got, _ := sB.Get(ctx, u.ID); got.PasswordHash != u.PasswordHash {
		t.Fatal("wrong password changed the hash")
	}

	got, err := sB.Authenticate(ctx, u.Email, testPassword)
	if err != nil {
		t.Fatalf("Authenticate with new params: %v", err)
	}
	stored, err := sB.Get(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.PasswordHash == u.PasswordHash || got.PasswordHash != stored.PasswordHash {
		t.Fatal("hash not replaced")
	}
	h, err := parsePasswordHash(stored.PasswordHash)
	if err != nil {
		t.Fatal(err)
	}
	if h.params != paramsB {
		t.Errorf("rehashed params %+v, want %+v", h.params, paramsB)
	}
	if !strings.HasPrefix(stored.PasswordHash, "$argon2id$v=19$m=128,t=2,p=2$") {
		t.Errorf("rehashed PHC prefix wrong")
	}
	if !h.matches(testPassword) || h.matches("wrong password") {
		t.Error("rehashed hash does not verify")
	}

	// Further logins with B keep the hash; logins with A rehash back.
	if again, err := sB.Authenticate(ctx, u.Email, testPassword); err != nil || again.PasswordHash != stored.PasswordHash {
		t.Errorf("second login with same params: %v; hash changed = %t", err, again.PasswordHash != stored.PasswordHash)
	}
	back, err := sA.Authenticate(ctx, u.Email, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	if h, _ := parsePasswordHash(back.PasswordHash); h.params != paramsA {
		t.Errorf("params after login with A: %+v", h.params)
	}
}

func TestAuthenticateMalformedStoredHash(t *testing.T) {
	ctx := context.Background()
	s, db := newTestStore(t, Options{})
	u := mustSignUp(t, s, "alice@example.com", "Alice", testPassword)
	for _, bad := range []string{"", "garbage", "$argon2id$v=19$m=64,t=1,p=1$$", "$argon2id$v=19$m=4294967295,t=1,p=1$c29tZXNhbHQ$c29tZXNhbHRzb21lc2FsdA"} {
		u.PasswordHash = bad
		if err := db.Update(func(tx *bbolt.Tx) error { return putUser(tx, u) }); err != nil {
			t.Fatal(err)
		}
		_, err := s.Authenticate(ctx, u.Email, testPassword)
		if !errors.Is(err, ErrMalformedHash) {
			t.Errorf("stored hash %q: error %v, want ErrMalformedHash", bad, err)
		}
	}
}

// Once with the real default parameters, end to end.
func TestDefaultHashParams(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	ctx := context.Background()
	db := openDB(t, filepath.Join(t.TempDir(), "latchkey.db"))
	s, err := New(db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.params != DefaultHashParams {
		t.Fatalf("params %+v, want DefaultHashParams", s.params)
	}
	u := mustSignUp(t, s, "alice@example.com", "Alice", testPassword)
	if !strings.HasPrefix(u.PasswordHash, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash prefix wrong")
	}
	h, err := parsePasswordHash(u.PasswordHash)
	if err != nil || len(h.salt) != 16 || len(h.key) != 32 {
		t.Fatalf("parsed %+v, %v", h.params, err)
	}
	if _, err := s.Authenticate(ctx, u.Email, testPassword); err != nil {
		t.Errorf("Authenticate: %v", err)
	}
	if _, err := s.Authenticate(ctx, u.Email, "wrong password"); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("wrong password: %v", err)
	}
}
