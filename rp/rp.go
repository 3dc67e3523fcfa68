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
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"
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
	// Issuer is the OpenID Provider's issuer identifier. DiscoveryURL, when
	// empty, is Issuer + "/.well-known/openid-configuration".
	Issuer       string
	DiscoveryURL string
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
	// AllowedTenants limits a multi-tenant Entra ID issuer ({tenantid}) to
	// these tenant IDs; "*" admits every tenant.
	AllowedTenants []string
	// TrustEmailDomain accepts the provider's email for ValidEmailDomain
	// even when it is not marked verified (for the built-in issuer, which
	// enforces the domain itself).
	TrustEmailDomain bool
	// RetryDiscovery keeps retrying discovery in the background (with
	// backoff) when the provider cannot be reached at start, instead of
	// failing New; until it succeeds the login endpoint answers 503.
	RetryDiscovery bool
	// HTTPClient is used for discovery, JWKS and the token endpoint.
	HTTPClient *http.Client
	Logger     *slog.Logger
	Now        func() time.Time
	Rand       io.Reader
}

// RelyingParty is the backend's OpenID Connect client.
type RelyingParty struct {
	cfg         Config
	client      *http.Client
	discovery   string
	publicURL   string
	secure      bool
	domain      string
	session     *jwtCodec
	tx          *jwtCodec
	csrfKey     []byte
	sessionLife time.Duration
	skew        time.Duration
	loginPath   string
	log         *slog.Logger
	now         func() time.Time
	rand        io.Reader

	mu        sync.RWMutex
	prov      *provider // nil until discovery succeeds
	discErr   error
	nextRetry time.Time
	ready     chan struct{}
	stop      context.CancelFunc
	done      chan struct{}
	overage   sync.Once
}

// provider is what discovery established about the identity provider.
type provider struct {
	issuer     string // may contain {tenantid}
	doc        *Discovery
	oauth      oauth2.Config
	verifier   *idVerifier
	endSession string
}

// New returns a RelyingParty. It reads the provider's discovery document
// first; when that fails it returns the error, or, with RetryDiscovery,
// keeps retrying in the background (Close stops it).
func New(ctx context.Context, cfg Config) (*RelyingParty, error) {
	if len(cfg.SessionSecret) < 32 {
		return nil, errors.New("rp: session secret must be at least 32 bytes")
	}
	pub, err := url.Parse(cfg.PublicURL)
	if err != nil || !pub.IsAbs() || pub.Host == "" {
		return nil, fmt.Errorf("rp: public URL %q must be an absolute URL", cfg.PublicURL)
	}
	p := &RelyingParty{
		cfg:         cfg,
		client:      cfg.HTTPClient,
		discovery:   cfg.DiscoveryURL,
		publicURL:   strings.TrimSuffix(cfg.PublicURL, "/"),
		secure:      pub.Scheme == "https",
		domain:      strings.ToLower(strings.TrimPrefix(cfg.ValidEmailDomain, "@")),
		sessionLife: cfg.SessionLifetime,
		skew:        cfg.ClockSkew,
		loginPath:   PathLogin,
		log:         cfg.Logger,
		now:         cfg.Now,
		rand:        cfg.Rand,
		ready:       make(chan struct{}),
		done:        make(chan struct{}),
	}
	if p.discovery == "" {
		p.discovery = strings.TrimSuffix(cfg.Issuer, "/") + DiscoverySuffix
	}
	if p.client == nil {
		p.client = &http.Client{Timeout: 30 * time.Second}
	}
	if p.sessionLife <= 0 {
		p.sessionLife = 12 * time.Hour
	}
	if p.skew <= 0 {
		p.skew = 5 * time.Minute
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
	if p.session, err = newJWTCodec(deriveKey(cfg.SessionSecret, "session")); err != nil {
		return nil, err
	}
	if p.tx, err = newJWTCodec(deriveKey(cfg.SessionSecret, "transaction")); err != nil {
		return nil, err
	}
	p.csrfKey = deriveKey(cfg.SessionSecret, "csrf")
	err = p.discover(ctx)
	if err == nil || !cfg.RetryDiscovery {
		close(p.done)
		if err != nil {
			return nil, err
		}
		return p, nil
	}
	p.log.Error("identity provider discovery failed; sign-in is unavailable until it succeeds", "discovery_url", p.discovery, "err", err, "retry_at", p.nextRetry.Format(time.RFC3339))
	loopCtx, cancel := context.WithCancel(context.Background())
	p.stop = cancel
	go p.retryDiscovery(loopCtx)
	return p, nil
}

// discover reads and checks the discovery document and, on success, makes
// the relying party ready.
func (p *RelyingParty) discover(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	prov, err := p.buildProvider(ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.discErr = err
		return err
	}
	p.prov, p.discErr = prov, nil
	select {
	case <-p.ready:
	default:
		close(p.ready)
	}
	return nil
}

func (p *RelyingParty) buildProvider(ctx context.Context) (*provider, error) {
	doc, err := FetchDiscovery(ctx, p.client, p.discovery)
	if err != nil {
		return nil, err
	}
	notes, err := doc.Check(p.discovery)
	if err != nil {
		return nil, err
	}
	for _, n := range notes {
		p.log.Info("identity provider: "+n, "discovery_url", p.discovery)
	}
	style, _ := doc.authStyle()
	scopes := p.cfg.Scopes
	if len(scopes) == 0 {
		scopes = []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail}
	}
	algs := acceptedAlgs
	if len(doc.IDTokenSigningAlgValuesSupported) > 0 {
		algs = nil
		for _, a := range acceptedAlgs {
			if slices.Contains(doc.IDTokenSigningAlgValuesSupported, string(a)) {
				algs = append(algs, a)
			}
		}
	}
	return &provider{
		issuer: doc.Issuer,
		doc:    doc,
		oauth: oauth2.Config{
			ClientID:     p.cfg.ClientID,
			ClientSecret: p.cfg.ClientSecret,
			RedirectURL:  p.publicURL + PathCallback,
			Scopes:       scopes,
			Endpoint:     oauth2.Endpoint{AuthURL: doc.AuthorizationEndpoint, TokenURL: doc.TokenEndpoint, AuthStyle: style},
		},
		verifier: &idVerifier{
			issuer: doc.Issuer, clientID: p.cfg.ClientID, keys: newKeySet(doc.JWKSURI, p.client, p.now),
			algs: algs, skew: p.skew, now: p.now, tenants: p.cfg.AllowedTenants,
		},
		endSession: doc.EndSessionEndpoint,
	}, nil
}

// retryDiscovery retries discovery with exponential backoff (1 s doubling
// to one minute) until it succeeds or Close is called.
func (p *RelyingParty) retryDiscovery(ctx context.Context) {
	defer close(p.done)
	delay := time.Second
	for {
		p.mu.Lock()
		p.nextRetry = p.now().Add(delay)
		p.mu.Unlock()
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if err := p.discover(ctx); err == nil {
			p.log.Info("identity provider discovered; sign-in is available", "issuer", p.Issuer())
			return
		} else if ctx.Err() == nil {
			p.log.Warn("identity provider discovery failed again", "discovery_url", p.discovery, "err", err, "next_delay", min(2*delay, time.Minute).String())
		}
		delay = min(2*delay, time.Minute)
	}
}

// Ready is closed once discovery has succeeded.
func (p *RelyingParty) Ready() <-chan struct{} { return p.ready }

// Close stops background discovery retries.
func (p *RelyingParty) Close() {
	if p.stop != nil {
		p.stop()
	}
	<-p.done
}

// current returns the discovered provider, or the reason there is none.
func (p *RelyingParty) current() (*provider, time.Time, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.prov, p.nextRetry, p.discErr
}

// RedirectURL is the callback URL to register with the identity provider.
func (p *RelyingParty) RedirectURL() string { return p.publicURL + PathCallback }

// Issuer is the issuer identifier the relying party trusts ("" before
// discovery succeeded); an Entra ID multi-tenant issuer keeps its
// {tenantid} template.
func (p *RelyingParty) Issuer() string {
	prov, _, _ := p.current()
	if prov == nil {
		return ""
	}
	return prov.issuer
}

// Register adds the relying party's endpoints to r.
func (p *RelyingParty) Register(r *mux.Router) {
	r.HandleFunc(PathLogin, p.handleLogin).Methods(http.MethodGet)
	r.HandleFunc(PathCallback, p.handleCallback).Methods(http.MethodGet)
	r.Handle(PathLogout, http.NewCrossOriginProtection().Handler(http.HandlerFunc(p.handleLogout))).Methods(http.MethodPost)
	r.HandleFunc(PathLogout, p.handleLogoutNavigation).Methods(http.MethodGet)
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
	prov, next, discErr := p.current()
	if prov == nil {
		p.unavailable(w, r, discErr, next)
		return
	}
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
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(t.Verifier), oauth2.SetAuthURLParam("nonce", t.Nonce)}
	switch prompt := r.URL.Query().Get("prompt"); prompt {
	case oidc.PromptNone, oidc.PromptLogin, "create", oidc.PromptSelectAccount:
		opts = append(opts, oauth2.SetAuthURLParam("prompt", prompt))
	}
	http.Redirect(w, r, prov.oauth.AuthCodeURL(t.State, opts...), http.StatusFound)
}

// unavailable answers 503 while the provider has not been discovered.
func (p *RelyingParty) unavailable(w http.ResponseWriter, r *http.Request, discErr error, next time.Time) {
	msg := "Sign-in is unavailable: the identity provider's discovery document could not be read"
	if discErr != nil {
		msg += " (" + discErr.Error() + ")"
	}
	msg += "."
	if !next.IsZero() {
		wait := max(time.Until(next).Round(time.Second), time.Second)
		msg += fmt.Sprintf(" latchkey retries automatically; next attempt at %s (in %s).", next.UTC().Format("15:04:05 MST"), wait)
		w.Header().Set("Retry-After", fmt.Sprint(int(wait/time.Second)))
	}
	p.fail(w, r, http.StatusServiceUnavailable, msg, nil)
}

func (p *RelyingParty) handleCallback(w http.ResponseWriter, r *http.Request) {
	prov, next, discErr := p.current()
	if prov == nil {
		p.unavailable(w, r, discErr, next)
		return
	}
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
	ctx := context.WithValue(r.Context(), oauth2.HTTPClient, p.client)
	tok, err := prov.oauth.Exchange(ctx, code, oauth2.VerifierOption(t.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		msg := "The identity provider did not accept the sign-in code"
		if errors.As(err, &re) && re.ErrorCode != "" {
			msg += ": " + oauthError(re.ErrorCode, re.ErrorDescription)
			if re.ErrorCode == "invalid_client" || re.ErrorCode == "unauthorized_client" {
				msg += ". Check the client ID and secret (latchkey check tells more)"
			}
		}
		p.fail(w, r, http.StatusBadGateway, msg, err)
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		p.fail(w, r, http.StatusBadGateway, "The identity provider's token response has no id_token (is the openid scope granted?)", nil)
		return
	}
	claims, err := prov.verifier.verify(r.Context(), raw, t.Nonce)
	if err != nil {
		p.fail(w, r, http.StatusUnauthorized, "The identity provider's ID token was refused: "+strings.TrimPrefix(err.Error(), ErrIDToken.Error()+": "), err)
		return
	}
	if err := p.mergeUserinfo(r.Context(), prov, tok, claims); err != nil {
		p.fail(w, r, http.StatusBadGateway, "The identity provider's userinfo answer was refused: "+err.Error(), err)
		return
	}
	id := p.identity(claims)
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

// errUserinfoSubject is returned when userinfo describes someone else.
var errUserinfoSubject = errors.New("its sub differs from the ID token's")

// mergeUserinfo completes the ID token's claims from the userinfo endpoint:
// with the code flow a provider may send email, name, roles and similar
// claims only there (OpenID Connect Core §5.4). Claims in the ID token win. A
// userinfo failure is logged and the sign-in goes on with the ID token;
// userinfo about another subject is refused (§5.3.2).
func (p *RelyingParty) mergeUserinfo(ctx context.Context, prov *provider, tok *oauth2.Token, c *idClaims) error {
	if prov.doc.UserinfoEndpoint == "" || tok.AccessToken == "" {
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, prov.doc.UserinfoEndpoint, nil)
	if err != nil {
		return nil
	}
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Accept", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		p.log.Warn("userinfo request failed; using the ID token's claims only", "err", err)
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		p.log.Warn("userinfo answered no JSON claims; using the ID token's claims only", "status", resp.StatusCode)
		return nil
	}
	var u idClaims
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&u); err != nil {
		p.log.Warn("userinfo answer is not JSON claims; using the ID token's claims only", "err", err)
		return nil
	}
	if u.Subject != c.Subject {
		return errUserinfoSubject
	}
	if c.Email == "" {
		c.Email, c.EmailVerified = u.Email, u.EmailVerified
	}
	if c.Name == "" {
		c.Name = u.Name
	}
	if c.PreferredUsername == "" {
		c.PreferredUsername = u.PreferredUsername
	}
	if len(c.Roles) == 0 {
		c.Roles = u.Roles
	}
	if len(c.Groups) == 0 {
		c.Groups = u.Groups
	}
	if c.Org == "" {
		c.Org = u.Org
	}
	return nil
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

// identity maps verified ID token claims to an Identity. With Entra ID the
// stable key is tid/oid, never the email; a missing email falls back to
// preferred_username, marked unverified.
func (p *RelyingParty) identity(c *idClaims) Identity {
	id := Identity{
		Issuer:        c.Issuer,
		Subject:       c.Subject,
		Key:           c.Issuer + "#" + c.Subject,
		Email:         c.Email,
		EmailVerified: c.EmailVerified != nil && *c.EmailVerified,
		Name:          c.Name,
		Roles:         append([]string{}, c.Roles...),
		Groups:        c.Groups,
		Organization:  c.Org,
		TenantID:      c.TenantID,
	}
	if c.TenantID != "" && c.ObjectID != "" {
		id.Key = "entra:" + strings.ToLower(c.TenantID) + "/" + strings.ToLower(c.ObjectID)
	}
	if c.Email != "" && c.EmailVerified == nil && c.DomainOwnerVerify != nil {
		id.EmailVerified = *c.DomainOwnerVerify
	}
	if id.Email == "" && c.PreferredUsername != "" {
		id.Email, id.EmailVerified, id.EmailSource = c.PreferredUsername, false, "preferred_username"
		p.log.Info("identity provider sent no email claim; using preferred_username, unverified", "sub", c.Subject)
	}
	if _, ok := c.ClaimNames["groups"]; ok {
		p.overage.Do(func() {
			p.log.Warn("groups overage: the identity provider sent a _claim_names reference instead of the groups (the user is in too many groups for the token); groups are empty for such users — read them from Microsoft Graph or configure group filtering in the app registration", "sub", c.Subject)
		})
	}
	return id
}

// checkDomain enforces ValidEmailDomain: exact domain, case-insensitive.
func (p *RelyingParty) checkDomain(id Identity) error {
	if p.domain == "" {
		return nil
	}
	if id.Email == "" {
		return fmt.Errorf("sign-in refused: the identity provider sent neither an email nor a preferred_username claim, and only @%s addresses may sign in (add the optional claim email in the app registration)", p.domain)
	}
	at := strings.LastIndexByte(id.Email, '@')
	if at < 0 || !strings.EqualFold(id.Email[at+1:], p.domain) {
		if id.EmailSource == "preferred_username" {
			return fmt.Errorf("sign-in refused: the identity provider sent no email claim, and the preferred_username %q is not an @%s address (add the optional claim email in the app registration)", id.Email, p.domain)
		}
		return fmt.Errorf("sign-in refused: only @%s addresses may sign in, and this account is %s", p.domain, id.Email)
	}
	switch {
	case p.cfg.TrustEmailDomain || id.EmailVerified:
	case id.EmailSource == "preferred_username" && id.TenantID != "":
		// An Entra ID user principal name: its domain must be a verified
		// domain of the user's tenant (and the tenant is checked).
	default:
		return fmt.Errorf("sign-in refused: the identity provider did not mark %s as verified, so it cannot prove an @%s address (with Entra ID add the optional claim xms_edov; otherwise have the provider send email_verified)", id.Email, p.domain)
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
	p.logout(w, r)
}

// handleLogoutNavigation accepts a GET only when the browser says it is a
// navigation from this same origin (Fetch Metadata), as when the issuer's
// "Sign out of all sessions" redirects here; a link on another site, or a
// client that sends no Fetch Metadata, gets 405 and must POST.
func (p *RelyingParty) handleLogoutNavigation(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Sec-Fetch-Site") != "same-origin" || r.Header.Get("Sec-Fetch-Mode") != "navigate" {
		w.Header().Set("Allow", http.MethodPost)
		p.fail(w, r, http.StatusMethodNotAllowed, "Sign out with the Sign out button (POST)", nil)
		return
	}
	p.logout(w, r)
}

// logout ends the session and, where the provider offers it, the
// provider's session too.
func (p *RelyingParty) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, p.cookie(SessionCookie, "/", "", time.Time{}))
	home := p.publicURL + "/"
	prov, _, _ := p.current()
	if prov == nil || prov.endSession == "" {
		http.Redirect(w, r, home, http.StatusSeeOther)
		return
	}
	u, err := url.Parse(prov.endSession)
	if err != nil {
		http.Redirect(w, r, home, http.StatusSeeOther)
		return
	}
	q := u.Query()
	q.Set("client_id", prov.oauth.ClientID)
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
