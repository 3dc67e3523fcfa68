package testenv_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/cmd/latchkey/server"
	"github.com/latchkey-dev/latchkey/testenv"
)

// signInForm returns a browser and the filled sign-in form for email.
func signInForm(t *testing.T, env *testenv.Env, c *http.Client, email, password string) url.Values {
	t.Helper()
	f, err := testenv.ParseForm(env.Get(c, "/api/v1/auth/login?prompt=login").Body)
	if err != nil {
		t.Fatal(err)
	}
	f.Values.Set("email", email)
	f.Values.Set("password", password)
	return f.Values
}

func postLogin(c *http.Client, base string, form url.Values, header http.Header) int {
	req, _ := http.NewRequest(http.MethodPost, base+"/oidc/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header[k] = v
	}
	noFollow := *c
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := noFollow.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestConcurrentGuessesAreThrottled: attempts count as they arrive, so a
// burst of concurrent guesses cannot all be evaluated.
func TestConcurrentGuessesAreThrottled(t *testing.T) {
	env := testenv.New(t)
	env.SignUp("ada@example.com", "Ada", "correct horse battery")
	const n = 40
	forms := make([]url.Values, n)
	clients := make([]*http.Client, n)
	for k := range n {
		clients[k] = env.Client()
		forms[k] = signInForm(t, env, clients[k], "ada@example.com", "guess guess")
	}
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for k := range n {
		wg.Add(1)
		go func() { defer wg.Done(); statuses[k] = postLogin(clients[k], env.URL, forms[k], nil) }()
	}
	wg.Wait()
	evaluated := 0
	for _, s := range statuses {
		if s == http.StatusUnauthorized {
			evaluated++
		}
	}
	if evaluated > 5 {
		t.Errorf("%d of %d concurrent guesses were evaluated, want at most the 5 free ones (statuses %v)", evaluated, n, statuses)
	}
}

// TestKnownDeviceIsNotLockedOut: failures from elsewhere throttle the
// account for unknown browsers, but a browser that signed in before keeps
// its own budget.
func TestKnownDeviceIsNotLockedOut(t *testing.T) {
	env := testenv.New(t, testenv.WithConfig(func(c *server.Config) { c.TrustedProxies = []string{"127.0.0.1/32"} }))
	env.SignUp("ada@example.com", "Ada", "correct horse battery")
	known := env.Login("ada@example.com", "correct horse battery") // gets the device cookie
	attacker := env.Client()
	for k := range 8 {
		// From many addresses, as a botnet would (through the trusted proxy).
		form := signInForm(t, env, attacker, "ada@example.com", "guess guess")
		postLogin(attacker, env.URL, form, http.Header{"X-Forwarded-For": {"203.0.113." + string(rune('1'+k))}})
	}
	stranger := env.Client()
	if s := postLogin(stranger, env.URL, signInForm(t, env, stranger, "ada@example.com", "correct horse battery"), nil); s != http.StatusTooManyRequests {
		t.Errorf("an unknown browser during the attack: %d, want 429", s)
	}
	if s := postLogin(known, env.URL, signInForm(t, env, known, "ada@example.com", "correct horse battery"), nil); s != http.StatusSeeOther {
		t.Errorf("the owner's known browser during the attack: %d, want 303 (signed in)", s)
	}
}

// TestTrustedProxyAddresses: behind a trusted proxy the client address
// comes from X-Forwarded-For, so one client's failures do not throttle
// everyone else behind the same proxy; an untrusted peer's header is
// ignored.
func TestTrustedProxyAddresses(t *testing.T) {
	env := testenv.New(t, testenv.WithConfig(func(c *server.Config) { c.TrustedProxies = []string{"127.0.0.0/8"} }))
	env.SignUp("ada@example.com", "Ada", "correct horse battery")
	for k := range 25 {
		c := env.Client()
		email := "nobody" + string(rune('a'+k)) + "@example.com"
		postLogin(c, env.URL, signInForm(t, env, c, email, "guess guess"), http.Header{"X-Forwarded-For": {"198.51.100.7"}})
	}
	c := env.Client()
	if s := postLogin(c, env.URL, signInForm(t, env, c, "ada@example.com", "correct horse battery"), http.Header{"X-Forwarded-For": {"198.51.100.8"}}); s != http.StatusSeeOther {
		t.Errorf("another client behind the proxy: %d, want 303", s)
	}
	c = env.Client()
	if s := postLogin(c, env.URL, signInForm(t, env, c, "ada@example.com", "correct horse battery"), http.Header{"X-Forwarded-For": {"198.51.100.7"}}); s != http.StatusTooManyRequests {
		t.Errorf("the failing client itself: %d, want 429", s)
	}
	// Without the proxy being trusted the header means nothing: all 25
	// failures above would count against 127.0.0.1.
	plain := testenv.New(t)
	plain.SignUp("ada@example.com", "Ada", "correct horse battery")
	for k := range 25 {
		c := plain.Client()
		postLogin(c, plain.URL, signInForm(t, plain, c, "x"+string(rune('a'+k))+"@example.com", "guess guess"), http.Header{"X-Forwarded-For": {"198.51.100." + string(rune('1'+k%9))}})
	}
	c = plain.Client()
	if s := postLogin(c, plain.URL, signInForm(t, plain, c, "ada@example.com", "correct horse battery"), http.Header{"X-Forwarded-For": {"198.51.100.99"}}); s != http.StatusTooManyRequests {
		t.Errorf("a forged X-Forwarded-For from an untrusted peer escaped the address throttle: %d", s)
	}
}

// TestCrossSiteLogoutNeedsConfirmation: a link on another site cannot sign
// a browser out of the issuer; the person is asked first.
func TestCrossSiteLogoutNeedsConfirmation(t *testing.T) {
	env := testenv.New(t)
	c := env.SignUp("ada@example.com", "Ada", "correct horse battery")
	req, _ := http.NewRequest(http.MethodGet, env.IssuerURL()+"/end_session", nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("cross-site end_session: %d", resp.StatusCode)
	}
	if p := env.Get(c, "/oidc/settings"); p.URL.Path != "/oidc/settings" {
		t.Fatal("a cross-site link signed the browser out without asking")
	}
	// The confirmation form (posted from the issuer's own page) signs out.
	req, _ = http.NewRequest(http.MethodGet, env.IssuerURL()+"/end_session?client_id=latchkey", nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if p := env.Get(c, "/oidc/settings"); p.URL.Path != "/oidc/settings" {
		t.Fatal("showing the confirmation signed the browser out")
	}
	confirm := &testenv.Response{StatusCode: resp.StatusCode, URL: resp.Request.URL, Header: resp.Header, Body: string(body)}
	if !strings.Contains(confirm.Body, "Sign out?") {
		t.Fatalf("no confirmation page:\n%s", confirm.Body)
	}
	env.Submit(c, confirm, nil)
	if p := env.Get(c, "/oidc/settings"); p.URL.Path == "/oidc/settings" {
		t.Error("confirming did not sign out")
	}
}

// TestLastSignInIsRecorded: creating an account signs the person in, and
// the Organization page says so.
func TestLastSignInIsRecorded(t *testing.T) {
	env := testenv.New(t)
	admin := env.SignUp("ada@example.com", "Ada", "correct horse battery")
	u, err := env.Server().Users().ByEmail(t.Context(), "ada@example.com")
	if err != nil || u.LastLoginAt.IsZero() || time.Since(u.LastLoginAt) > time.Minute {
		t.Errorf("LastLoginAt after Create Account = %v (%v)", u.LastLoginAt, err)
	}
	if strings.Contains(env.Get(admin, "/oidc/admin").Body, ">never<") {
		t.Error("the Organization page says never for a signed-in member")
	}
}

// TestOversizedBodiesAreRefused: no endpoint reads an unbounded body.
func TestOversizedBodiesAreRefused(t *testing.T) {
	env := testenv.New(t)
	big := strings.Repeat("a", 1<<20)
	for _, path := range []string{"/oidc/oauth/token", "/oidc/login", "/api/v1/auth/logout", "/oidc/authorize"} {
		resp, err := http.Post(env.URL+path, "application/x-www-form-urlencoded", strings.NewReader("x="+big))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("%s with a 1 MiB body: %d, want 413", path, resp.StatusCode)
		}
	}
}

// TestIssuerSessionIsRenewedAtSignIn: signing in replaces the issuer's
// session cookie, and the old one no longer works (no session fixation).
func TestIssuerSessionIsRenewedAtSignIn(t *testing.T) {
	env := testenv.New(t)
	c := env.SignUp("ada@example.com", "Ada", "correct horse battery")
	u, _ := url.Parse(env.IssuerURL() + "/")
	session := func() string {
		for _, ck := range c.Jar.Cookies(u) {
			if ck.Name == "latchkey_op_session" {
				return ck.Value
			}
		}
		return ""
	}
	before := session()
	env.LoginWith(c, "ada@example.com", "correct horse battery")
	after := session()
	if before == "" || after == "" || before == after {
		t.Fatalf("issuer session not renewed: before %q after %q", before, after)
	}
	old := env.Client()
	old.Jar.SetCookies(u, []*http.Cookie{{Name: "latchkey_op_session", Value: before, Path: "/oidc/"}})
	if p := env.Get(old, "/oidc/settings"); p.URL.Path == "/oidc/settings" {
		t.Error("the replaced session still works")
	}
}

// TestCreateAccountIsThrottledPerAddress: Create Account probes (for
// example of addresses that already have an account) count against the
// client address; successful sign-ups do not.
func TestCreateAccountIsThrottledPerAddress(t *testing.T) {
	env := testenv.New(t)
	env.SignUp("ada@example.com", "Ada", "correct horse battery")
	env.SignUp("bob@example.com", "Bob", "bobs long password") // a success does not count
	c := env.Client()
	page := env.Get(c, "/api/v1/auth/login?prompt=create")
	var last *testenv.Response
	for range 21 {
		last = env.Submit(c, page, url.Values{"email": {"ada@example.com"}, "name": {"Probe"}, "password": {"long enough password"}})
	}
	if last.StatusCode != http.StatusTooManyRequests || last.Header.Get("Retry-After") == "" {
		t.Errorf("the 21st failed Create Account from one address: %d, want 429 with Retry-After", last.StatusCode)
	}
}

// TestStylesheetIsServedToBothPages: the start page and the issuer's pages
// share one stylesheet.
func TestStylesheetIsServedToBothPages(t *testing.T) {
	env := testenv.New(t)
	c := env.Client()
	a, b := env.Get(c, "/static/style.css"), env.Get(c, "/oidc/static/style.css")
	for _, r := range []*testenv.Response{a, b} {
		if r.StatusCode != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/css") || !strings.Contains(r.Body, ".card") {
			t.Errorf("%s: %d %q", r.URL.Path, r.StatusCode, r.Header.Get("Content-Type"))
		}
	}
	if a.Body != b.Body {
		t.Error("the two stylesheets differ")
	}
	if !strings.Contains(env.Get(c, "/").Body, `href="/static/style.css"`) {
		t.Error("the start page does not link the stylesheet")
	}
}
