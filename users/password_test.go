package users

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestValidatePassword(t *testing.T) {
	cases := []struct {
		desc     string
		password string
		want     error
	}{
		{"empty", "", ErrPasswordTooShort},
		{"7 ASCII", "1234567", ErrPasswordTooShort},
		{"8 ASCII", "12345678", nil},
		{"7 two-byte runes", strings.Repeat("é", 7), ErrPasswordTooShort},
		{"8 two-byte runes", strings.Repeat("é", 8), nil},
		{"7 four-byte runes (28 bytes)", strings.Repeat("🔑", 7), ErrPasswordTooShort},
		{"128 ASCII", strings.Repeat("a", 128), nil},
		{"129 ASCII", strings.Repeat("a", 129), ErrPasswordTooLong},
		{"128 two-byte runes", strings.Repeat("é", 128), nil},
		{"129 two-byte runes", strings.Repeat("é", 129), ErrPasswordTooLong},
		{"128 four-byte runes", strings.Repeat("🔑", 128), nil},
		{"129 four-byte runes", strings.Repeat("🔑", 129), ErrPasswordTooLong},
		{"huge", strings.Repeat("a", 1<<20), ErrPasswordTooLong},
		{"no composition rules", "aaaaaaaa", nil},
	}
	for _, c := range cases {
		err := ValidatePassword(c.password)
		if c.want == nil && err != nil {
			t.Errorf("%s: %v", c.desc, err)
		}
		if c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: error %v, want %v", c.desc, err, c.want)
		}
	}
}

func TestPasswordHashReferenceVectors(t *testing.T) {
	// From the reference argon2 implementation's test suite:
	// password "password", salt "somesalt".
	vectors := []string{
		"$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
		"$argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHQ$bQk8UB/VmZZF4Oo79iDXuL5/0ttZwg2f/5U52iv1cDc",
	}
	for _, v := range vectors {
		h, err := parsePasswordHash(v)
		if err != nil {
			t.Fatalf("parse %q: %v", v, err)
		}
		if string(h.salt) != "somesalt" || h.params.Memory != 256 || h.params.Time != 2 || h.params.KeyLen != 32 || h.params.SaltLen != 8 {
			t.Errorf("parse %q = %+v", v, h.params)
		}
		if !h.matches("password") {
			t.Errorf("%q does not verify \"password\"", v)
		}
		if h.matches("passwore") {
			t.Errorf("%q verifies a wrong password", v)
		}
		if h.String() != v {
			t.Errorf("round trip: %q != %q", h.String(), v)
		}
	}
}

func TestPasswordHashRoundTrip(t *testing.T) {
	params := HashParams{Memory: 96, Time: 3, Threads: 2, KeyLen: 20, SaltLen: 11}
	salt := []byte("0123456789a")
	h := newPasswordHash(params, salt, "pässwörd")
	enc := h.String()
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=96,t=3,p=2$") || strings.Contains(enc, "=$") || strings.HasSuffix(enc, "=") {
		t.Errorf("encoding %q", enc)
	}
	parsed, err := parsePasswordHash(enc)
	if err != nil {
		t.Fatal(err)
	}
	if parsed.params != params || string(parsed.salt) != string(salt) || string(parsed.key) != string(h.key) {
		t.Errorf("round trip %+v, want %+v", parsed.params, params)
	}
	if !parsed.matches("pässwörd") || parsed.matches("passwörd") {
		t.Error("round-tripped hash verifies wrongly")
	}
	if parsed.String() != enc {
		t.Errorf("re-encoding %q != %q", parsed.String(), enc)
	}
}

func TestParsePasswordHashMalformed(t *testing.T) {
	const salt, key = "c29tZXNhbHQ", "nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"
	bad := []string{
		"",
		"$",
		"password",
		"$argon2i$v=19$m=256,t=2,p=1$" + salt + "$" + key,  // wrong variant
		"$argon2d$v=19$m=256,t=2,p=1$" + salt + "$" + key,  // wrong variant
		"$argon2id$v=16$m=256,t=2,p=1$" + salt + "$" + key, // old version
		"$argon2id$m=256,t=2,p=1$" + salt + "$" + key,      // version missing
		"$argon2id$v=19$m=256,t=2$" + salt + "$" + key,     // p missing
		"$argon2id$v=19$t=2,m=256,p=1$" + salt + "$" + key, // wrong order
		"$argon2id$v=19$m=256,t=2,p=1,x=1$" + salt + "$" + key,
		"$argon2id$v=19$m=256,t=2,p=1,keyid=abc$" + salt + "$" + key,
		"$argon2id$v=19$m=0256,t=2,p=1$" + salt + "$" + key, // leading zero
		"$argon2id$v=19$m=+256,t=2,p=1$" + salt + "$" + key, // sign
		"$argon2id$v=19$m=-1,t=2,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=,t=2,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=256 ,t=2,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=99999999999,t=2,p=1$" + salt + "$" + key, // overflows uint32
		"$argon2id$v=19$m=4294967295,t=2,p=1$" + salt + "$" + key,  // above MaxHashMemory
		"$argon2id$v=19$m=256,t=0,p=1$" + salt + "$" + key,         // t < 1
		"$argon2id$v=19$m=256,t=4294967295,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=256,t=2,p=0$" + salt + "$" + key,                               // p < 1
		"$argon2id$v=19$m=256,t=2,p=256$" + salt + "$" + key,                             // overflows uint8
		"$argon2id$v=19$m=8,t=2,p=2$" + salt + "$" + key,                                 // memory < 8 KiB per lane
		"$argon2id$v=19$m=256,t=2,p=1$" + salt,                                           // key missing
		"$argon2id$v=19$m=256,t=2,p=1$" + salt + "$",                                     // empty key
		"$argon2id$v=19$m=256,t=2,p=1$$" + key,                                           // empty salt
		"$argon2id$v=19$m=256,t=2,p=1$c29tZQ$" + key,                                     // salt too short
		"$argon2id$v=19$m=256,t=2,p=1$" + salt + "$c29tZXNhbHQ",                          // key too short
		"$argon2id$v=19$m=256,t=2,p=1$" + salt + "=$" + key,                              // padding
		"$argon2id$v=19$m=256,t=2,p=1$" + salt + "$" + key + "=",                         // padding
		"$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ!$" + key,                               // bad alphabet
		"$argon2id$v=19$m=256,t=2,p=1$" + salt + "$" + strings.ReplaceAll(key, "/", "_"), // URL alphabet
		"$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHR$" + key,                                // non-canonical trailing bits
		"$argon2id$v=19$m=256,t=2,p=1$" + salt + "$" + key + "$extra",
		" $argon2id$v=19$m=256,t=2,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=256,t=2,p=1$" + salt + "$" + key + "\n",
	}
	for _, s := range bad {
		h, err := parsePasswordHash(s)
		if !errors.Is(err, ErrMalformedHash) {
			t.Errorf("parsePasswordHash(%q) = %+v, %v; want ErrMalformedHash", s, h.params, err)
		}
		if err != nil && strings.Contains(err.Error(), key) {
			t.Errorf("error quotes the hash: %v", err)
		}
	}
}

// runConcurrentHashes runs n concurrent hashes through s and returns the highest
// number observed in flight at once. Each hash holds its slot for a moment
// so that, were the limiter absent, the hashes would overlap.
func runConcurrentHashes(t *testing.T, s *Store, n int) int64 {
	t.Helper()
	s.limiter.hook = func() { time.Sleep(5 * time.Millisecond) }
	defer func() { s.limiter.hook = nil }()
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			if _, err := s.hashPassword(context.Background(), testPassword); err != nil {
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	if got := s.limiter.inFlight.Load(); got != 0 {
		t.Errorf("%d hashes still counted in flight", got)
	}
	return s.limiter.maxInFlight.Load()
}

func TestLimiterBoundsConcurrentHashes(t *testing.T) {
	for _, limit := range []int{1, 3} {
		s, _ := newTestStore(t, Options{MaxConcurrentHashes: limit})
		s.limiter.maxInFlight.Store(0)
		got := runConcurrentHashes(t, s, 12)
		if got > int64(limit) {
			t.Errorf("limit %d: %d hashes ran at once", limit, got)
		}
		if got < 1 {
			t.Errorf("limit %d: instrumentation saw no hash", limit)
		}
	}
}

// The instrumentation can see concurrency, so the test above can fail:
// with a wide limit, overlapping hashes are observed.
func TestLimiterInstrumentationSeesOverlap(t *testing.T) {
	s, _ := newTestStore(t, Options{MaxConcurrentHashes: 12})
	s.limiter.maxInFlight.Store(0)
	if got := runConcurrentHashes(t, s, 12); got < 2 {
		t.Errorf("max in flight %d with 12 slots; instrumentation cannot detect overlap", got)
	}
}

func TestLimiterCoversVerification(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t, Options{MaxConcurrentHashes: 1})
	mustSignUp(t, s, "alice@example.com", "Alice", testPassword)
	s.limiter.maxInFlight.Store(0)
	s.limiter.hook = func() { time.Sleep(2 * time.Millisecond) }
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			email, pw := "alice@example.com", testPassword
			switch i % 3 {
			case 1:
				pw = "wrong password"
			case 2:
				email = "nobody@example.com"
			}
			_, _ = s.Authenticate(ctx, email, pw)
		})
	}
	wg.Wait()
	if got := s.limiter.maxInFlight.Load(); got != 1 {
		t.Errorf("max in flight %d, want 1", got)
	}
}

func TestLimiterRespectsContext(t *testing.T) {
	s, _ := newTestStore(t, Options{MaxConcurrentHashes: 1})
	mustSignUp(t, s, "alice@example.com", "Alice", testPassword)
	s.limiter.sem <- struct{}{} // occupy the only slot
	defer func() { <-s.limiter.sem }()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := s.Authenticate(ctx, "alice@example.com", testPassword)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Authenticate while the limiter is full: error %v, want DeadlineExceeded", err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	time.AfterFunc(10*time.Millisecond, cancel2)
	if _, err := s.hashPassword(ctx2, testPassword); !errors.Is(err, context.Canceled) {
		t.Errorf("hashPassword while the limiter is full: error %v, want Canceled", err)
	}
}

func TestHashParamsValidate(t *testing.T) {
	if err := DefaultHashParams.validate(); err != nil {
		t.Errorf("DefaultHashParams invalid: %v", err)
	}
	if err := cheapParams.validate(); err != nil {
		t.Errorf("cheapParams invalid: %v", err)
	}
	if err := (HashParams{Memory: 16, Time: 1, Threads: 2, KeyLen: 16, SaltLen: 8}).validate(); err != nil {
		t.Errorf("minimum params invalid: %v", err)
	}
	for _, p := range []HashParams{
		{Memory: 15, Time: 1, Threads: 2, KeyLen: 16, SaltLen: 8},
		{Memory: 64, Time: 0, Threads: 1, KeyLen: 16, SaltLen: 8},
		{Memory: 64, Time: 1, Threads: 0, KeyLen: 16, SaltLen: 8},
		{Memory: 64, Time: 1, Threads: 1, KeyLen: 15, SaltLen: 8},
		{Memory: 64, Time: 1, Threads: 1, KeyLen: 16, SaltLen: 7},
		{Memory: 64, Time: 1, Threads: 1, KeyLen: MaxHashKeyLen + 1, SaltLen: 8},
		{Memory: 64, Time: 1, Threads: 1, KeyLen: 16, SaltLen: MaxSaltLen + 1},
	} {
		if err := p.validate(); !errors.Is(err, ErrInvalidHashParams) {
			t.Errorf("%+v: error %v, want ErrInvalidHashParams", p, err)
		}
	}
}

func TestHashQueueIsBounded(t *testing.T) {
	s, _ := newTestStore(t, Options{MaxConcurrentHashes: 1, MaxQueuedHashes: 2})
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	s.limiter.hook = func() {
		select {
		case started <- struct{}{}:
		default:
		}
		<-release
	}
	ctx := context.Background()
	results := make(chan error, 3)
	go func() { _, err := s.hashPassword(ctx, "password one"); results <- err }()
	<-started // one hash is running and holds the only slot
	for range 2 {
		go func() { _, err := s.hashPassword(ctx, "password two"); results <- err }()
	}
	// Wait until both are queued, then one more must fail at once.
	for s.limiter.waiting.Load() < 2 {
		runtime.Gosched()
	}
	if _, err := s.hashPassword(ctx, "password three"); !errors.Is(err, ErrBusy) {
		t.Errorf("a hash beyond the queue bound: %v, want ErrBusy", err)
	}
	close(release)
	for range 3 {
		if err := <-results; err != nil {
			t.Errorf("a queued hash failed: %v", err)
		}
	}
}
