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

func TestSignUpFirstIsAdminOthersViewers(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	s, _ := newTestStore(t, Options{Now: clock.Now, OrganizationName: "Acme"})

	admin := mustSignUp(t, s, "  Admin@Example.COM ", "  Ada Admin  ", testPassword)
	if admin.Role != RoleAdmin {
		t.Errorf("first user role = %q, want admin", admin.Role)
	}
	if admin.Email != "admin@example.com" || admin.Name != "Ada Admin" {
		t.Errorf("first user = %v; want normalised email and trimmed name", admin)
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(admin.ID) {
		t.Errorf("ID %q is not 128 bits of hex", admin.ID)
	}
	if !admin.CreatedAt.Equal(clock.Now()) || !admin.LastLoginAt.IsZero() || admin.Disabled {
		t.Errorf("first user = %v", admin)
	}
	if !strings.HasPrefix(admin.PasswordHash, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Errorf("hash does not record the store's parameters")
	}
	org, err := s.Organization(ctx, admin.OrgID)
	if err != nil || org.Name != "Acme" || !org.CreatedAt.Equal(clock.Now()) {
		t.Fatalf("Organization = %+v, %v", org, err)
	}

	clock.Advance(1)
	viewer := mustSignUp(t, s, "viewer@example.com", "Vic", testPassword)
	if viewer.Role != RoleViewer || viewer.OrgID != admin.OrgID || viewer.ID == admin.ID {
		t.Errorf("second user = %v; want viewer of %s", viewer, admin.OrgID)
	}
	if !viewer.Role.Valid() || !admin.Role.Valid() || Role("root").Valid() {
		t.Error("Role.Valid")
	}
	stored, err := s.Get(ctx, viewer.ID)
	if err != nil || stored.PasswordHash != viewer.PasswordHash || stored.Role != RoleViewer {
		t.Errorf("stored = %v, %v", stored, err)
	}
}

func TestSignUpConcurrentFirstSignUps(t *testing.T) {
	ctx := context.Background()
	s, db := newTestStore(t, Options{MaxConcurrentHashes: 4})
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

	admins := 0
	orgIDs := map[string]bool{}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("SignUp %d: %v", i, errs[i])
		}
		if results[i].Role == RoleAdmin {
			admins++
		}
		orgIDs[results[i].OrgID] = true
	}
	if admins != 1 {
		t.Errorf("%d admins, want exactly 1", admins)
	}
	if len(orgIDs) != 1 {
		t.Errorf("users are in %d organizations, want 1", len(orgIDs))
	}
	orgs := 0
	if err := db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketOrgs).ForEach(func(k, v []byte) error { orgs++; return nil })
	}); err != nil {
		t.Fatal(err)
	}
	if orgs != 1 {
		t.Errorf("%d organizations stored, want 1", orgs)
	}
	if c, _ := s.Count(ctx); c != n {
		t.Errorf("Count = %d, want %d", c, n)
	}
}

func TestSignUpConcurrentSameEmail(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t, Options{})
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			// Same address, different case: one account.
			email := "Same@Example.com"
			if i%2 == 1 {
				email = "same@EXAMPLE.com"
			}
			_, errs[i] = s.SignUp(ctx, email, "Same", testPassword)
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ErrEmailTaken):
			t.Errorf("unexpected error %v", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d sign-ups succeeded, want 1", ok)
	}
	if c, _ := s.Count(ctx); c != 1 {
		t.Errorf("Count = %d, want 1", c)
	}
}

func TestSignUpEmailTakenAcrossCase(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t, Options{})
	first := mustSignUp(t, s, "Bob@Example.com", "Bob", testPassword)
	for _, email := range []string{"bob@example.com", "BOB@EXAMPLE.COM", "  bob@Example.Com\t"} {
		_, err := s.SignUp(ctx, email, "Other Bob", "another password")
		if !errors.Is(err, ErrEmailTaken) {
			t.Errorf("SignUp(%q) error %v, want ErrEmailTaken", email, err)
		}
	}
	got, err := s.ByEmail(ctx, "bob@example.com")
	if err != nil || got.ID != first.ID || got.Name != "Bob" {
		t.Errorf("original account changed: %v, %v", got, err)
	}
	if c, _ := s.Count(ctx); c != 1 {
		t.Errorf("Count = %d, want 1", c)
	}
}

func TestSignUpName(t *testing.T) {
	s, _ := newTestStore(t, Options{})
	cases := []struct {
		name string
		want error
	}{
		{"", ErrNameRequired},
		{"   \t\n", ErrNameRequired},
		{strings.Repeat("é", MaxNameLength), nil},
		{strings.Repeat("é", MaxNameLength+1), ErrNameTooLong},
		{"  " + strings.Repeat("x", MaxNameLength) + "  ", nil}, // trimmed before counting
		{"Bad\x00Name", ErrInvalidName},
		{"Bad\nName", ErrInvalidName},
		{"Bad\xffName", ErrInvalidName},
		{"José Ñúñez", nil},
	}
	for i, c := range cases {
		_, err := s.SignUp(context.Background(), fmt.Sprintf("name%d@example.com", i), c.name, testPassword)
		if c.want == nil && err != nil {
			t.Errorf("name %q: %v", c.name, err)
		}
		if c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("name %q: error %v, want %v", c.name, err, c.want)
		}
	}
}

func TestSignUpPasswordBounds(t *testing.T) {
	s, _ := newTestStore(t, Options{})
	cases := []struct {
		desc     string
		password string
		want     error
	}{
		{"8 multibyte runes", strings.Repeat("é", 8), nil},
		{"7 multibyte runes (14 bytes)", strings.Repeat("é", 7), ErrPasswordTooShort},
		{"8 four-byte runes", strings.Repeat("🔑", 8), nil},
		{"128 multibyte runes", strings.Repeat("é", 128), nil},
		{"129 multibyte runes", strings.Repeat("é", 129), ErrPasswordTooLong},
		{"128 four-byte runes", strings.Repeat("🔑", 128), nil},
		{"empty", "", ErrPasswordTooShort},
		{"spaces only count", "        ", nil},
	}
	for i, c := range cases {
		_, err := s.SignUp(context.Background(), fmt.Sprintf("pw%d@example.com", i), "P", c.password)
		if c.want == nil && err != nil {
			t.Errorf("%s: %v", c.desc, err)
		}
		if c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: error %v, want %v", c.desc, err, c.want)
		}
	}
	// The accepted multibyte password authenticates.
	if _, err := s.Authenticate(context.Background(), "pw0@example.com", strings.Repeat("é", 8)); err != nil {
		t.Errorf("Authenticate with multibyte password: %v", err)
	}
}

func TestSignUpInvalidEmail(t *testing.T) {
	s, _ := newTestStore(t, Options{})
	for _, email := range []string{"", "alice", "alice@localhost", "a@b@example.com", "@example.com"} {
		if _, err := s.SignUp(context.Background(), email, "A", testPassword); !errors.Is(err, ErrInvalidEmail) {
			t.Errorf("SignUp(%q) error %v, want ErrInvalidEmail", email, err)
		}
	}
	if ok, _ := s.NeedsSetup(context.Background()); !ok {
		t.Error("refused sign-ups created an account")
	}
}

func TestSignUpDomainPolicy(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t, Options{ValidEmailDomain: " Example.COM "})

	// The policy applies to the very first sign-up too.
	for _, email := range []string{
		"eve@sub.example.com",
		"eve@badexample.com",
		"eve@example.com.evil.org",
		"eve@example.co",
		"eve@example.org",
		"example.com@evil.org",
	} {
		_, err := s.SignUp(ctx, email, "Eve", testPassword)
		if !errors.Is(err, ErrEmailDomain) {
			t.Errorf("SignUp(%q) error %v, want ErrEmailDomain", email, err)
		}
	}
	if ok, _ := s.NeedsSetup(ctx); !ok {
		t.Fatal("a refused domain created an account")
	}
	for _, email := range []string{"ann@example.com", "Bob@EXAMPLE.com", "  carl@Example.Com  "} {
		if _, err := s.SignUp(ctx, email, "Ok", testPassword); err != nil {
			t.Errorf("SignUp(%q): %v", email, err)
		}
	}

	// Invalid email is reported as such, not as a domain problem.
	if _, err := s.SignUp(ctx, "nope", "N", testPassword); !errors.Is(err, ErrInvalidEmail) {
		t.Errorf("invalid email error %v, want ErrInvalidEmail", err)
	}

	// No policy: any domain.
	open, _ := newTestStore(t, Options{})
	if _, err := open.SignUp(ctx, "x@anything.example.net", "X", testPassword); err != nil {
		t.Errorf("no policy: %v", err)
	}
}

func TestSignUpErrorsDoNotLeakPassword(t *testing.T) {
	ctx := context.Background()
	s, _ := newTestStore(t, Options{ValidEmailDomain: "example.com"})
	const secret = "s3cret-Passw0rd-ZZZ"
	first := mustSignUp(t, s, "a@example.com", "A", secret)
	var errs []error
	for _, args := range [][3]string{
		{"a@example.com", "A", secret},                                     // taken
		{"b@other.com", "B", secret},                                       // domain
		{"b@example.com", "", secret},                                      // name
		{secret, "B", secret},                                              // password typed as email
		{"b@example.com", "B", secret + secret + strings.Repeat("x", 200)}, // too long
	} {
		_, err := s.SignUp(ctx, args[0], args[1], args[2])
		errs = append(errs, err)
	}
	_, err := s.Authenticate(ctx, "a@example.com", secret+"x")
	errs = append(errs, err)
	_, err = s.Authenticate(ctx, secret, secret)
	errs = append(errs, err)
	for _, err := range errs {
		if err == nil {
			t.Fatal("expected an error")
		}
		msg := err.Error()
		if strings.Contains(msg, "s3cret") || strings.Contains(msg, first.PasswordHash) || strings.Contains(msg, "argon2") {
			t.Errorf("error leaks a secret: %s", msg)
		}
	}
}

func TestSignUpWaitsForHashSlot(t *testing.T) {
	s, _ := newTestStore(t, Options{MaxConcurrentHashes: 1})
	s.limiter.sem <- struct{}{} // occupy the only slot
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := s.SignUp(ctx, "a@example.com", "A", testPassword)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("SignUp while the limiter is full: error %v, want DeadlineExceeded", err)
	}
	<-s.limiter.sem
	if ok, _ := s.NeedsSetup(context.Background()); !ok {
		t.Error("cancelled sign-up created an account")
	}
	mustSignUp(t, s, "a@example.com", "A", testPassword)
}

func TestValidateName(t *testing.T) {
	for name, want := range map[string]error{
		"Ada":                                nil,
		"  Ada Lovelace  ":                   nil,
		"   ":                                ErrNameRequired,
		strings.Repeat("a", MaxNameLength+1): ErrNameTooLong,
		"Ada\x00":                            ErrInvalidName,
		string([]byte{0xff, 0xfe}):           ErrInvalidName,
	} {
		if err := ValidateName(name); !errors.Is(err, want) || (want == nil && err != nil) {
			t.Errorf("ValidateName(%q) = %v, want %v", name, err, want)
		}
	}
}
