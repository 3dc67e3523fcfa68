// Package testenv runs latchkey in-process for tests, the way
// net/http/httptest runs a handler: New returns a running issuer and backend
// on a loopback httptest server over a temporary bbolt file, with helpers
// that drive the real HTML forms (Create Account, sign in) and return an
// *http.Client holding the resulting session.
//
//	env := testenv.New(t)
//	alice := env.SignUp("alice@example.com", "Alice", "correct horse battery")
//	id := env.Me(alice) // the identity the backend sees
//
// The issuer is at env.IssuerURL() (discovery under
// /.well-known/openid-configuration); register extra clients with
// WithClients to point any OpenID Connect library at it.
package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/cmd/latchkey/server"
	"github.com/latchkey-dev/latchkey/op"
	"github.com/latchkey-dev/latchkey/rp"
	"github.com/latchkey-dev/latchkey/users"
)

// FastHash is the argon2id cost testenv uses by default: far below a
// production cost, so tests that sign in often stay fast. WithHash restores
// any other cost.
var FastHash = users.HashParams{Memory: 64, Time: 1, Threads: 1}

// Env is a running latchkey: issuer under /oidc, backend under /api/v1/auth.
type Env struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:41234.
	URL string
	// Config is the configuration the server runs with.
	Config server.Config

	t      testing.TB
	s      settings
	addr   string
	ts     *httptest.Server
	server *server.Server

	mu     sync.Mutex
	follow []string // other origins clients follow redirects to
}

type settings struct {
	cfg  server.Config
	opts server.Options
}

// Option configures New.
type Option func(*settings)

// WithValidEmailDomain sets basicAuth.validEmailDomain.
func WithValidEmailDomain(domain string) Option {
	return func(s *settings) { s.cfg.BasicAuth.ValidEmailDomain = domain }
}

// WithClients registers extra clients with the built-in issuer.
func WithClients(clients ...server.Client) Option {
	return func(s *settings) { s.cfg.Clients = append(s.cfg.Clients, clients...) }
}

// WithDataDir keeps the database in dir instead of a temporary directory;
// use it to reopen the same data in a second Env.
func WithDataDir(dir string) Option {
	return func(s *settings) { s.cfg.DataDir = dir }
}

// WithClock injects the clock of the issuer, the user store and the
// relying party.
func WithClock(now func() time.Time) Option {
	return func(s *settings) { s.opts.Now = now }
}

// WithLifetimes sets the issuer's token and session lifetimes.
func WithLifetimes(l op.Lifetimes) Option {
	return func(s *settings) { s.opts.Lifetimes = l }
}

// WithHash sets the argon2id cost (default FastHash).
func WithHash(p users.HashParams) Option {
	return func(s *settings) { s.opts.Hash = p }
}

// WithLogger sends the server's logs to l (default: discarded).
func WithLogger(l *slog.Logger) Option {
	return func(s *settings) { s.opts.Logger = l }
}

// WithOIDC runs the backend in OIDC mode against an external provider (a
// fake Entra, another issuer) instead of the built-in issuer: the swap is
// configuration only. Clients of the Env follow redirects to the
// provider's origin.
func WithOIDC(discoveryURL, clientID, clientSecret string) Option {
	return func(s *settings) {
		s.cfg.BasicAuth.Enabled = false
		s.cfg.OIDC = server.OIDC{Enabled: true, DiscoveryURL: discoveryURL, ClientID: clientID, ClientSecret: clientSecret, VerifySSL: true}
	}
}

// WithConfig lets a test change any part of the configuration.
func WithConfig(f func(*server.Config)) Option {
	return func(s *settings) { f(&s.cfg) }
}

// New starts latchkey on a loopback port and stops it when the test ends.
func New(t testing.TB, opts ...Option) *Env {
	t.Helper()
	s := settings{cfg: server.Default(), opts: server.Options{Hash: FastHash}}
	s.cfg.DataDir = t.TempDir()
	for _, o := range opts {
		o(&s)
	}
	if s.opts.Logger == nil {
		s.opts.Logger = slog.New(slog.DiscardHandler)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: listen: %v", err)
	}
	e := &Env{t: t, s: s, addr: l.Addr().String()}
	if s.cfg.OIDC.Enabled {
		e.FollowRedirectsTo(s.cfg.OIDC.DiscoveryURL)
	}
	e.start(l)
	t.Cleanup(e.Close)
	return e
}

func (e *Env) start(l net.Listener) {
	e.t.Helper()
	cfg := e.s.cfg
	cfg.Listen = e.addr
	cfg.PublicURL = "http://" + e.addr
	srv, err := server.New(context.Background(), cfg, e.s.opts)
	if err != nil {
		_ = l.Close()
		e.t.Fatalf("testenv: start latchkey: %v", err)
	}
	ts := httptest.NewUnstartedServer(srv.Handler())
	_ = ts.Listener.Close()
	ts.Listener = l
	ts.Start()
	e.ts, e.server, e.Config, e.URL = ts, srv, cfg, ts.URL
}

// Close stops the server and closes the database. It is safe to call twice.
func (e *Env) Close() {
	if e.ts == nil {
		return
	}
	e.ts.Close()
	if err := e.server.Close(); err != nil {
		e.t.Errorf("testenv: %v", err)
	}
	e.ts, e.server = nil, nil
}

// Restart stops the server and starts it again on the same address over the
// same data directory, as a process restart would. Cookies held by clients
// stay valid for the new server. Options change the settings of the new
// run (for example another configuration).
func (e *Env) Restart(opts ...Option) {
	e.t.Helper()
	e.Close()
	for _, o := range opts {
		o(&e.s)
	}
	var l net.Listener
	var err error
	for range 50 {
		if l, err = net.Listen("tcp", e.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		e.t.Fatalf("testenv: restart: listen on %s: %v", e.addr, err)
	}
	e.start(l)
}

// Server is the running server (its user store, relying party, …).
func (e *Env) Server() *server.Server { return e.server }

// IssuerURL is the built-in issuer's identifier.
func (e *Env) IssuerURL() string { return e.URL + server.IssuerPath }

// RedirectURL is the backend's redirect URL, to register with an external
// provider.
func (e *Env) RedirectURL() string { return e.URL + rp.PathCallback }

// FollowRedirectsTo makes the Env's clients follow redirects to the
// origins of these URLs too (for example a fake identity provider).
func (e *Env) FollowRedirectsTo(urls ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, raw := range urls {
		if u, err := url.Parse(raw); err == nil {
			e.follow = append(e.follow, u.Host)
		}
	}
}

func (e *Env) follows(host string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Contains(e.follow, host)
}

// Client returns a new browser-like client: its own cookie jar, following
// redirects within the server (and to FollowRedirectsTo origins) and
// stopping at any other origin (so a test can read a redirect to its own
// redirect_uri).
func (e *Env) Client() *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatalf("testenv: cookie jar: %v", err)
	}
	base, _ := url.Parse(e.URL)
	return &http.Client{
		Jar:     jar,
		Timeout: 30 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Host != base.Host && !e.follows(req.URL.Host) {
				return http.ErrUseLastResponse
			}
			if len(via) >= 10 {
				return fmt.Errorf("testenv: stopped after 10 redirects")
			}
			return nil
		},
	}
}

// SignUp creates an account through the Create Account form, starting from
// the backend's login endpoint, and returns a client signed in to the
// backend. It fails the test if any step fails.
func (e *Env) SignUp(email, name, password string) *http.Client {
	e.t.Helper()
	c := e.Client()
	resp := e.Get(c, "/api/v1/auth/login?prompt=create")
	resp = e.Submit(c, resp, url.Values{"email": {email}, "name": {name}, "password": {password}})
	e.expectSignedIn(c, resp, email)
	return c
}

// Login signs in through the sign-in form, starting from the backend's
// login endpoint, and returns a client signed in to the backend.
func (e *Env) Login(email, password string) *http.Client {
	e.t.Helper()
	c := e.Client()
	e.LoginWith(c, email, password)
	return c
}

// LoginWith signs c in through the sign-in form (prompt=login, so the
// password is asked even when c has an issuer session).
func (e *Env) LoginWith(c *http.Client, email, password string) {
	e.t.Helper()
	resp := e.Get(c, "/api/v1/auth/login?prompt=login")
	resp = e.Submit(c, resp, url.Values{"email": {email}, "password": {password}})
	e.expectSignedIn(c, resp, email)
}

func (e *Env) expectSignedIn(c *http.Client, resp *Response, email string) {
	e.t.Helper()
	id, status := e.Me(c)
	if status != http.StatusOK || !strings.EqualFold(id.Email, email) {
		e.t.Fatalf("testenv: %s is not signed in (me: %d %+v); last page %s %d:\n%s", email, status, id, resp.URL, resp.StatusCode, resp.Body)
	}
}

// Me asks the backend who c is: the identity and the HTTP status.
func (e *Env) Me(c *http.Client) (rp.Identity, int) {
	e.t.Helper()
	resp := e.Get(c, rp.PathMe)
	var id rp.Identity
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal([]byte(resp.Body), &id); err != nil {
			e.t.Fatalf("testenv: decode /me: %v", err)
		}
	}
	return id, resp.StatusCode
}

// Logout posts the start page's Sign out form.
func (e *Env) Logout(c *http.Client) *Response {
	e.t.Helper()
	return e.Submit(c, e.Get(c, "/"), nil)
}

// Response is a read response: status, final URL, headers and body.
type Response struct {
	StatusCode int
	URL        *url.URL
	Header     http.Header
	Body       string
}

// Get fetches path (relative to the server, or absolute) with c.
func (e *Env) Get(c *http.Client, path string) *Response {
	e.t.Helper()
	return e.Do(c, http.MethodGet, path, nil)
}

// Do sends a request (form-encoded when form is not nil) and reads the
// whole response.
func (e *Env) Do(c *http.Client, method, path string, form url.Values) *Response {
	e.t.Helper()
	target := path
	if strings.HasPrefix(path, "/") {
		target = e.URL + path
	}
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		e.t.Fatalf("testenv: %s %s: %v", method, target, err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatalf("testenv: %s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("testenv: read %s: %v", target, err)
	}
	return &Response{StatusCode: resp.StatusCode, URL: resp.Request.URL, Header: resp.Header, Body: string(raw)}
}

// Submit fills the first POST form of page with its hidden fields (the CSRF
// token, the authorization request) plus values, and posts it with c.
func (e *Env) Submit(c *http.Client, page *Response, values url.Values) *Response {
	e.t.Helper()
	f, err := ParseForm(page.Body)
	if err != nil {
		e.t.Fatalf("testenv: %v on %s (status %d):\n%s", err, page.URL, page.StatusCode, page.Body)
	}
	for k, v := range values {
		f.Values[k] = v
	}
	action, err := page.URL.Parse(f.Action)
	if err != nil {
		e.t.Fatalf("testenv: form action %q: %v", f.Action, err)
	}
	return e.Do(c, http.MethodPost, action.String(), f.Values)
}
