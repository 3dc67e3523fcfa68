package main

import (
	"context"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/cmd/latchkey/server"
	"github.com/latchkey-dev/latchkey/users"
)

// adminFixture runs administration commands in-process on one data
// directory and remembers everything they printed, so that a test can check
// that no secret ever appeared.
type adminFixture struct {
	t       *testing.T
	dataDir string
	env     map[string]string
	printed strings.Builder
}

func newAdminFixture(t *testing.T, env ...string) *adminFixture {
	t.Helper()
	f := &adminFixture{t: t, dataDir: filepath.Join(t.TempDir(), "data")}
	f.env = map[string]string{
		"LATCHKEY_DATA_DIR":   f.dataDir,
		"LATCHKEY_PUBLIC_URL": "http://localhost:8080",
	}
	for i := 0; i+1 < len(env); i += 2 {
		f.env[env[i]] = env[i+1]
	}
	return f
}

func (f *adminFixture) getenv(k string) (string, bool) {
	v, ok := f.env[k]
	return v, ok
}

// admin runs `latchkey args...` with stdin and returns the exit code and
// what it wrote to stdout and stderr.
func (f *adminFixture) admin(stdin string, args ...string) (int, string, string) {
	f.t.Helper()
	var out, errOut strings.Builder
	code := admin(args, strings.NewReader(stdin), &out, &errOut, f.getenv)
	f.printed.WriteString(out.String())
	f.printed.WriteString(errOut.String())
	return code, out.String(), errOut.String()
}

// ok runs a command that must succeed and returns its stdout.
func (f *adminFixture) ok(stdin string, args ...string) string {
	f.t.Helper()
	code, out, errOut := f.admin(stdin, args...)
	if code != 0 {
		f.t.Fatalf("latchkey %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// fails runs a command that must exit with code and returns its stderr.
func (f *adminFixture) fails(code int, stdin string, args ...string) string {
	f.t.Helper()
	got, out, errOut := f.admin(stdin, args...)
	if got != code {
		f.t.Fatalf("latchkey %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), got, code, out, errOut)
	}
	return errOut
}

// withStore opens the data directory the way the server does, runs fn on
// its users.Store and closes it again, so that the next command can open it.
func (f *adminFixture) withStore(fn func(ctx context.Context, s *users.Store)) {
	f.t.Helper()
	db, _, err := server.OpenDB(f.dataDir, time.Second)
	if err != nil {
		f.t.Fatal(err)
	}
	defer db.Close()
	s, err := users.New(db, users.Options{ValidEmailDomain: f.env["BYOC_VALID_EMAIL_DOMAIN"]})
	if err != nil {
		f.t.Fatal(err)
	}
	fn(context.Background(), s)
}

// neverPrinted fails the test if any of secrets appeared in any output.
func (f *adminFixture) neverPrinted(secrets ...string) {
	f.t.Helper()
	for _, s := range secrets {
		if strings.Contains(f.printed.String(), s) {
			f.t.Errorf("secret %q appeared in the output", s)
		}
	}
}

func mustContain(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(got, want) {
			t.Errorf("%s lacks %q:\n%s", what, want, got)
		}
	}
}

// listRow returns the fields of the row of `users list` for email.
func listRow(t *testing.T, list, email string) []string {
	t.Helper()
	for line := range strings.Lines(list) {
		if fields := strings.Fields(line); len(fields) > 0 && fields[0] == email {
			return fields
		}
	}
	return nil
}

const (
	alicePassword = "alice-correct-horse-1"
	bobPassword   = "bob-battery-staple-22"
)

// addAliceAndBob creates alice (the first account) and bob.
func (f *adminFixture) addAliceAndBob() {
	f.t.Helper()
	f.ok(alicePassword+"\n", "users", "add", "alice@example.com", "--name", "Alice", "--password-stdin")
	f.ok(bobPassword+"\r\n", "users", "add", "bob@example.com", "--name", "Bob", "--password-stdin")
}

func TestAdminUsersAddAndList(t *testing.T) {
	f := newAdminFixture(t)
	out := f.ok(alicePassword+"\n", "users", "add", "alice@example.com", "--name", "Alice Liddell", "--role", "viewer", "--password-stdin")
	mustContain(t, "first users add", out, "created alice@example.com (admin), id ", "first account", "not viewer")
	m := regexp.MustCompile(`id ([0-9a-f]{32})\n`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no ID printed: %q", out)
	}
	aliceID := m[1]
	// Flags before the address work too; no trailing newline is fine.
	out = f.ok(bobPassword, "users", "add", "--password-stdin", "--name", "Bob", "bob@example.com")
	mustContain(t, "second users add", out, "created bob@example.com (viewer), id ")

	list := f.ok("", "users", "list")
	if !strings.HasPrefix(list, "EMAIL") || !regexp.MustCompile(`^EMAIL +NAME +ROLE +STATUS +LAST SIGN-IN +ID\n`).MatchString(list) {
		t.Errorf("list header:\n%s", list)
	}
	if got := listRow(t, list, "alice@example.com"); len(got) != 7 || got[3] != "admin" || got[4] != "active" || got[5] != "never" || got[6] != aliceID {
		t.Errorf("alice's row %q in:\n%s", got, list)
	}
	if got := listRow(t, list, "bob@example.com"); len(got) != 6 || got[2] != "viewer" || got[3] != "active" || got[4] != "never" {
		t.Errorf("bob's row %q in:\n%s", got, list)
	}
	if strings.Index(list, "alice@") > strings.Index(list, "bob@") {
		t.Errorf("list not sorted by email:\n%s", list)
	}

	f.withStore(func(ctx context.Context, s *users.Store) {
		alice, err := s.Authenticate(ctx, "alice@example.com", alicePassword)
		if err != nil {
			t.Fatalf("alice cannot authenticate with the password from stdin: %v", err)
		}
		bob, err := s.Authenticate(ctx, "bob@example.com", bobPassword)
		if err != nil {
			t.Fatalf("bob cannot authenticate with the password from stdin: %v", err)
		}
		if alice.Role != users.RoleAdmin || bob.Role != users.RoleViewer {
			t.Errorf("roles: alice %s, bob %s; want admin, viewer", alice.Role, bob.Role)
		}
		if alice.OrgID == "" || alice.OrgID != bob.OrgID {
			t.Errorf("organizations: alice %q, bob %q; want the same", alice.OrgID, bob.OrgID)
		}
		if alice.Name != "Alice Liddell" {
			t.Errorf("alice's name %q", alice.Name)
		}
		if alice.ID != aliceID {
			t.Errorf("alice's ID %q, printed %q", alice.ID, aliceID)
		}
	})
	// The sign-ins above show up as RFC 3339 UTC times.
	list = f.ok("", "users", "list")
	if got := listRow(t, list, "bob@example.com"); len(got) != 6 || !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`).MatchString(got[4]) {
		t.Errorf("bob's last sign-in %q in:\n%s", got, list)
	}

	errOut := f.fails(1, "carol-password-333\n", "users", "add", "bob@example.com", "--name", "Bob again", "--password-stdin")
	mustContain(t, "duplicate add", errOut, "bob@example.com already has an account")
	mustContain(t, "audit trail", f.printed.String(), "audit: ", "event=user.created", "email=alice@example.com", "via=cli")
	f.neverPrinted(alicePassword, bobPassword, "carol-password-333")
}

func TestAdminSetRoleDisableEnableRemove(t *testing.T) {
	f := newAdminFixture(t)
	f.addAliceAndBob()
	var aliceID string
	f.withStore(func(ctx context.Context, s *users.Store) {
		alice, err := s.ByEmail(ctx, "alice@example.com")
		if err != nil {
			t.Fatal(err)
		}
		aliceID = alice.ID
	})
	role := func(email string) users.Role {
		var r users.Role
		f.withStore(func(ctx context.Context, s *users.Store) {
			u, err := s.ByEmail(ctx, email)
			if err != nil {
				t.Fatal(err)
			}
			r = u.Role
		})
		return r
	}

	// Only admin alice: she cannot be demoted, disabled or removed.
	lastAdmin := "alice@example.com is the last active administrator: promote another account first"
	mustContain(t, "demoting the last admin", f.fails(1, "", "users", "set-role", "alice@example.com", "viewer"), lastAdmin)
	mustContain(t, "disabling the last admin", f.fails(1, "", "users", "disable", aliceID), lastAdmin)
	mustContain(t, "removing the last admin", f.fails(1, "", "users", "remove", "alice@example.com"), lastAdmin)
	if r := role("alice@example.com"); r != users.RoleAdmin {
		t.Fatalf("alice is %s after refused changes", r)
	}

	mustContain(t, "promote", f.ok("", "users", "set-role", "bob@example.com", "admin"), "bob@example.com is now admin")
	mustContain(t, "demote by ID", f.ok("", "users", "set-role", aliceID, "viewer"), "alice@example.com is now viewer")
	if a, b := role("alice@example.com"), role("bob@example.com"); a != users.RoleViewer || b != users.RoleAdmin {
		t.Fatalf("after promote/demote: alice %s, bob %s", a, b)
	}
	mustContain(t, "demoting the new last admin", f.fails(1, "", "users", "set-role", "bob@example.com", "viewer"),
		"bob@example.com is the last active administrator: promote another account first")
	f.ok("", "users", "set-role", "alice@example.com", "admin")

	mustContain(t, "unknown role", f.fails(2, "", "users", "set-role", "bob@example.com", "owner"), `"admin"`, `"viewer"`)
	mustContain(t, "unknown account", f.fails(1, "", "users", "set-role", "nobody@example.com", "admin"), "no account nobody@example.com")
	mustContain(t, "unknown ID", f.fails(1, "", "users", "disable", "0123abcd"), "no account 0123abcd")

	mustContain(t, "disable", f.ok("", "users", "disable", "bob@example.com"), "disabled bob@example.com")
	f.withStore(func(ctx context.Context, s *users.Store) {
		if _, err := s.Authenticate(ctx, "bob@example.com", bobPassword); !errors.Is(err, users.ErrDisabled) {
			t.Errorf("bob after disable: %v, want ErrDisabled", err)
		}
	})
	if got := listRow(t, f.ok("", "users", "list"), "bob@example.com"); len(got) < 4 || got[3] != "disabled" {
		t.Errorf("bob's row after disable: %q", got)
	}
	mustContain(t, "enable", f.ok("", "users", "enable", "bob@example.com"), "enabled bob@example.com")
	f.withStore(func(ctx context.Context, s *users.Store) {
		if _, err := s.Authenticate(ctx, "bob@example.com", bobPassword); err != nil {
			t.Errorf("bob after enable: %v", err)
		}
	})

	mustContain(t, "remove", f.ok("", "users", "remove", "bob@example.com"), "removed bob@example.com")
	f.withStore(func(ctx context.Context, s *users.Store) {
		if _, err := s.ByEmail(ctx, "bob@example.com"); !errors.Is(err, users.ErrNotFound) {
			t.Errorf("bob after remove: %v, want ErrNotFound", err)
		}
	})
	if list := f.ok("", "users", "list"); strings.Contains(list, "bob@") {
		t.Errorf("bob still listed:\n%s", list)
	}
	mustContain(t, "remove again", f.fails(1, "", "users", "remove", "bob@example.com"), "no account bob@example.com")

	mustContain(t, "audit trail", f.printed.String(),
		"event=user.role_changed", "event=user.disabled", "event=user.enabled", "event=user.removed", "via=cli")
	f.neverPrinted(alicePassword, bobPassword)
}

// linkToken returns the token of the only link in out that starts with prefix.
func linkToken(t *testing.T, out, prefix string) string {
	t.Helper()
	m := regexp.MustCompile(regexp.QuoteMeta(prefix)+`([A-Za-z0-9_-]+)\s`).FindAllStringSubmatch(out, -1)
	if len(m) != 1 {
		t.Fatalf("no single link %s… in:\n%s", prefix, out)
	}
	return m[0][1]
}

func TestAdminResetLink(t *testing.T) {
	f := newAdminFixture(t)
	f.addAliceAndBob()
	out := f.ok("", "users", "reset-link", "bob@example.com", "--ttl", "30m")
	mustContain(t, "reset-link", out, "single use", "valid until ")
	token := linkToken(t, out, "http://localhost:8080/oidc/reset?token=")
	m := regexp.MustCompile(`valid until (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no expiry in %q", out)
	}
	expiry, err := time.Parse(time.RFC3339, m[1])
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(expiry); d < 25*time.Minute || d > 31*time.Minute {
		t.Errorf("expiry %s is %s away, want about 30m", expiry, d)
	}
	const newPassword = "bob-new-password-4444"
	f.withStore(func(ctx context.Context, s *users.Store) {
		if _, err := s.ResetPassword(ctx, token, newPassword); err != nil {
			t.Fatalf("the printed reset link does not work: %v", err)
		}
		if _, err := s.Authenticate(ctx, "bob@example.com", newPassword); err != nil {
			t.Errorf("new password: %v", err)
		}
	})
	f.fails(2, "", "users", "reset-link", "bob@example.com", "--ttl", "-1h")
	mustContain(t, "reset-link for nobody", f.fails(1, "", "users", "reset-link", "nobody@example.com"), "no account nobody@example.com")
	mustContain(t, "audit trail", f.printed.String(), "event=reset_link.created", "email=bob@example.com", "via=cli")
	if strings.Count(f.printed.String(), token) != 1 {
		t.Errorf("the token appears other than once, in the link:\n%s", f.printed.String())
	}
	f.neverPrinted(alicePassword, bobPassword, newPassword)
}

func TestAdminInvitations(t *testing.T) {
	f := newAdminFixture(t)
	mustContain(t, "invite without a database", f.fails(1, "", "invite", "create", "carol@example.com"), "no database at")
	f.withStore(func(context.Context, *users.Store) {}) // as if the server had run once
	mustContain(t, "invite before any account", f.fails(1, "", "invite", "create", "carol@example.com"),
		"there is no account yet", "latchkey users add", "--password-stdin")
	f.ok(alicePassword+"\n", "users", "add", "alice@example.com", "--name", "Alice", "--password-stdin")
	if out := f.ok("", "invite", "list"); !strings.Contains(out, "no pending invitations") {
		t.Errorf("empty invite list: %q", out)
	}

	out := f.ok("", "invite", "create", "carol@example.com", "--role", "admin", "--ttl", "48h")
	mustContain(t, "invite create", out, "carol@example.com", "admin", "valid until ")
	token := linkToken(t, out, "http://localhost:8080/oidc/invite?token=")
	list := f.ok("", "invite", "list")
	if !regexp.MustCompile(`^ID +EMAIL +ROLE +EXPIRES\n[0-9a-f]{32} +carol@example\.com +admin +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n$`).MatchString(list) {
		t.Errorf("invite list:\n%s", list)
	}
	const carolPassword = "carol-password-55555"
	f.withStore(func(ctx context.Context, s *users.Store) {
		u, err := s.AcceptInvitation(ctx, token, "Carol", carolPassword)
		if err != nil {
			t.Fatalf("the printed invitation link does not work: %v", err)
		}
		if u.Role != users.RoleAdmin || u.Email != "carol@example.com" {
			t.Errorf("accepted invitation made %v", u)
		}
	})
	mustContain(t, "invite an existing account", f.fails(1, "", "invite", "create", "carol@example.com"), "carol@example.com already has an account")

	out = f.ok("", "invite", "create", "dave@example.com")
	daveToken := linkToken(t, out, "http://localhost:8080/oidc/invite?token=")
	fields := strings.Fields(f.ok("", "invite", "list"))
	if len(fields) != 8 || fields[5] != "dave@example.com" || fields[6] != "viewer" {
		t.Fatalf("invite list fields %q", fields)
	}
	mustContain(t, "invite revoke", f.ok("", "invite", "revoke", fields[4]), "revoked invitation "+fields[4], "dave@example.com")
	if out := f.ok("", "invite", "list"); !strings.Contains(out, "no pending invitations") {
		t.Errorf("invite list after revoke: %q", out)
	}
	f.withStore(func(ctx context.Context, s *users.Store) {
		if _, err := s.Invitation(ctx, daveToken); !errors.Is(err, users.ErrInvitationInvalid) {
			t.Errorf("revoked invitation: %v, want ErrInvitationInvalid", err)
		}
	})
	errOut := f.fails(1, "", "invite", "revoke", daveToken)
	mustContain(t, "revoking a token", errOut, "no pending invitation")
	if strings.Contains(errOut, daveToken) {
		t.Errorf("revoke repeated what may be a token: %q", errOut)
	}
	mustContain(t, "audit trail", f.printed.String(), "event=invitation.created", "event=invitation.revoked", "email=dave@example.com", "via=cli")
	for _, tok := range []string{token, daveToken} {
		if strings.Count(f.printed.String(), tok) != 1 {
			t.Errorf("token %s appears other than once, in the link", tok)
		}
	}
	f.neverPrinted(alicePassword, carolPassword)
}

func TestAdminEmailDomain(t *testing.T) {
	f := newAdminFixture(t, "BYOC_VALID_EMAIL_DOMAIN", "example.com")
	errOut := f.fails(1, alicePassword+"\n", "users", "add", "alice@example.org", "--name", "Alice", "--password-stdin")
	mustContain(t, "first add outside the domain", errOut, "alice@example.org is not allowed", "@example.com")
	f.ok(alicePassword+"\n", "users", "add", "alice@example.com", "--name", "Alice", "--password-stdin")
	mustContain(t, "invite outside the domain", f.fails(1, "", "invite", "create", "bob@sub.example.com"), "@example.com", "validEmailDomain")
	mustContain(t, "add outside the domain", f.fails(1, bobPassword+"\n", "users", "add", "bob@example.net", "--name", "Bob", "--password-stdin"), "@example.com")
	f.neverPrinted(alicePassword, bobPassword)
}

func TestAdminUsageErrors(t *testing.T) {
	f := newAdminFixture(t)
	for _, args := range [][]string{
		{"users"},
		{"users", "frobnicate"},
		{"invite", "accept", "x"},
		{"users", "add"},
		{"users", "add", "a@example.com", "b@example.com", "--name", "A", "--password-stdin"},
		{"users", "set-role", "a@example.com"},
		{"users", "add", "a@example.com", "--name", "A", "--role", "owner", "--password-stdin"},
		{"users", "list", "--bogus"},
		{"invite", "revoke"},
		{"invite", "create", "a@example.com", "--ttl", "0s"},
	} {
		var out, errOut strings.Builder
		if code := run(args, &out, &errOut, f.getenv); code != 2 {
			t.Errorf("latchkey %s: exit %d, want 2; stderr %q", strings.Join(args, " "), code, errOut.String())
		}
		if !strings.Contains(errOut.String(), "sage") {
			t.Errorf("latchkey %s: no usage text in %q", strings.Join(args, " "), errOut.String())
		}
	}
	// Nothing above touched the data directory.
	if m, _ := filepath.Glob(filepath.Join(f.dataDir, "*")); len(m) != 0 {
		t.Errorf("usage errors created %q", m)
	}

	var out, errOut strings.Builder
	if code := run([]string{"users", "help"}, &out, &errOut, f.getenv); code != 0 || !strings.Contains(out.String(), "latchkey invite revoke ID") {
		t.Errorf("users help: exit %d, stdout %q", code, out.String())
	}

	errText := f.fails(2, "", "users", "add", "a@example.com", "--name", "A")
	mustContain(t, "add without --password-stdin", errText, "--password-stdin", "invite create")
}

func TestAdminPasswordNeverPrinted(t *testing.T) {
	f := newAdminFixture(t)
	// A password typed as an argument is not echoed.
	f.fails(2, "", "users", "add", "alice@example.com", "typed-as-argument-1", "--name", "Alice", "--password-stdin")
	// Nor one that is refused.
	mustContain(t, "short password", f.fails(1, "abc1234\n", "users", "add", "alice@example.com", "--name", "Alice", "--password-stdin"), "at least 8")
	mustContain(t, "empty stdin", f.fails(1, "", "users", "add", "alice@example.com", "--name", "Alice", "--password-stdin"), "no password on standard input")
	// An unknown flag named like a password is not echoed with its value.
	f.fails(2, "", "users", "add", "alice@example.com", "--name", "Alice", "--password=given-as-flag-2")
	f.addAliceAndBob()
	f.ok("", "users", "list")
	f.neverPrinted("typed-as-argument-1", "abc1234", "given-as-flag-2", alicePassword, bobPassword)
}

func TestAdminRefusesInOIDCMode(t *testing.T) {
	f := newAdminFixture(t,
		"LATCHKEY_BASIC_AUTH_ENABLED", "false", "LATCHKEY_OIDC_ENABLED", "true",
		"OIDC_DISCOVERY_URL", "https://login.example.com/.well-known/openid-configuration",
		"OIDC_CLIENT_ID", "backend", "OIDC_CLIENT_SECRET", "secret")
	errOut := f.fails(1, "", "users", "list")
	mustContain(t, "OIDC mode", errOut, "external OpenID provider")
	if strings.Count(errOut, "\n") != 1 {
		t.Errorf("want one line, got %q", errOut)
	}
	if m, _ := filepath.Glob(filepath.Join(f.dataDir, "*")); len(m) != 0 {
		t.Errorf("OIDC mode created %q", m)
	}
}

// checkInUse runs `latchkey users list` while something else holds the
// database and checks that it gives up quickly with one line pointing at
// the web pages.
func checkInUse(t *testing.T, f *adminFixture) {
	t.Helper()
	type result struct {
		code           int
		stdout, stderr string
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		var out, errOut strings.Builder
		code := admin([]string{"users", "list"}, strings.NewReader(""), &out, &errOut, f.getenv)
		done <- result{code, out.String(), errOut.String()}
	}()
	select {
	case r := <-done:
		if elapsed := time.Since(start); elapsed > 5*time.Second {
			t.Errorf("took %s to give up", elapsed)
		}
		if r.code != 1 {
			t.Errorf("exit %d, want 1", r.code)
		}
		if r.stdout != "" || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("want exactly one line on stderr; stdout %q, stderr %q", r.stdout, r.stderr)
		}
		mustContain(t, "in-use message", r.stderr,
			"latchkey: "+filepath.Join(f.dataDir, server.DBFile)+" is in use by the running latchkey server",
			"use the web pages instead (http://localhost:8080/oidc/admin)", "stop the server and run this command again")
	case <-time.After(30 * time.Second):
		t.Fatal("the command hangs while the database is in use")
	}
}

func TestAdminRefusesWhileDatabaseIsOpen(t *testing.T) {
	f := newAdminFixture(t)
	f.ok(alicePassword+"\n", "users", "add", "alice@example.com", "--name", "Alice", "--password-stdin")
	db, _, err := server.OpenDB(f.dataDir, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	checkInUse(t, f)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// Released: the command works again.
	if got := listRow(t, f.ok("", "users", "list"), "alice@example.com"); got == nil {
		t.Error("alice not listed once the database is free")
	}
}

func TestAdminRefusesWhileServerRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	dir := t.TempDir()
	f := newAdminFixture(t)
	f.dataDir = filepath.Join(dir, "latchkey-data") // serve's default, relative to dir
	f.env["LATCHKEY_DATA_DIR"] = f.dataDir
	startServe(t, dir, freeAddr(t))
	checkInUse(t, f)
}

// TestAdminNoOpChanges: asking for the state an account already has says
// so, succeeds, and writes no audit line.
func TestAdminNoOpChanges(t *testing.T) {
	f := newAdminFixture(t)
	f.ok(alicePassword+"\n", "users", "add", "alice@example.com", "--name", "Alice", "--password-stdin")
	f.ok(bobPassword+"\n", "users", "add", "bob@example.com", "--name", "Bob", "--password-stdin")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"users", "set-role", "bob@example.com", "viewer"}, "bob@example.com is already viewer"},
		{[]string{"users", "enable", "bob@example.com"}, "bob@example.com is already active"},
	} {
		code, out, errOut := f.admin("", tc.args...)
		if code != 0 || !strings.Contains(out, tc.want) || strings.Contains(errOut, "audit:") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %q and no audit line", tc.args, code, out, errOut, tc.want)
		}
	}
	f.ok("", "users", "disable", "bob@example.com")
	if code, out, errOut := f.admin("", "users", "disable", "bob@example.com"); code != 0 || !strings.Contains(out, "is already disabled") || strings.Contains(errOut, "audit:") {
		t.Errorf("disable twice: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
