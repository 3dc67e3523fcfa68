package users

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// cheapParams keeps tests fast; one test uses DefaultHashParams.
var cheapParams = HashParams{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}

const testPassword = "correct horse battery staple"

// fakeClock is a settable Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// openDB opens (or reopens) a bbolt file; it is closed at cleanup.
func openDB(t *testing.T, path string) *bbolt.DB {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("bbolt.Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// newTestStore returns a Store over a fresh database with cheap hash
// parameters unless opts sets others.
func newTestStore(t *testing.T, opts Options) (*Store, *bbolt.DB) {
	t.Helper()
	db := openDB(t, filepath.Join(t.TempDir(), "latchkey.db"))
	if opts.Hash == (HashParams{}) {
		opts.Hash = cheapParams
	}
	s, err := New(db, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s, db
}

func mustSignUp(t *testing.T, s *Store, email, name, password string) User {
	t.Helper()
	u, err := s.SignUp(context.Background(), email, name, password)
	if err != nil {
		t.Fatalf("SignUp(%q): %v", email, err)
	}
	return u
}

func TestNewCreatesBuckets(t *testing.T) {
	_, db := newTestStore(t, Options{})
	err := db.View(func(tx *bbolt.Tx) error {
		for _, name := range []string{"users.users", "users.byemail", "users.orgs", "users.meta"} {
			if tx.Bucket([]byte(name)) == nil {
				return fmt.Errorf("bucket %q missing", name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "db"))
	if _, err := New(nil, Options{Hash: cheapParams}); err == nil {
		t.Error("New(nil db): want error")
	}
	cases := []struct {
		name string
		opts Options
		want error
	}{
		{"memory below 8 KiB per thread", Options{Hash: HashParams{Memory: 8, Time: 1, Threads: 2}}, ErrInvalidHashParams},
		{"memory too large", Options{Hash: HashParams{Memory: MaxHashMemory + 1, Time: 1, Threads: 1}}, ErrInvalidHashParams},
		{"time too large", Options{Hash: HashParams{Memory: 64, Time: MaxHashTime + 1, Threads: 1}}, ErrInvalidHashParams},
		{"key too short", Options{Hash: HashParams{Memory: 64, Time: 1, Threads: 1, KeyLen: 8}}, ErrInvalidHashParams},
		{"salt too short", Options{Hash: HashParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 4}}, ErrInvalidHashParams},
		{"negative concurrency", Options{Hash: cheapParams, MaxConcurrentHashes: -1}, nil},
		{"domain with @", Options{Hash: cheapParams, ValidEmailDomain: "@example.com"}, ErrInvalidEmail},
		{"domain without dot", Options{Hash: cheapParams, ValidEmailDomain: "localhost"}, ErrInvalidEmail},
	}
	for _, c := range cases {
		_, err := New(db, c.opts)
		if err == nil {
			t.Errorf("%s: New succeeded, want error", c.name)
			continue
		}
		if c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: New error %v, want %v", c.name, err, c.want)
		}
	}
}

func TestNewDefaults(t *testing.T) {
	s, _ := newTestStore(t, Options{Hash: HashParams{Memory: 64, Time: 1}})
	want := HashParams{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}
	if s.params != want {
		t.Errorf("params = %+v, want %+v (zero fields from DefaultHashParams)", s.params, want)
	}
	if cap(s.limiter.sem) < 1 {
		t.Errorf("limiter capacity %d", cap(s.limiter.sem))
	}
	if s.orgName != DefaultOrganizationName {
		t.Errorf("orgName = %q", s.orgName)
	}
	if (HashParams{}).withDefaults() != DefaultHashParams {
		t.Error("zero HashParams must mean DefaultHashParams")
	}
}

func TestNewRejectsUnknownSchema(t *testing.T) {
	_, db := newTestStore(t, Options{})
	if err := db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(metaSchema, []byte("99"))
	}); err != nil {
		t.Fatal(err)
	}
	_, err := New(db, Options{Hash: cheapParams})
	if err == nil || !strings.Contains(err.Error(), "another version of latchkey") || !strings.Contains(err.Error(), "restore a backup") {
		t.Fatalf("New over a future schema: %v, want an error that says what to do", err)
	}
}

func TestGetByEmailOrganization(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t, Options{OrganizationName: "  Acme  "})
	u := mustSignUp(t, s, "Alice@Example.com", "Alice", testPassword)

	got, err := s.Get(ctx, u.ID)
	if err != nil || got.Email != "alice@example.com" || got.ID != u.ID {
		t.Fatalf("Get = %v, %v", got, err)
	}
	got, err = s.ByEmail(ctx, "  ALICE@example.COM ")
	if err != nil || got.ID != u.ID {
		t.Fatalf("ByEmail = %v, %v", got, err)
	}
	org, err := s.Organization(ctx, u.OrgID)
	if err != nil || org.ID != u.OrgID || org.Name != "Acme" {
		t.Fatalf("Organization = %+v, %v", org, err)
	}

	if _, err := s.Get(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(unknown) error %v, want ErrNotFound", err)
	}
	if _, err := s.Get(ctx, ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(\"\") error %v, want ErrNotFound", err)
	}
	if _, err := s.ByEmail(ctx, "bob@example.com"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ByEmail(unknown) error %v, want ErrNotFound", err)
	}
	_, err = s.ByEmail(ctx, "not an email")
	if !errors.Is(err, ErrNotFound) || !errors.Is(err, ErrInvalidEmail) {
		t.Errorf("ByEmail(invalid) error %v, want ErrNotFound and ErrInvalidEmail", err)
	}
	if _, err := s.Organization(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Organization(unknown) error %v, want ErrNotFound", err)
	}
}

func TestCountAndNeedsSetup(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t, Options{})
	if n, err := s.Count(ctx); err != nil || n != 0 {
		t.Fatalf("Count = %d, %v", n, err)
	}
	if ok, err := s.NeedsSetup(ctx); err != nil || !ok {
		t.Fatalf("NeedsSetup = %t, %v; want true", ok, err)
	}
	mustSignUp(t, s, "a@example.com", "A", testPassword)
	if ok, err := s.NeedsSetup(ctx); err != nil || ok {
		t.Fatalf("NeedsSetup = %t, %v; want false", ok, err)
	}
	mustSignUp(t, s, "b@example.com", "B", testPassword)
	if n, err := s.Count(ctx); err != nil || n != 2 {
		t.Fatalf("Count = %d, %v; want 2", n, err)
	}
}

func TestCancelledContext(t *testing.T) {
	s, _ := newTestStore(t, Options{})
	u := mustSignUp(t, s, "a@example.com", "A", testPassword)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	checks := map[string]error{}
	_, checks["Get"] = s.Get(ctx, u.ID)
	_, checks["ByEmail"] = s.ByEmail(ctx, u.Email)
	_, checks["Organization"] = s.Organization(ctx, u.OrgID)
	_, checks["Count"] = s.Count(ctx)
	_, checks["NeedsSetup"] = s.NeedsSetup(ctx)
	_, checks["SignUp"] = s.SignUp(ctx, "b@example.com", "B", testPassword)
	_, checks["Authenticate"] = s.Authenticate(ctx, u.Email, testPassword)
	checks["SetDisabled"] = s.SetDisabled(ctx, u.ID, true)
	for name, err := range checks {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with cancelled context: error %v, want context.Canceled", name, err)
		}
	}
	if n, _ := s.Count(context.Background()); n != 1 {
		t.Errorf("Count = %d after cancelled SignUp, want 1", n)
	}
}

func TestPersistenceAcrossReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "latchkey.db")
	clock := newFakeClock()

	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(db, Options{Hash: cheapParams, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	admin := mustSignUp(t, s, "admin@example.com", "Admin", testPassword)
	viewer := mustSignUp(t, s, "viewer@example.com", "Viewer", testPassword)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openDB(t, path)
	s, err = New(db, Options{Hash: cheapParams, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.NeedsSetup(ctx); ok {
		t.Error("NeedsSetup after reopen = true")
	}
	if n, _ := s.Count(ctx); n != 2 {
		t.Errorf("Count after reopen = %d", n)
	}
	got, err := s.Get(ctx, admin.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Email != admin.Email || got.Name != admin.Name || got.Role != RoleAdmin ||
		got.OrgID != admin.OrgID || got.PasswordHash != admin.PasswordHash ||
		!got.CreatedAt.Equal(admin.CreatedAt) || !got.LastLoginAt.IsZero() {
		t.Errorf("after reopen Get = %v, want %v", got, admin)
	}
	if _, err := s.Organization(ctx, admin.OrgID); err != nil {
		t.Errorf("Organization after reopen: %v", err)
	}
	// A sign-up after reopening joins the existing organization.
	third := mustSignUp(t, s, "third@example.com", "Third", testPassword)
	if third.Role != RoleViewer || third.OrgID != admin.OrgID {
		t.Errorf("third = %v, want viewer of %s", third, admin.OrgID)
	}
	if _, err := s.Authenticate(ctx, viewer.Email, testPassword); err != nil {
		t.Errorf("Authenticate after reopen: %v", err)
	}
}

func TestInjectedRandAndNow(t *testing.T) {
	clock := newFakeClock()
	// A deterministic stream: IDs and salts come from it.
	stream := bytes.NewReader(bytes.Repeat([]byte{0xab}, 4096))
	s, _ := newTestStore(t, Options{Rand: stream, Now: clock.Now})
	u := mustSignUp(t, s, "a@example.com", "A", testPassword)
	if u.ID != strings.Repeat("ab", 16) {
		t.Errorf("ID = %q, want from injected Rand", u.ID)
	}
	if !u.CreatedAt.Equal(clock.Now()) {
		t.Errorf("CreatedAt = %v, want %v", u.CreatedAt, clock.Now())
	}
	if !strings.Contains(u.PasswordHash, "$q6urq6urq6urq6urq6urqw$") {
		t.Errorf("salt not from injected Rand")
	}

	// The same stream yields the same ID again: the collision is refused,
	// never an overwrite.
	if _, err := s.SignUp(context.Background(), "b@example.com", "B", testPassword); err == nil {
		t.Error("SignUp with a colliding ID: want error")
	}
	if got, err := s.Get(context.Background(), u.ID); err != nil || got.Email != u.Email {
		t.Errorf("after collision Get = %v, %v; want the first user intact", got, err)
	}
	if n, _ := s.Count(context.Background()); n != 1 {
		t.Errorf("Count = %d after collision, want 1", n)
	}
	// An exhausted Rand is an error, not a zero ID.
	s.rand = bytes.NewReader(nil)
	if _, err := s.SignUp(context.Background(), "c@example.com", "C", testPassword); err == nil {
		t.Error("SignUp with exhausted Rand: want error")
	}
}

func TestUserFormattingOmitsHash(t *testing.T) {
	s, _ := newTestStore(t, Options{})
	u := mustSignUp(t, s, "a@example.com", "A", testPassword)
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("login", "user", u)
	for _, out := range []string{
		fmt.Sprint(u), fmt.Sprintf("%v %+v %#v %s", u, u, u, u), u.String(), logged.String(),
	} {
		if strings.Contains(out, u.PasswordHash) || strings.Contains(out, "argon2") {
			t.Errorf("formatted user contains the password hash: %s", out)
		}
		if !strings.Contains(out, u.ID) {
			t.Errorf("formatted user lacks its ID: %s", out)
		}
	}
}
