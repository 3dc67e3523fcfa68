package testenv_test

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/latchkey-dev/latchkey/cmd/latchkey/server"
	"github.com/latchkey-dev/latchkey/testenv"
)

var linkRe = regexp.MustCompile(`id="link" type="text" readonly value="([^"]+)"`)

// adminPost submits one action of the Organization page.
func adminPost(t *testing.T, env *testenv.Env, c *http.Client, values url.Values) *testenv.Response {
	t.Helper()
	page := env.Get(c, "/oidc/admin")
	if page.StatusCode != http.StatusOK {
		t.Fatalf("organization page: %d\n%s", page.StatusCode, page.Body)
	}
	f, err := testenv.ParseForm(page.Body)
	if err != nil {
		t.Fatal(err)
	}
	values.Set("csrf", f.Values.Get("csrf"))
	return env.Do(c, http.MethodPost, "/oidc/admin", values)
}

// invite creates an invitation on the Organization page and returns its link.
func invite(t *testing.T, env *testenv.Env, admin *http.Client, email, role string) string {
	t.Helper()
	r := adminPost(t, env, admin, url.Values{"action": {"invite"}, "email": {email}, "role": {role}})
	m := linkRe.FindStringSubmatch(r.Body)
	if r.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("invite %s: %d\n%s", email, r.StatusCode, r.Body)
	}
	return html.UnescapeString(m[1])
}

// accept opens an invitation link in a fresh browser and joins.
func accept(t *testing.T, env *testenv.Env, link, name, password string) (*http.Client, *testenv.Response) {
	t.Helper()
	c := env.Client()
	page := env.Get(c, link)
	if page.StatusCode != http.StatusOK {
		return c, page
	}
	return c, env.Submit(c, page, url.Values{"name": {name}, "password": {password}})
}

func memberID(t *testing.T, env *testenv.Env, email string) string {
	t.Helper()
	u, err := env.Server().Users().ByEmail(t.Context(), email)
	if err != nil {
		t.Fatalf("%s: %v", email, err)
	}
	return u.ID
}

func TestInvitationFlow(t *testing.T) {
	env := testenv.New(t, testenv.WithValidEmailDomain("example.com"))
	admin := env.SignUp("ada@example.com", "Ada", "correct horse battery")
	link := invite(t, env, admin, "bob@example.com", "viewer")
	if !strings.Contains(env.Get(admin, "/oidc/admin").Body, "bob@example.com") {
		t.Error("pending invitation not listed")
	}
	bob, r := accept(t, env, link, "Bob", "bobs long password")
	if id, status := env.Me(bob); status != http.StatusOK || id.Email != "bob@example.com" || !id.HasRole("viewer") {
		t.Fatalf("after accepting: %d %+v; last page %s\n%s", status, id, r.URL, r.Body)
	}
	// Single use: the same link again shows the invalid page.
	_, again := accept(t, env, link, "Eve", "eves long password")
	if again.StatusCode != http.StatusBadRequest || !strings.Contains(again.Body, "not valid") {
		t.Errorf("second use of an invitation: %d", again.StatusCode)
	}
	// Refused outside validEmailDomain, with the reason.
	r = adminPost(t, env, admin, url.Values{"action": {"invite"}, "email": {"eve@evil.com"}, "role": {"viewer"}})
	if r.StatusCode != http.StatusBadRequest || !strings.Contains(r.Body, "Only @example.com addresses") {
		t.Errorf("foreign invitation: %d\n%s", r.StatusCode, r.Body)
	}
	// Re-inviting replaces the pending invitation.
	first := invite(t, env, admin, "carol@example.com", "viewer")
	second := invite(t, env, admin, "carol@example.com", "admin")
	if _, r := accept(t, env, first, "Carol", "carols long password"); r.StatusCode != http.StatusBadRequest {
		t.Errorf("replaced invitation still works: %d", r.StatusCode)
	}
	carol, _ := accept(t, env, second, "Carol", "carols long password")
	if id, _ := env.Me(carol); !id.HasRole("admin") {
		t.Errorf("carol's role = %v, want admin (from the replacing invitation)", id.Roles)
	}
	// Revoke.
	revoked := invite(t, env, admin, "dan@example.com", "viewer")
	invs, _ := env.Server().Users().Invitations(t.Context())
	for _, inv := range invs {
		if inv.Email == "dan@example.com" {
			adminPost(t, env, admin, url.Values{"action": {"revoke-invite"}, "invitation": {inv.ID}})
		}
	}
	if _, r := accept(t, env, revoked, "Dan", "dans long password"); r.StatusCode != http.StatusBadRequest {
		t.Errorf("revoked invitation still works: %d", r.StatusCode)
	}
}

func TestInvalidLinksAreIndistinguishable(t *testing.T) {
	env := testenv.New(t)
	admin := env.SignUp("ada@example.com", "Ada", "correct horse battery")
	used := invite(t, env, admin, "bob@example.com", "viewer")
	accept(t, env, used, "Bob", "bobs long password")
	revoked := invite(t, env, admin, "carol@example.com", "viewer")
	invs, _ := env.Server().Users().Invitations(t.Context())
	adminPost(t, env, admin, url.Values{"action": {"revoke-invite"}, "invitation": {invs[0].ID}})
	c := env.Client()
	bodies := map[string]string{}
	for name, link := range map[string]string{
		"used": used, "revoked": revoked,
		"unknown": env.IssuerURL() + "/invite?token=" + strings.Repeat("A", 43),
		"garbage": env.IssuerURL() + "/invite?token=x",
	} {
		r := env.Get(c, link)
		if r.StatusCode != http.StatusBadRequest {
			t.Errorf("%s invitation: status %d", name, r.StatusCode)
		}
		bodies[name] = r.Body
	}
	for name, b := range bodies {
		if b != bodies["unknown"] {
			t.Errorf("the %s invitation's page differs from an unknown one's", name)
		}
	}
	r1 := env.Get(c, env.IssuerURL()+"/reset?token="+strings.Repeat("A", 43))
	r2 := env.Get(c, env.IssuerURL()+"/reset?token=nope")
	if r1.StatusCode != http.StatusBadRequest || r1.Body != r2.Body {
		t.Errorf("invalid reset links differ: %d", r1.StatusCode)
	}
	// Sign-in: a wrong password and an unknown email get byte-identical
	// pages (apart from the address the person typed, echoed back).
	try := func(email string) string {
		cl := env.Client()
		page := env.Get(cl, "/api/v1/auth/login")
		r := env.Submit(cl, page, url.Values{"email": {email}, "password": {"wrong password"}})
		if r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.Body, "Incorrect email or password.") || !strings.Contains(r.Body, `name="password"`) {
			t.Errorf("%s: status %d, want 401 with the common message and the form again", email, r.StatusCode)
		}
		// The CSRF token and the authorization request differ per browser
		// and per request by design; everything else must be identical.
		body := regexp.MustCompile(`name="(csrf|id)" value="[^"]*"`).ReplaceAllString(r.Body, "")
		body = regexp.MustCompile(`\?id=[A-Za-z0-9_-]+`).ReplaceAllString(body, "?id=")
		return strings.ReplaceAll(body, email, "EMAIL")
	}
	if a, b := try("ada@example.com"), try("nobody@example.com"); a != b {
		t.Errorf("sign-in answers differ:\n%s\n---\n%s", a, b)
	}
}

func TestConcurrentAcceptMakesOneAccount(t *testing.T) {
	env := testenv.New(t)
	admin := env.SignUp("ada@example.com", "Ada", "correct horse battery")
	link := invite(t, env, admin, "bob@example.com", "viewer")
	type attempt struct {
		c    *http.Client
		page *testenv.Response
	}
	var attempts []attempt
	for range 8 {
		c := env.Client()
		attempts = append(attempts, attempt{c, env.Get(c, link)})
	}
	var wg sync.WaitGroup
	statuses := make([]int, len(attempts))
	for n, a := range attempts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, _ := testenv.ParseForm(a.page.Body)
			f.Values.Set("name", "Bob")
			f.Values.Set("password", "bobs long password")
			req, _ := http.NewRequest(http.MethodPost, env.URL+"/oidc/invite", strings.NewReader(f.Values.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			a.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			resp, err := a.c.Do(req)
			if err == nil {
				statuses[n] = resp.StatusCode
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	joined := 0
	for _, s := range statuses {
		if s == http.StatusSeeOther {
			joined++
		}
	}
	list, _ := env.Server().Users().List(t.Context())
	if joined != 1 || len(list) != 2 {
		t.Errorf("8 concurrent accepts: %d succeeded, %d accounts (statuses %v), want 1 and 2", joined, len(list), statuses)
	}
}

func TestAdministration(t *testing.T) {
	env := testenv.New(t, testenv.WithClients(server.Client{ClientID: "app", ClientSecret: "app-secret-0123456789abcdef", RedirectURIs: []string{"http://127.0.0.1:9/cb"}}))
	admin := env.SignUp("ada@example.com", "Ada", "correct horse battery")
	viewer := env.SignUp("bob@example.com", "Bob", "bobs long password")
	bobID := memberID(t, env, "bob@example.com")
	adaID := memberID(t, env, "ada@example.com")

	// Viewers cannot administer.
	if r := env.Get(viewer, "/oidc/admin"); r.StatusCode != http.StatusForbidden {
		t.Errorf("viewer on the Organization page: %d", r.StatusCode)
	}
	page := env.Get(admin, "/oidc/admin")
	for _, want := range []string{"ada@example.com", "bob@example.com", "viewer", "active"} {
		if !strings.Contains(page.Body, want) {
			t.Errorf("members list lacks %q", want)
		}
	}
	// The last admin cannot be demoted, disabled or removed.
	for _, action := range []string{"role", "disable", "remove"} {
		r := adminPost(t, env, admin, url.Values{"action": {action}, "user": {adaID}, "role": {"viewer"}})
		if r.StatusCode != http.StatusConflict || !strings.Contains(r.Body, "last active administrator") {
			t.Errorf("%s of the last admin: %d", action, r.StatusCode)
		}
	}
	// Promote: the next sign-in shows admin.
	adminPost(t, env, admin, url.Values{"action": {"role"}, "user": {bobID}, "role": {"admin"}})
	env.LoginWith(viewer, "bob@example.com", "bobs long password")
	if id, _ := env.Me(viewer); !id.HasRole("admin") {
		t.Errorf("after promotion and a new sign-in: roles %v", id.Roles)
	}
	// Disable: sign-in refused, and the issuer session is over.
	adminPost(t, env, admin, url.Values{"action": {"disable"}, "user": {bobID}})
	fresh := env.Client()
	r := env.Submit(fresh, env.Get(fresh, "/api/v1/auth/login"), url.Values{"email": {"bob@example.com"}, "password": {"bobs long password"}})
	if r.StatusCode != http.StatusUnauthorized {
		t.Errorf("disabled user signs in: %d", r.StatusCode)
	}
	if p := env.Get(viewer, "/oidc/settings"); p.URL.Path == "/oidc/settings" && p.StatusCode == http.StatusOK && strings.Contains(p.Body, "bob@example.com") {
		t.Error("a disabled user's issuer session still works")
	}
	adminPost(t, env, admin, url.Values{"action": {"enable"}, "user": {bobID}})
	env.Login("bob@example.com", "bobs long password")
	// Reset link: single use, sets a new password.
	r = adminPost(t, env, admin, url.Values{"action": {"reset-link"}, "user": {bobID}})
	m := linkRe.FindStringSubmatch(r.Body)
	if m == nil {
		t.Fatalf("no reset link:\n%s", r.Body)
	}
	link := html.UnescapeString(m[1])
	c := env.Client()
	env.Submit(c, env.Get(c, link), url.Values{"password": {"bobs new password!"}})
	env.Login("bob@example.com", "bobs new password!")
	if r := env.Get(env.Client(), link); r.StatusCode != http.StatusBadRequest {
		t.Errorf("reset link works twice: %d", r.StatusCode)
	}
	// Remove.
	adminPost(t, env, admin, url.Values{"action": {"remove"}, "user": {bobID}})
	if _, err := env.Server().Users().Get(t.Context(), bobID); err == nil {
		t.Error("removed member still exists")
	}
}

func TestSettingsPersonal(t *testing.T) {
	env := testenv.New(t)
	ada := env.SignUp("ada@example.com", "Ada", "correct horse battery")
	other := env.Login("ada@example.com", "correct horse battery") // a second device
	settings := func(c *http.Client, v url.Values) *testenv.Response {
		return env.Submit(c, env.Get(c, "/oidc/settings"), v)
	}
	r := settings(ada, url.Values{"action": {"name"}, "name": {"Ada Lovelace"}})
	if r.StatusCode != http.StatusOK || !strings.Contains(r.Body, "Your name is saved") {
		t.Fatalf("rename: %d\n%s", r.StatusCode, r.Body)
	}
	env.LoginWith(ada, "ada@example.com", "correct horse battery")
	if id, _ := env.Me(ada); id.Name != "Ada Lovelace" {
		t.Errorf("name after the next sign-in: %q", id.Name)
	}
	r = settings(ada, url.Values{"action": {"password"}, "current": {"not my password"}, "new": {"a brand new password"}})
	if r.StatusCode != http.StatusBadRequest || !strings.Contains(r.Body, "not your current password") {
		t.Errorf("wrong current password: %d", r.StatusCode)
	}
	r = settings(ada, url.Values{"action": {"password"}, "current": {"correct horse battery"}, "new": {"short"}})
	if r.StatusCode != http.StatusBadRequest || !strings.Contains(r.Body, "at least 8") {
		t.Errorf("short new password: %d", r.StatusCode)
	}
	r = settings(ada, url.Values{"action": {"password"}, "current": {"correct horse battery"}, "new": {"a brand new password"}})
	if r.StatusCode != http.StatusOK || !strings.Contains(r.Body, "signed out") {
		t.Fatalf("change password: %d\n%s", r.StatusCode, r.Body)
	}
	// This browser keeps its issuer session; the other device lost its own.
	if p := env.Get(ada, "/oidc/settings"); p.URL.Path != "/oidc/settings" {
		t.Errorf("the browser that changed the password was signed out: %s", p.URL)
	}
	if p := env.Get(other, "/oidc/settings"); p.URL.Path == "/oidc/settings" {
		t.Error("another session survived the password change")
	}
	env.Login("ada@example.com", "a brand new password")

	// Sign out of all sessions ends this browser's issuer session too.
	settings(ada, url.Values{"action": {"signout-all"}})
	if p := env.Get(ada, "/oidc/settings"); p.URL.Path == "/oidc/settings" {
		t.Error("issuer session survived sign-out everywhere")
	}
}

func TestAccountPagesRequireSignIn(t *testing.T) {
	env := testenv.New(t)
	env.SignUp("ada@example.com", "Ada", "correct horse battery")
	for _, path := range []string{"/oidc/settings", "/oidc/admin"} {
		c := env.Client()
		p := env.Get(c, path)
		if !strings.Contains(p.Body, `name="password"`) || !strings.HasPrefix(p.URL.Path, "/oidc/login") {
			t.Errorf("%s without a session did not lead to sign-in: %s", path, p.URL)
			continue
		}
		// Signing in lands back on the page.
		r := env.Submit(c, p, url.Values{"email": {"ada@example.com"}, "password": {"correct horse battery"}})
		if r.URL.Path != path {
			t.Errorf("after sign-in landed on %s, want %s", r.URL.Path, path)
		}
	}
}

func TestSignupInvitePolicy(t *testing.T) {
	env := testenv.New(t, testenv.WithConfig(func(c *server.Config) { c.Signup = "invite" }))
	admin := env.SignUp("ada@example.com", "Ada", "correct horse battery") // the first account is allowed
	c := env.Client()
	page := env.Get(c, "/api/v1/auth/login?prompt=create")
	r := env.Submit(c, page, url.Values{"email": {"bob@example.com"}, "name": {"Bob"}, "password": {"bobs long password"}})
	if r.StatusCode != http.StatusBadRequest || !strings.Contains(r.Body, "by invitation") {
		t.Errorf("open sign-up under invite policy: %d\n%s", r.StatusCode, r.Body)
	}
	if strings.Contains(env.Get(env.Client(), "/api/v1/auth/login").Body, "Create Account</a>") {
		t.Error("the sign-in page offers Create Account under the invite policy")
	}
	bob, _ := accept(t, env, invite(t, env, admin, "bob@example.com", "viewer"), "Bob", "bobs long password")
	if _, status := env.Me(bob); status != http.StatusOK {
		t.Errorf("invited sign-up under the invite policy: %d", status)
	}
}
