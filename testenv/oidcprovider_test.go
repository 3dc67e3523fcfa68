package testenv_test

// Interoperability in OIDC mode: the backend signs in against panva's
// oidc-provider (npm), an OpenID-certified provider we did not write, run
// by node from testenv/oidcprovider. The browser side is driven through the
// provider's own HTML forms; the backend talks to it by configuration alone
// (discovery, PKCE S256, client_secret_basic, RS256 ID tokens, RP-initiated
// logout).
//
// The tests need `npm ci --prefix testenv/oidcprovider` (and node on PATH):
// without it they are skipped, or fail when the environment variable CI is
// set.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/cmd/latchkey/server"
	"github.com/latchkey-dev/latchkey/rp"
	"github.com/latchkey-dev/latchkey/testenv"
)

const (
	opClientID     = "latchkey-backend"
	opClientSecret = "oidc-provider-interop-secret-0123456789"
	opLogin        = "ada@example.com"
	opInstall      = "npm ci --prefix testenv/oidcprovider"
	// opClaimsInIDToken makes oidc-provider put the claims of the scopes
	// profile and email into the ID token as well (conformIdTokenClaims:
	// false), as Entra ID and the built-in issuer do. Without it they are
	// only at the userinfo endpoint; see
	// TestInteropOIDCProviderClaimsFromUserinfo.
	opClaimsInIDToken = "CONFORM_ID_TOKEN_CLAIMS=false"
)

// requireOIDCProvider returns the directory of the node project, skipping
// the test (failing it under CI) when node or its packages are missing.
func requireOIDCProvider(t *testing.T) (dir, node string) {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") != "" {
			t.Fatalf(format, args...)
		}
		t.Skipf(format, args...)
	}
	dir, err := filepath.Abs("oidcprovider")
	if err != nil {
		t.Fatal(err)
	}
	node, err = exec.LookPath("node")
	if err != nil {
		missing("node is not on PATH (%v); install Node.js 20 or later, then run: %s", err, opInstall)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "oidc-provider", "package.json")); err != nil {
		missing("oidc-provider is not installed in %s; run from the repository root: %s", dir, opInstall)
	}
	return dir, node
}

// syncBuffer collects the provider's stderr for failure reports.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startOIDCProvider runs oidc-provider on a free loopback port with one
// client and returns its issuer. It stops when the test ends. extraEnv are
// further KEY=VALUE settings of server.mjs.
func startOIDCProvider(t *testing.T, clientID, secret, redirectURI, postLogout string, extraEnv ...string) (issuer string) {
	t.Helper()
	dir, node := requireOIDCProvider(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, node, "server.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PORT=0", "CLIENT_ID="+clientID, "CLIENT_SECRET="+secret,
		"REDIRECT_URI="+redirectURI, "POST_LOGOUT_REDIRECT_URI="+postLogout)
	cmd.Env = append(cmd.Env, extraEnv...)
	cmd.WaitDelay = 5 * time.Second
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start oidc-provider: %v", err)
	}

	ready := make(chan string, 1)
	exited := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if port, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				select {
				case ready <- strings.TrimSpace(port):
				default:
				}
			}
		}
		exited <- cmd.Wait() // after the last read of stdout
	}()

	var once sync.Once
	var exitErr error
	stop := func() {
		once.Do(func() {
			_ = stdin.Close() // server.mjs exits when stdin closes
			select {
			case exitErr = <-exited:
			case <-time.After(5 * time.Second):
				cancel() // kill
				exitErr = <-exited
			}
			cancel()
		})
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("oidc-provider (exit: %v) stderr:\n%s", exitErr, stderr.String())
		}
	})

	select {
	case port := <-ready:
		return "http://127.0.0.1:" + port
	case err := <-exited:
		exited <- err
		stop()
		t.Fatalf("oidc-provider exited before it was ready (%v):\n%s", err, stderr.String())
	case <-time.After(30 * time.Second):
		stop()
		t.Fatalf("oidc-provider was not ready within 30 s:\n%s", stderr.String())
	}
	return ""
}

// oidcProviderEnv starts latchkey, registers its redirect URL with a new
// oidc-provider, and switches the backend to OIDC mode against it with
// backendSecret as its client secret. The restart keeps the address, as a
// real deployment keeps its public URL, so the redirect URL the provider
// knows stays right; the switch is configuration only. providerEnv are
// settings of server.mjs (KEY=VALUE), opts further options of the Env.
func oidcProviderEnv(t *testing.T, backendSecret string, providerEnv []string, opts ...testenv.Option) (*testenv.Env, string) {
	t.Helper()
	requireOIDCProvider(t) // skip before starting anything
	env := testenv.New(t, opts...)
	issuer := startOIDCProvider(t, opClientID, opClientSecret, env.RedirectURL(), env.URL+"/", providerEnv...)
	useOIDCProvider(t, env, issuer, backendSecret)
	return env, issuer
}

// useOIDCProvider restarts env in OIDC mode against issuer.
func useOIDCProvider(t *testing.T, env *testenv.Env, issuer, backendSecret string) {
	t.Helper()
	env.Restart(testenv.WithOIDC(issuer+rp.DiscoverySuffix, opClientID, backendSecret))
	env.FollowRedirectsTo(issuer)
	select {
	case <-env.Server().RelyingParty().Ready():
	case <-time.After(30 * time.Second):
		t.Fatalf("discovery of %s did not succeed within 30 s", issuer)
	}
	if env.Server().BuiltIn() || env.Server().IssuerURL() != issuer {
		t.Fatalf("backend trusts %q (built-in issuer running: %v), want %s", env.Server().IssuerURL(), env.Server().BuiltIn(), issuer)
	}
}

// providerSignIn answers oidc-provider's pages, starting at page: its login
// form (any password is accepted for any login) and, when it asks, its
// consent form. It returns the first page outside the provider and the
// forms it submitted, and fails the test if the login form was never
// shown.
func providerSignIn(t *testing.T, env *testenv.Env, c *http.Client, issuer string, page *testenv.Response, login string) (*testenv.Response, []string) {
	t.Helper()
	op, _ := url.Parse(issuer)
	var forms []string
	for range 4 {
		if page.URL.Host != op.Host {
			break
		}
		switch {
		case strings.Contains(page.Body, `name="prompt" value="login"`):
			forms = append(forms, "login")
			page = env.Submit(c, page, url.Values{"login": {login}, "password": {"any password at all"}})
		case strings.Contains(page.Body, `name="prompt" value="consent"`):
			forms = append(forms, "consent")
			page = env.Submit(c, page, nil)
		default:
			t.Fatalf("unexpected oidc-provider page %s (%d):\n%s", page.URL, page.StatusCode, page.Body)
		}
	}
	if !slices.Contains(forms, "login") {
		t.Fatalf("oidc-provider never showed its login form; last page %s (%d):\n%s", page.URL, page.StatusCode, page.Body)
	}
	if page.URL.Host == op.Host {
		t.Fatalf("still at oidc-provider after its forms: %s (%d):\n%s", page.URL, page.StatusCode, page.Body)
	}
	return page, forms
}

// logout posts the start page's Sign out form and, when the provider asks
// to confirm the sign-out (oidc-provider does, the built-in issuer does
// not), confirms it. It fails the test unless the browser ends on the
// backend's start page, signed out.
func logout(t *testing.T, env *testenv.Env, c *http.Client) {
	t.Helper()
	page := env.Logout(c)
	home, _ := url.Parse(env.URL + "/")
	if page.URL.Host != home.Host {
		if !strings.Contains(page.Body, `id="op.logoutForm"`) {
			t.Fatalf("logout stopped at %s (%d) without a sign-out form:\n%s", page.URL, page.StatusCode, page.Body)
		}
		page = env.Submit(c, page, url.Values{"logout": {"yes"}})
	}
	if page.StatusCode != http.StatusOK || page.URL.String() != home.String() || !strings.Contains(page.Body, "You are not signed in") {
		t.Fatalf("logout ended at %s (%d), want the signed-out start page %s:\n%s", page.URL, page.StatusCode, home, page.Body)
	}
	if _, status := env.Me(c); status != http.StatusUnauthorized {
		t.Fatalf("/me after logout: %d, want 401", status)
	}
}

func TestInteropOIDCProvider(t *testing.T) {
	env, issuer := oidcProviderEnv(t, opClientSecret, []string{opClaimsInIDToken})
	c := env.Client()
	page := env.Get(c, rp.PathLogin+"?redirect=/welcome")
	if !strings.HasPrefix(page.URL.String(), issuer+"/interaction/") || !strings.Contains(page.Body, `name="login"`) {
		t.Fatalf("login did not reach oidc-provider's sign-in page: %s (%d):\n%s", page.URL, page.StatusCode, page.Body)
	}
	page, forms := providerSignIn(t, env, c, issuer, page, opLogin)
	if !slices.Equal(forms, []string{"login", "consent"}) {
		t.Errorf("oidc-provider's forms = %v, want [login consent]", forms)
	}
	if page.URL.String() != env.URL+"/welcome" {
		t.Errorf("after sign-in landed on %s (%d), want %s/welcome:\n%s", page.URL, page.StatusCode, env.URL, page.Body)
	}

	id, status := env.Me(c)
	if status != http.StatusOK {
		t.Fatalf("/me after sign-in: %d", status)
	}
	if id.Issuer != issuer || id.Subject != opLogin || id.Key != issuer+"#"+opLogin {
		t.Errorf("identity iss/sub/key = %q %q %q, want %q %q", id.Issuer, id.Subject, id.Key, issuer, opLogin)
	}
	if id.Email != opLogin || !id.EmailVerified || id.EmailSource != "" || id.Name != "Test "+opLogin {
		t.Errorf("identity claims = %+v, want email %s (verified) and name %q", id, opLogin, "Test "+opLogin)
	}
	if !id.HasRole("viewer") || id.HasRole("admin") {
		t.Errorf("roles = %v, want [viewer]", id.Roles)
	}

	// A second sign-in uses the provider's session: no form at all.
	u, _ := url.Parse(env.URL)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: rp.SessionCookie, Value: "", Path: "/", MaxAge: -1}})
	if page := env.Get(c, rp.PathLogin); page.URL.String() != env.URL+"/" || !signedIn(env, c) {
		t.Errorf("sign-in with the provider's session ended at %s (%d):\n%s", page.URL, page.StatusCode, page.Body)
	}

	logout(t, env, c)
	// The provider's session ended too: signing in asks for the login again.
	page = env.Get(c, rp.PathLogin)
	if !strings.Contains(page.Body, `name="prompt" value="login"`) {
		t.Errorf("after logout, sign-in did not show oidc-provider's login form: %s (%d):\n%s", page.URL, page.StatusCode, page.Body)
	}
}

// TestInteropOIDCProviderClaimsFromUserinfo signs in against oidc-provider
// in its default configuration. In the code flow it follows OpenID Connect
// Core §5.4 strictly: the claims of the scopes profile and email are
// returned from the userinfo endpoint only, and the ID token carries sub
// and the protocol claims. The backend must still learn the person's
// email, name and roles, and apply validEmailDomain to that email.
func TestInteropOIDCProviderClaimsFromUserinfo(t *testing.T) {
	env, issuer := oidcProviderEnv(t, opClientSecret, nil, testenv.WithValidEmailDomain("example.com"))
	c := env.Client()
	page, _ := providerSignIn(t, env, c, issuer, env.Get(c, rp.PathLogin), opLogin)
	id, status := env.Me(c)
	if status != http.StatusOK || id.Subject != opLogin {
		t.Fatalf("sign-in: /me %d %+v; last page %s (%d):\n%s", status, id, page.URL, page.StatusCode, page.Body)
	}
	if id.Email != opLogin || !id.EmailVerified || id.EmailSource != "" || id.Name != "Test "+opLogin || !id.HasRole("viewer") {
		t.Errorf("identity = %+v: want email %s (verified), name %q and role viewer, which this provider sends only from userinfo",
			id, opLogin, "Test "+opLogin)
	}
	// Another domain is refused on the email read from userinfo.
	env.Restart(testenv.WithValidEmailDomain("example.org"))
	c = env.Client()
	page, _ = providerSignIn(t, env, c, issuer, env.Get(c, rp.PathLogin), opLogin)
	if page.StatusCode != http.StatusForbidden || !strings.Contains(page.Body, "only @example.org addresses may sign in, and this account is "+opLogin) {
		t.Errorf("foreign domain: %s %d, want 403 naming the account:\n%s", page.URL, page.StatusCode, page.Body)
	}
}

// TestInteropOIDCProviderWrongClientSecret: a backend configured with the
// wrong client secret gets through the provider's forms, and the token
// request is refused with invalid_client; the callback says so.
func TestInteropOIDCProviderWrongClientSecret(t *testing.T) {
	env, issuer := oidcProviderEnv(t, "not-the-client-secret-0123456789", []string{opClaimsInIDToken})
	c := env.Client()
	page, _ := providerSignIn(t, env, c, issuer, env.Get(c, rp.PathLogin), opLogin)
	if page.StatusCode != http.StatusBadGateway || page.URL.Path != rp.PathCallback ||
		!strings.Contains(page.Body, "invalid_client") || !strings.Contains(page.Body, "Check the client ID and secret") {
		t.Errorf("callback with a wrong client secret: %s %d, want 502 naming invalid_client:\n%s", page.URL, page.StatusCode, page.Body)
	}
	if strings.Contains(page.Body, "not-the-client-secret") || strings.Contains(page.Body, opClientSecret) {
		t.Errorf("the error page shows a client secret:\n%s", page.Body)
	}
	if _, status := env.Me(c); status != http.StatusUnauthorized {
		t.Errorf("/me after a refused code exchange: %d, want 401", status)
	}
}

// signInRoundTrip is the backend's view of one person, whatever the
// issuer: sign in, /me, a protected handler, sign out. It returns the
// identity.
func signInRoundTrip(t *testing.T, env *testenv.Env, signIn func() *http.Client) rp.Identity {
	t.Helper()
	protected := env.Server().RelyingParty().Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := rp.IdentityFrom(r.Context())
		if !ok {
			http.Error(w, "no identity", http.StatusInternalServerError)
			return
		}
		_ = json.NewEncoder(w).Encode(id)
	}))
	call := func(c *http.Client) (int, rp.Identity) {
		req := httptest.NewRequest(http.MethodGet, "/api/v1/documents", nil)
		u, _ := url.Parse(env.URL)
		for _, ck := range c.Jar.Cookies(u) {
			req.AddCookie(ck)
		}
		rec := httptest.NewRecorder()
		protected.ServeHTTP(rec, req)
		var id rp.Identity
		if rec.Code == http.StatusOK {
			if err := json.Unmarshal(rec.Body.Bytes(), &id); err != nil {
				t.Fatalf("protected handler: %v", err)
			}
		}
		return rec.Code, id
	}

	c := signIn()
	id, status := env.Me(c)
	if status != http.StatusOK || id.Email == "" || id.Subject == "" || id.Issuer != env.Server().IssuerURL() {
		t.Fatalf("/me after sign-in: %d %+v, want an identity with an email from %s", status, id, env.Server().IssuerURL())
	}
	if code, seen := call(c); code != http.StatusOK || seen.Key != id.Key || seen.Email != id.Email {
		t.Errorf("protected handler with a session: %d %+v, want %+v", code, seen, id)
	}
	if code, _ := call(env.Client()); code != http.StatusUnauthorized {
		t.Errorf("protected handler without a session: %d, want 401", code)
	}
	logout(t, env, c)
	if code, _ := call(c); code != http.StatusUnauthorized {
		t.Errorf("protected handler after logout: %d, want 401", code)
	}
	return id
}

// TestSwapBuiltInIssuerAndOIDCProvider runs the same round trip against
// the built-in issuer, then oidc-provider, then the built-in issuer again,
// on one address over one data directory: only the configuration changes.
func TestSwapBuiltInIssuerAndOIDCProvider(t *testing.T) {
	requireOIDCProvider(t)
	const password = "correct horse battery"
	dir := t.TempDir()
	env := testenv.New(t, testenv.WithDataDir(dir))
	builtIn := signInRoundTrip(t, env, func() *http.Client { return env.SignUp(opLogin, "Ada", password) })
	if builtIn.Issuer != env.IssuerURL() || !builtIn.HasRole("admin") {
		t.Errorf("built-in identity = %+v", builtIn)
	}

	issuer := startOIDCProvider(t, opClientID, opClientSecret, env.RedirectURL(), env.URL+"/", opClaimsInIDToken)
	useOIDCProvider(t, env, issuer, opClientSecret)
	external := signInRoundTrip(t, env, func() *http.Client {
		c := env.Client()
		providerSignIn(t, env, c, issuer, env.Get(c, rp.PathLogin), opLogin)
		return c
	})
	if external.Issuer != issuer || external.Key == builtIn.Key || external.Email != opLogin || !external.HasRole("viewer") {
		t.Errorf("oidc-provider identity = %+v", external)
	}

	// Back to the built-in issuer: the account made before the swap is
	// still there, with its role, and signs in with its password.
	env.Restart(testenv.WithConfig(func(c *server.Config) {
		c.OIDC = server.OIDC{VerifySSL: true}
		c.BasicAuth.Enabled = true
	}))
	if !env.Server().BuiltIn() {
		t.Fatal("the built-in issuer does not run after switching back")
	}
	if got, want := filepath.Dir(env.Server().DBPath()), dir; got != want {
		if abs, _ := filepath.Abs(want); got != abs {
			t.Errorf("data directory after switching back = %s, want %s", got, want)
		}
	}
	again := signInRoundTrip(t, env, func() *http.Client { return env.Login(opLogin, password) })
	if again.Key != builtIn.Key || !again.HasRole("admin") {
		t.Errorf("after switching back: %+v, want the account of before the swap %+v", again, builtIn)
	}
}

// TestCheckAgainstOIDCProvider runs `latchkey check`'s report against
// oidc-provider: right secret, wrong secret.
func TestCheckAgainstOIDCProvider(t *testing.T) {
	const redirect = "http://localhost:8080/api/v1/auth/callback"
	issuer := startOIDCProvider(t, "backend-app", "right-secret-0123456789", redirect, "http://localhost:8080/")
	cfg := server.Default()
	cfg.BasicAuth.Enabled = false
	cfg.OIDC = server.OIDC{Enabled: true, DiscoveryURL: issuer + "/.well-known/openid-configuration", ClientID: "backend-app", ClientSecret: "right-secret-0123456789", VerifySSL: true}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if !server.Check(cfg, &out) {
		t.Fatalf("check failed against oidc-provider:\n%s", out.String())
	}
	for _, want := range []string{
		"[ok]   discovery document valid",
		"[ok]   issuer: " + issuer,
		"RS256",
		"[ok]   JWKS: 1 key(s)",
		"[ok]   client credentials accepted by the token endpoint",
		"[ok]   sign-out: end_session_endpoint",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	cfg.OIDC.ClientSecret = "wrong-secret"
	out.Reset()
	if server.Check(cfg, &out) || !strings.Contains(out.String(), "[FAIL] client credentials refused") {
		t.Errorf("wrong secret not reported:\n%s", out.String())
	}
}
