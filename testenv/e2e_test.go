package testenv_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/cmd/latchkey/server"
	"github.com/latchkey-dev/latchkey/rp"
	"github.com/latchkey-dev/latchkey/testenv"
)

func TestSignUpLoginMeLogout(t *testing.T) {
	env := testenv.New(t)
	admin := env.SignUp("Ada@Example.com", "Ada Lovelace", "correct horse battery")
	id, status := env.Me(admin)
	if status != http.StatusOK {
		t.Fatalf("me: status %d", status)
	}
	if id.Email != "ada@example.com" || id.Name != "Ada Lovelace" || id.Issuer != env.IssuerURL() || id.Subject == "" {
		t.Errorf("identity = %+v", id)
	}
	if !id.HasRole("admin") {
		t.Errorf("first account roles = %v, want admin", id.Roles)
	}
	home := env.Get(admin, "/")
	if !strings.Contains(home.Body, "Signed in as <strong>Ada Lovelace</strong>") || !strings.Contains(home.Body, `, <span class="role">admin</span>)`) {
		t.Errorf("start page does not show the signed-in user:\n%s", home.Body)
	}

	env.Logout(admin)
	if _, status := env.Me(admin); status != http.StatusUnauthorized {
		t.Errorf("me after logout: status %d, want 401", status)
	}
	// The issuer session ended too: a new login asks for the password.
	page := env.Get(admin, "/api/v1/auth/login")
	if !strings.Contains(page.Body, `name="password"`) {
		t.Fatalf("login after logout did not show the sign-in form: %s\n%s", page.URL, page.Body)
	}

	viewer := env.SignUp("bob@example.com", "Bob", "another long password")
	if id, _ := env.Me(viewer); !id.HasRole("viewer") || id.HasRole("admin") {
		t.Errorf("second account roles = %v, want viewer", id.Roles)
	}
	again := env.Login("ada@example.com", "correct horse battery")
	if id, _ := env.Me(again); !id.HasRole("admin") {
		t.Errorf("admin after login: %+v", id)
	}
}

func TestSecondLoginUsesIssuerSession(t *testing.T) {
	env := testenv.New(t)
	c := env.SignUp("ada@example.com", "Ada", "correct horse battery")
	// Drop only the backend session; the issuer's own session remains.
	u, _ := url.Parse(env.URL)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: rp.SessionCookie, Value: "", Path: "/", MaxAge: -1}})
	if _, status := env.Me(c); status != http.StatusUnauthorized {
		t.Fatalf("me without backend cookie: %d", status)
	}
	page := env.Get(c, "/api/v1/auth/login?redirect=/somewhere")
	if strings.Contains(page.Body, `name="password"`) {
		t.Fatalf("second login asked for the password again: %s", page.URL)
	}
	if page.URL.Path != "/somewhere" {
		t.Errorf("after login landed on %s, want /somewhere", page.URL)
	}
	if id, status := env.Me(c); status != http.StatusOK || id.Email != "ada@example.com" {
		t.Errorf("me after SSO login: %d %+v", status, id)
	}
}

func TestLoginThrottling(t *testing.T) {
	env := testenv.New(t)
	env.SignUp("ada@example.com", "Ada", "correct horse battery")
	c := env.Client()
	var last *testenv.Response
	for range 7 {
		last = env.Submit(c, env.Get(c, "/api/v1/auth/login"), url.Values{"email": {"ada@example.com"}, "password": {"guess guess"}})
		if last.StatusCode == http.StatusTooManyRequests {
			break
		}
	}
	if last.StatusCode != http.StatusTooManyRequests || last.Header.Get("Retry-After") == "" {
		t.Fatalf("repeated failures: status %d Retry-After %q, want 429 with Retry-After", last.StatusCode, last.Header.Get("Retry-After"))
	}
	// While throttled even the right password is not tried.
	ok := env.Submit(c, env.Get(c, "/api/v1/auth/login"), url.Values{"email": {"ada@example.com"}, "password": {"correct horse battery"}})
	if ok.StatusCode != http.StatusTooManyRequests {
		t.Errorf("right password while throttled: status %d, want 429", ok.StatusCode)
	}
}

func TestForeignEmailDomainRefused(t *testing.T) {
	env := testenv.New(t, testenv.WithValidEmailDomain("example.com"))
	c := env.Client()
	page := env.Get(c, "/api/v1/auth/login?prompt=create")
	for _, email := range []string{"eve@evil.com", "eve@sub.example.com", "eve@badexample.com"} {
		r := env.Submit(c, page, url.Values{"email": {email}, "name": {"Eve"}, "password": {"long enough password"}})
		if r.StatusCode != http.StatusBadRequest || !strings.Contains(r.Body, "@example.com") {
			t.Errorf("%s: status %d, want 400 naming @example.com:\n%s", email, r.StatusCode, r.Body)
		}
	}
	if _, status := env.Me(c); status != http.StatusUnauthorized {
		t.Errorf("refused sign-up still signed in: %d", status)
	}
	env.SignUp("ada@EXAMPLE.com", "Ada", "correct horse battery")
}

func TestSignUpFieldErrors(t *testing.T) {
	env := testenv.New(t)
	env.SignUp("ada@example.com", "Ada", "correct horse battery")
	c := env.Client()
	page := env.Get(c, "/api/v1/auth/login?prompt=create")
	cases := []struct {
		name, email, fullName, password, want string
	}{
		{"bad email", "not-an-email", "X", "long enough password", "Enter an email address"},
		{"short password", "x@example.com", "X", "short", "at least 8 characters"},
		{"long password", "x@example.com", "X", strings.Repeat("p", 129), "at most 128 characters"},
		{"no name", "x@example.com", "  ", "long enough password", "Enter your name"},
		{"taken", "ADA@example.com", "X", "long enough password", "already exists"},
	}
	for _, tc := range cases {
		r := env.Submit(c, page, url.Values{"email": {tc.email}, "name": {tc.fullName}, "password": {tc.password}})
		if r.StatusCode != http.StatusBadRequest || !strings.Contains(r.Body, tc.want) {
			t.Errorf("%s: status %d, want 400 with %q", tc.name, r.StatusCode, tc.want)
		}
		if strings.Contains(r.Body, tc.password) && len(tc.password) > 0 {
			t.Errorf("%s: the page echoes the password", tc.name)
		}
	}
}

func TestFormsRequireCSRFToken(t *testing.T) {
	env := testenv.New(t)
	c := env.Client()
	page := env.Get(c, "/api/v1/auth/login?prompt=create")
	for _, token := range []string{"", "forged"} {
		r := env.Submit(c, page, url.Values{"csrf": {token}, "email": {"ada@example.com"}, "name": {"Ada"}, "password": {"correct horse battery"}})
		if r.StatusCode != http.StatusForbidden {
			t.Errorf("csrf %q: status %d, want 403", token, r.StatusCode)
		}
	}
	if n, _ := env.Server().Users().Count(t.Context()); n != 0 {
		t.Errorf("a forged form created %d accounts", n)
	}
	// A cross-origin POST is refused by net/http's CrossOriginProtection.
	f, _ := testenv.ParseForm(page.Body)
	req, _ := http.NewRequest(http.MethodPost, env.URL+"/oidc/signup", strings.NewReader(f.Values.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site POST: status %d, want 403", resp.StatusCode)
	}
}

func TestSessionCookieTamperedOrExpired(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	env := testenv.New(t, testenv.WithClock(func() time.Time { return clock() }))
	c := env.SignUp("ada@example.com", "Ada", "correct horse battery")
	u, _ := url.Parse(env.URL)
	var session *http.Cookie
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == rp.SessionCookie {
			session = ck
		}
	}
	if session == nil {
		t.Fatal("no session cookie")
	}
	parts := strings.Split(session.Value, ".")
	if len(parts) != 3 {
		t.Fatalf("session cookie is not a compact JWT")
	}
	forged := []string{
		parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-2] + "AA", // bad signature
		parts[0] + "." + strings.ToUpper(parts[1][:4]) + parts[1][4:] + "." + parts[2],
		"eyJhbGciOiJub25lIn0." + parts[1] + ".", // alg none
		"garbage",
	}
	for _, v := range forged {
		bad := env.Client()
		bad.Jar.SetCookies(u, []*http.Cookie{{Name: rp.SessionCookie, Value: v, Path: "/"}})
		if _, status := env.Me(bad); status != http.StatusUnauthorized {
			t.Errorf("forged cookie %.20q…: status %d, want 401", v, status)
		}
	}
	if _, status := env.Me(c); status != http.StatusOK {
		t.Fatalf("genuine cookie refused: %d", status)
	}
	now = now.Add(13 * time.Hour) // past the 12h session lifetime
	if _, status := env.Me(c); status != http.StatusUnauthorized {
		t.Errorf("expired session: status %d, want 401", status)
	}
}

func TestCallbackRejectsBadState(t *testing.T) {
	env := testenv.New(t)
	env.SignUp("ada@example.com", "Ada", "correct horse battery")
	c := env.Client()
	env.Get(c, "/api/v1/auth/login") // sets the login transaction cookie
	r := env.Get(c, "/api/v1/auth/callback?code=abc&state=not-the-state")
	if r.StatusCode != http.StatusBadRequest || !strings.Contains(r.Body, "state") {
		t.Errorf("bad state: status %d\n%s", r.StatusCode, r.Body)
	}
	fresh := env.Client()
	r = env.Get(fresh, "/api/v1/auth/callback?code=abc&state=x")
	if r.StatusCode != http.StatusBadRequest {
		t.Errorf("callback without a login transaction: status %d, want 400", r.StatusCode)
	}
	if _, status := env.Me(c); status != http.StatusUnauthorized {
		t.Errorf("signed in after a bad callback: %d", status)
	}
}

func TestLoginRedirectStaysOnSite(t *testing.T) {
	env := testenv.New(t)
	env.SignUp("ada@example.com", "Ada", "correct horse battery")
	for _, target := range []string{"https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"} {
		c := env.Client()
		page := env.Get(c, "/api/v1/auth/login?redirect="+url.QueryEscape(target))
		r := env.Submit(c, page, url.Values{"email": {"ada@example.com"}, "password": {"correct horse battery"}})
		if r.URL.Host != strings.TrimPrefix(env.URL, "http://") || r.URL.Path != "/" {
			t.Errorf("redirect=%q landed on %s, want the start page", target, r.URL)
		}
	}
}

func TestRestartKeepsUsersKeysAndSessions(t *testing.T) {
	env := testenv.New(t)
	c := env.SignUp("ada@example.com", "Ada", "correct horse battery")
	before := env.Get(c, "/oidc/keys").Body
	env.Restart()
	if id, status := env.Me(c); status != http.StatusOK || id.Email != "ada@example.com" {
		t.Fatalf("session after restart: %d %+v", status, id)
	}
	if after := env.Get(c, "/oidc/keys").Body; after != before {
		t.Errorf("JWKS changed across restart:\n%s\n%s", before, after)
	}
	// The issuer session survived too: a new backend login needs no password.
	u, _ := url.Parse(env.URL)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: rp.SessionCookie, Value: "", Path: "/", MaxAge: -1}})
	page := env.Get(c, "/api/v1/auth/login")
	if strings.Contains(page.Body, `name="password"`) {
		t.Errorf("issuer session lost across restart")
	}
	env.Login("ada@example.com", "correct horse battery")
}

func TestConfiguredJWTSecretSignsSessions(t *testing.T) {
	secret := func(v string) testenv.Option {
		return testenv.WithConfig(func(c *server.Config) { c.BasicAuth.JWTSecret = v })
	}
	secretA := strings.Repeat("a", 40)
	env := testenv.New(t, secret(secretA))
	c := env.SignUp("ada@example.com", "Ada", "correct horse battery")
	u, _ := url.Parse(env.URL)
	saved := c.Jar.Cookies(u) // a refused cookie is cleared; keep a copy

	// Same data and address, another secret: the session cookie is refused.
	env.Restart(secret(strings.Repeat("b", 40)))
	if _, status := env.Me(c); status != http.StatusUnauthorized {
		t.Errorf("a cookie signed with another jwtSecret: status %d, want 401", status)
	}
	// Without a configured secret the generated one is used: still refused.
	env.Restart(secret(""))
	d := env.SignUp("bob@example.com", "Bob", "correct horse battery")
	c.Jar.SetCookies(u, saved)
	if _, status := env.Me(c); status != http.StatusUnauthorized {
		t.Errorf("a cookie signed with jwtSecret under the generated secret: status %d, want 401", status)
	}
	// The configured secret wins over the generated one.
	env.Restart(secret(secretA))
	if _, status := env.Me(d); status != http.StatusUnauthorized {
		t.Errorf("a cookie signed with the generated secret under a configured one: status %d, want 401", status)
	}
	c.Jar.SetCookies(u, saved)
	if _, status := env.Me(c); status != http.StatusOK {
		t.Errorf("a cookie signed with the configured jwtSecret: status %d, want 200", status)
	}
}

func TestRequireMiddleware(t *testing.T) {
	env := testenv.New(t)
	backend := env.Server().RelyingParty().Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := rp.IdentityFrom(r.Context())
		if !ok {
			http.Error(w, "no identity", http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte(id.Email + " " + strings.Join(id.Roles, ",")))
	}))
	ada := env.SignUp("ada@example.com", "Ada", "correct horse battery")
	call := func(c *http.Client) (int, string) {
		req := httptest.NewRequest(http.MethodGet, "/api/v1/documents", nil)
		u, _ := url.Parse(env.URL)
		for _, ck := range c.Jar.Cookies(u) {
			req.AddCookie(ck)
		}
		rec := httptest.NewRecorder()
		backend.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	if code, body := call(ada); code != http.StatusOK || body != "ada@example.com admin" {
		t.Errorf("with a session: %d %q", code, body)
	}
	if code, _ := call(env.Client()); code != http.StatusUnauthorized {
		t.Errorf("without a session: %d, want 401", code)
	}
}

// TestRestartWithLogger: options given to Restart apply to the new run,
// the logger included.
func TestRestartWithLogger(t *testing.T) {
	env := testenv.New(t)
	var buf syncBuffer
	env.Restart(testenv.WithLogger(slog.New(slog.NewTextHandler(&buf, nil))))
	env.SignUp("ada@example.com", "Ada", "correct horse battery")
	if !strings.Contains(buf.String(), "event=account.created") {
		t.Errorf("the restarted server did not log to the new logger: %q", buf.String())
	}
}
