// Package rp is the backend's OpenID Connect relying party: the
// /api/v1/auth/login, callback, logout and me endpoints, the session cookie,
// and a middleware that hands backend handlers the signed-in Identity.
//
// It speaks only OpenID Connect, to the built-in issuer or to an external
// identity provider alike; it never imports latchkey's issuer, user store
// or key manager.
package rp

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/mux"
	zrp "github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/oauth2"
)

// Paths of the relying party's endpoints.
const (
	PathLogin    = "/api/v1/auth/login"
	PathCallback = "/api/v1/auth/callback"
	PathLogout   = "/api/v1/auth/logout"
	PathMe       = "/api/v1/auth/me"
)

// Config configures a RelyingParty.
type Config struct {
	// Issuer is the OpenID Provider's issuer identifier; discovery is read
	// from Issuer + "/.well-known/openid-configuration".
	Issuer       string
	ClientID     string
	ClientSecret string
	// PublicURL is the backend's external URL, such as
	// "https://docs.example.com"; the redirect URL is PublicURL +
	// "/api/v1/auth/callback".
	PublicURL string
	// SessionSecret signs the session cookie (HS256); at least 32 bytes.
	SessionSecret []byte
	// ValidEmailDomain, when set, admits only identities whose email is at
	// exactly this domain (case-insensitive).
	ValidEmailDomain string
	// Scopes requested; default openid profile email.
	Scopes []string
	// SessionLifetime is how long a session cookie is good for; default 12h.
	SessionLifetime time.Duration
	// ClockSkew tolerated when checking ID tokens; default 5 minutes.
	ClockSkew time.Duration
	// HTTPClient is used for discovery, JWKS and the token endpoint.
	HTTPClient *http.Client
	Logger     *slog.Logger
	Now        func() time.Time
	Rand       io.Reader
}

// RelyingParty is the backend's OpenID Connect client.
type RelyingParty struct {
	rp          zrp.RelyingParty
	publicURL   string
	secure      bool
	domain      string
	session     *jwtCodec
	tx          *jwtCodec
	csrfKey     []byte
	sessionLife time.Duration
	loginPath   string
	log         *slog.Logger
	now         func() time.Time
	rand        io.Reader
}

type nonceKey struct{}

// New discovers the issuer and returns a RelyingParty.
func New(ctx context.Context, cfg Config) (*RelyingParty, error) {
	if len(cfg.SessionSecret) < 32 {
		return nil, errors.New("rp: session secret must be at least 32 bytes")
	}
	pub, err := url.Parse(cfg.PublicURL)
	if err != nil || !pub.IsAbs() || pub.Host == "" {
		return nil, fmt.Errorf("rp: public URL %q must be an absolute URL", cfg.PublicURL)
	}
	p := &RelyingParty{
		publicURL:   strings.TrimSuffix(cfg.PublicURL, "/"),
		secure:      pub.Scheme == "https",
		domain:      strings.ToLower(strings.TrimPrefix(cfg.ValidEmailDomain, "@")),
		sessionLife: cfg.SessionLifetime,
		loginPath:   PathLogin,
		log:         cfg.Logger,
		now:         cfg.Now,
		rand:        cfg.Rand,
	}
	if p.sessionLife <= 0 {
		p.sessionLife = 12 * time.Hour
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.rand == nil {
		p.rand = rand.Reader
	}
	skew := cfg.ClockSkew
	if skew <= 0 {
		skew = 5 * time.Minute
	}
	if p.session, err = newJWTCodec(deriveKey(cfg.SessionSecret, "session")); err != nil {
		return nil, err
	}
	if p.tx, err = newJWTCodec(deriveKey(cfg.SessionSecret, "transaction")); err != nil {
		return nil, err
	}
	p.csrfKey = deriveKey(cfg.SessionSecret, "csrf")
	scopes := cfg.Scopes
	if len(scopes) == 0 {
		scopes = []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail}
	}
	httpClient := cfg.HTTPClient
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 30 * time.Second}
	}
	opts := []zrp.Option{
		zrp.WithHTTPClient(httpClient),
		zrp.WithVerifierOpts(
			zrp.WithIssuedAtOffset(skew),
			zrp.WithNonce(func(ctx context.Context) string {
				n, _ := ctx.Value(nonceKey{}).(string)
				return n
			}),
			zrp.WithSupportedSigningAlgorithms(string(oidcRS256)),
		),
	}
	p.rp, err = zrp.NewRelyingPartyOIDC(ctx, cfg.Issuer, cfg.ClientID, cfg.ClientSecret, p.publicURL+PathCallback, scopes, opts...)
	if err != nil {
		return nil, fmt.Errorf("rp: discover issuer %s: %w", cfg.Issuer, err)
	}
	return p, nil
}

const oidcRS256 = "RS256"

// RedirectURL is the callback URL to register with the identity provider.
func (p *RelyingParty) RedirectURL() string { return p.publicURL + PathCallback }

// Issuer is the issuer identifier the relying party trusts.
func (p *RelyingParty) Issuer() string { return p.rp.Issuer() }

// Register adds the relying party's endpoints to r.
func (p *RelyingParty) Register(r *mux.Router) {
	r.HandleFunc(PathLogin, p.handleLogin).Methods(http.MethodGet)
	r.HandleFunc(PathCallback, p.handleCallback).Methods(http.MethodGet)
	r.Handle(PathLogout, http.NewCrossOriginProtection().Handler(http.HandlerFunc(p.handleLogout))).Methods(http.MethodPost)
	r.HandleFunc(PathMe, p.handleMe).Methods(http.MethodGet)
}

func (p *RelyingParty) random(n int) string {
	b := make([]byte, n)
	if _, err := io.ReadFull(p.rand, b); err != nil {
		panic(fmt.Sprintf("rp: random source failed: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// safeRedirect accepts only same-origin paths: "/x", never "//host",
// "/\host", a scheme, or control characters.
func safeRedirect(raw string) string {
	if raw == "" || raw[0] != '/' || strings.HasPrefix(raw, "//") || strings.HasPrefix(raw, "/\\") ||
		strings.ContainsAny(raw, "\\\r\n\t") {
		return "/"
	}
	u, err := url.Parse(raw)
	if err != nil || u.IsAbs() || u.Host != "" {
		return "/"
	}
	return raw
}

func (p *RelyingParty) handleLogin(w http.ResponseWriter, r *http.Request) {
	t := transaction{
		Audience: txAudience,
		Expiry:   p.now().Add(10 * time.Minute).Unix(),
		State:    p.random(32),
		Nonce:    p.random(32),
		Verifier: p.random(32),
		Redirect: safeRedirect(r.URL.Query().Get("redirect")),
	}
	value, err := p.tx.encode(t)
	if err != nil {
		p.fail(w, r, http.StatusInternalServerError, "Sign-in could not start", err)
		return
	}
	http.SetCookie(w, p.cookie(transactionCookie, PathCallback, value, p.now().Add(10*time.Minute)))
	challenge := sha256.Sum256([]byte(t.Verifier))
	params := []zrp.AuthURLOpt{
		zrp.WithCodeChallenge(base64.RawURLEncoding.EncodeToString(challenge[:])),
		func() []oauth2.AuthCodeOption {
			return []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("nonce", t.Nonce)}
		},
	}
	switch prompt := r.URL.Query().Get("prompt"); prompt {
	case oidc.PromptNone, oidc.PromptLogin, "create", oidc.PromptSelectAccount:
		params = append(params, zrp.WithPrompt(prompt))
	}
	http.Redirect(w, r, zrp.AuthURL(t.State, p.rp, params...), http.StatusFound)
}

func (p *RelyingParty) handleCallback(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(transactionCookie)
	http.SetCookie(w, p.cookie(transactionCookie, PathCallback, "", time.Time{}))
	if err != nil {
		p.fail(w, r, http.StatusBadRequest, "This sign-in has expired or was started in another browser; start again", err)
		return
	}
	var t transaction
	if err := p.tx.decode(c.Value, &t); err != nil || t.Audience != txAudience || p.now().After(time.Unix(t.Expiry, 0)) {
		p.fail(w, r, http.StatusBadRequest, "This sign-in has expired; start again", err)
		return
	}
	q := r.URL.Query()
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(t.State)) != 1 {
		p.fail(w, r, http.StatusBadRequest, "The sign-in response does not match the request (state); start again", nil)
		return
	}
	if e := q.Get("error"); e != "" {
		status := http.StatusUnauthorized
		if e == "server_error" || e == "temporarily_unavailable" {
			status = http.StatusBadGateway
		}
		p.fail(w, r, status, "The identity provider refused the sign-in: "+oauthError(e, q.Get("error_description")), nil)
		return
	}
	code := q.Get("code")
	if code == "" {
		p.fail(w, r, http.StatusBadRequest, "The sign-in response carries no code", nil)
		return
	}
	ctx := context.WithValue(r.Context(), nonceKey{}, t.Nonce)
	tokens, err := zrp.CodeExchange[*oidc.IDTokenClaims](ctx, code, p.rp, zrp.WithCodeVerifier(t.Verifier))
	if err != nil {
		p.fail(w, r, http.StatusUnauthorized, "The sign-in could not be completed: the identity provider's answer was refused", err)
		return
	}
	id := identityFromClaims(tokens.IDTokenClaims)
	if err := p.checkDomain(id); err != nil {
		p.log.Info("audit: sign-in refused", "event", "rp.signin.refused", "sub", id.Subject, "reason", err.Error())
		p.fail(w, r, http.StatusForbidden, err.Error(), nil)
		return
	}
	if err := p.setSession(w, id); err != nil {
		p.fail(w, r, http.StatusInternalServerError, "The session could not be created", err)
		return
	}
	p.log.Info("audit: backend session started", "event", "rp.signin", "sub", id.Subject, "iss", id.Issuer)
	http.Redirect(w, r, t.Redirect, http.StatusSeeOther)
}

// oauthError renders an error code and description for a person, keeping
// only the characters RFC 6749 allows in them.
func oauthError(code, desc string) string {
	clean := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r < 0x20 || r > 0x7e || r == '<' || r == '>' {
				return -1
			}
			return r
		}, s)
	}
	if desc == "" {
		return clean(code)
	}
	if len(desc) > 300 {
		desc = desc[:300]
	}
	return clean(code) + " (" + clean(desc) + ")"
}

// identityFromClaims maps the ID token of an issuer to an Identity.
func identityFromClaims(c *oidc.IDTokenClaims) Identity {
	id := Identity{
		Issuer:        c.Issuer,
		Subject:       c.Subject,
		Email:         c.Email,
		EmailVerified: bool(c.EmailVerified),
		Name:          c.Name,
		Roles:         []string{},
	}
	if roles, ok := c.Claims["roles"].([]any); ok {
		for _, r := range roles {
			if s, ok := r.(string); ok {
				id.Roles = append(id.Roles, s)
			}
		}
	}
	if org, ok := c.Claims["org"].(string); ok {
		id.Organization = org
	}
	return id
}

// checkDomain enforces ValidEmailDomain: exact domain, case-insensitive.
func (p *RelyingParty) checkDomain(id Identity) error {
	if p.domain == "" {
		return nil
	}
	if id.Email == "" {
		return fmt.Errorf("sign-in refused: the identity provider sent no email address, and only @%s addresses may sign in", p.domain)
	}
	at := strings.LastIndexByte(id.Email, '@')
	if at < 0 || !strings.EqualFold(id.Email[at+1:], p.domain) {
		return fmt.Errorf("sign-in refused: only @%s addresses may sign in", p.domain)
	}
	return nil
}

func (p *RelyingParty) handleLogout(w http.ResponseWriter, r *http.Request) {
	if _, err := p.Session(r); err == nil {
		want := p.CSRFToken(r)
		if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(want)) != 1 {
			p.fail(w, r, http.StatusForbidden, "The sign-out form has expired; reload the page and try again", nil)
			return
		}
	}
	http.SetCookie(w, p.cookie(SessionCookie, "/", "", time.Time{}))
	home := p.publicURL + "/"
	end := p.rp.GetEndSessionEndpoint()
	if end == "" {
		http.Redirect(w, r, home, http.StatusSeeOther)
		return
	}
	u, err := url.Parse(end)
	if err != nil {
		http.Redirect(w, r, home, http.StatusSeeOther)
		return
	}
	q := u.Query()
	q.Set("client_id", p.rp.OAuthConfig().ClientID)
	q.Set("post_logout_redirect_uri", home)
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

func (p *RelyingParty) handleMe(w http.ResponseWriter, r *http.Request) {
	id, err := p.Session(r)
	if err != nil {
		p.clearInvalidSession(w, r)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthenticated", "login": p.loginPath})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, id)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

var failPage = template.Must(template.New("fail").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign-in problem</title></head>
<body style="font-family:system-ui,sans-serif;max-width:36rem;margin:10vh auto;padding:0 1rem;line-height:1.5">
<h1>Sign-in problem</h1><p>{{.Message}}</p><p><a href="{{.Login}}">Sign in again</a></p></body></html>`))

// fail answers a failed sign-in step with a page (or JSON for API clients)
// that says what went wrong; err is logged, never shown.
func (p *RelyingParty) fail(w http.ResponseWriter, r *http.Request, status int, msg string, err error) {
	if err != nil {
		p.log.Warn("rp: sign-in step failed", "path", r.URL.Path, "status", status, "err", err)
	}
	w.Header().Set("Cache-Control", "no-store")
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		writeJSON(w, status, map[string]string{"error": msg})
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	w.WriteHeader(status)
	_ = failPage.Execute(w, map[string]string{"Message": msg, "Login": p.loginPath})
}
