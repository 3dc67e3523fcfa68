// Package op is latchkey's built-in OpenID Provider: the "basic auth" mode.
//
// It implements zitadel's op.Storage over bbolt, users and keys, and serves
// the issuer's own HTML pages (sign-in and Create Account). Everything a
// relying party sees of it is standard OpenID Connect: discovery, JWKS,
// authorization code flow with PKCE, token, userinfo, introspection,
// revocation and end_session.
package op

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/rs/cors"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"
	"go.etcd.io/bbolt"

	"github.com/latchkey-dev/latchkey/keys"
	"github.com/latchkey-dev/latchkey/users"
)

// Lifetimes bounds the life of the issuer's artefacts. Zero fields get the
// defaults of DefaultLifetimes.
type Lifetimes struct {
	AuthRequest  time.Duration // a pending authorization request (the sign-in page)
	Code         time.Duration // an authorization code
	AccessToken  time.Duration
	IDToken      time.Duration
	RefreshToken time.Duration
	Session      time.Duration // the issuer's browser session (single sign-on)
}

// DefaultLifetimes are the lifetimes used for zero fields of Lifetimes.
var DefaultLifetimes = Lifetimes{
	AuthRequest:  30 * time.Minute,
	Code:         time.Minute,
	AccessToken:  15 * time.Minute,
	IDToken:      time.Hour,
	RefreshToken: 30 * 24 * time.Hour,
	Session:      24 * time.Hour,
}

// Config configures an Issuer.
type Config struct {
	// Issuer is the issuer identifier: an absolute URL such as
	// "http://localhost:8080/oidc". Its path is where the issuer is mounted.
	Issuer string
	// HomeURL is where a browser goes when it has nowhere else to go: after
	// a Create Account started outside any application, or after logout
	// without a post_logout_redirect_uri.
	HomeURL string
	// Clients are the registered applications.
	Clients []Client
	// DB is the bbolt database; the issuer creates its own buckets.
	DB *bbolt.DB
	// Users and Keys are the account store and the key manager.
	Users *users.Store
	Keys  *keys.Manager
	// Logger receives the issuer's logs; default slog.Default().
	Logger *slog.Logger
	// Now and Rand may be replaced in tests; defaults time.Now and crypto/rand.
	Now  func() time.Time
	Rand io.Reader
	// Lifetimes bounds tokens and sessions; zero fields use DefaultLifetimes.
	Lifetimes Lifetimes
	// ValidEmailDomain, when set, is named in the Create Account page's
	// message for a foreign address (the rule itself is enforced by Users).
	ValidEmailDomain string
	// SignInURL is where the account pages (Settings, Organization) send a
	// browser without a session; %s is replaced by the page's path,
	// query-escaped. Default: HomeURL.
	SignInURL string
	// SignOutURL is where "Sign out of all sessions" sends the browser
	// afterwards, to end the application's session too. Default: HomeURL.
	SignOutURL string
	// TrustedProxies are the networks of reverse proxies whose
	// X-Forwarded-For is believed when throttling and logging client
	// addresses; empty: the connection's peer is the client.
	TrustedProxies []netip.Prefix
}

// Issuer is the built-in OpenID Provider. It is an http.Handler for the
// issuer's path (for example /oidc/...).
type Issuer struct {
	issuer         string
	path           string
	secure         bool
	homeURL        string
	db             *bbolt.DB
	accounts       accounts
	users          *users.Store
	signInURL      string
	signOutURL     string
	trustedProxies []netip.Prefix
	store          *storage
	provider       *zop.Provider
	handler        http.Handler
	discovery      []byte
	pages          *pages
	csrfKey        []byte
	// Failed sign-ins are throttled per account and, more leniently (many
	// people may share one address), per client address.
	accountThrottle *throttle
	addressThrottle *throttle
	emailDomain     string
	life            Lifetimes
	log             *slog.Logger
	now             func() time.Time
	rand            io.Reader
}

// New builds an Issuer.
func New(cfg Config) (*Issuer, error) {
	u, err := url.Parse(cfg.Issuer)
	if err != nil || !u.IsAbs() || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("op: issuer %q must be an absolute http(s) URL without query or fragment", cfg.Issuer)
	}
	if cfg.DB == nil || cfg.Users == nil || cfg.Keys == nil {
		return nil, errors.New("op: Config.DB, Config.Users and Config.Keys are required")
	}
	i := &Issuer{
		issuer:      strings.TrimSuffix(cfg.Issuer, "/"),
		path:        strings.TrimSuffix(u.Path, "/"),
		secure:      u.Scheme == "https",
		homeURL:     cfg.HomeURL,
		db:          cfg.DB,
		accounts:    cfg.Users,
		users:       cfg.Users,
		life:        withDefaults(cfg.Lifetimes),
		log:         cfg.Logger,
		now:         cfg.Now,
		rand:        cfg.Rand,
		emailDomain: cfg.ValidEmailDomain,
	}
	if i.log == nil {
		i.log = slog.Default()
	}
	if i.now == nil {
		i.now = time.Now
	}
	if i.rand == nil {
		i.rand = rand.Reader
	}
	i.accountThrottle = newThrottle(i.now, 5)
	i.addressThrottle = newThrottle(i.now, 20)
	if i.homeURL == "" {
		i.homeURL = u.Scheme + "://" + u.Host + "/"
	}
	i.signInURL, i.signOutURL, i.trustedProxies = cfg.SignInURL, cfg.SignOutURL, cfg.TrustedProxies
	if i.signInURL == "" {
		i.signInURL = i.homeURL
	}
	if i.signOutURL == "" {
		i.signOutURL = i.homeURL
	}
	err = i.db.Update(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bucketRefresh, bucketSessions} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("op: create buckets: %w", err)
	}
	cryptoKey, err := cfg.Keys.Secret("op.token-encryption", 32)
	if err != nil {
		return nil, fmt.Errorf("op: token encryption key: %w", err)
	}
	if i.csrfKey, err = cfg.Keys.Secret("op.csrf", 32); err != nil {
		return nil, fmt.Errorf("op: csrf key: %w", err)
	}
	clients := make(map[string]*client, len(cfg.Clients))
	for _, c := range cfg.Clients {
		if _, dup := clients[c.ID]; dup {
			return nil, fmt.Errorf("op: client %q registered twice", c.ID)
		}
		cl, err := newClient(c, i.loginURL, i.life.IDToken)
		if err != nil {
			return nil, err
		}
		clients[c.ID] = cl
	}
	i.store = &storage{
		db:         cfg.DB,
		accounts:   cfg.Users,
		keys:       cfg.Keys,
		clients:    clients,
		now:        i.now,
		random:     i.random,
		life:       i.life,
		log:        i.log,
		requests:   map[string]*authRequest{},
		codes:      map[string]string{},
		access:     map[string]*accessToken{},
		revoked:    map[string]time.Time{},
		maxPending: maxPendingRequests,
	}
	if err := i.sweepSessions(); err != nil {
		return nil, err
	}
	zcfg := &zop.Config{
		CryptoKey:                [32]byte(cryptoKey),
		DefaultLogoutRedirectURI: i.homeURL,
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    true,
		SupportedScopes:          []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopeOfflineAccess, ScopeRoles},
		SupportedClaims:          supportedClaims,
	}
	opts := []zop.Option{zop.WithCORSOptions(corsOptions())}
	if u.Scheme == "http" {
		opts = append(opts, zop.WithAllowInsecure())
	}
	i.provider, err = zop.NewProvider(zcfg, i.store, zop.StaticIssuer(i.issuer), opts...)
	if err != nil {
		return nil, fmt.Errorf("op: provider: %w", err)
	}
	if i.discovery, err = i.buildDiscovery(); err != nil {
		return nil, err
	}
	if i.pages, err = newPages(); err != nil {
		return nil, err
	}
	i.handler = i.routes()
	return i, nil
}

// corsOptions let browsers (SPAs with PKCE) call the token, userinfo,
// JWKS and discovery endpoints, but never with the issuer's cookies.
func corsOptions() *cors.Options {
	return &cors.Options{
		AllowOriginFunc:  func(string) bool { return true },
		AllowedMethods:   []string{http.MethodGet, http.MethodPost},
		AllowedHeaders:   []string{"Authorization", "Content-Type", "Accept"},
		AllowCredentials: false,
	}
}

// supportedClaims is what the issuer really emits (claims_supported).
var supportedClaims = []string{
	"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "azp", "amr", "at_hash", "c_hash",
	"name", "preferred_username", "email", "email_verified", "roles", "org",
}

func withDefaults(l Lifetimes) Lifetimes {
	d := DefaultLifetimes
	set := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&l.AuthRequest, d.AuthRequest)
	set(&l.Code, d.Code)
	set(&l.AccessToken, d.AccessToken)
	set(&l.IDToken, d.IDToken)
	set(&l.RefreshToken, d.RefreshToken)
	set(&l.Session, d.Session)
	return l
}

// URL returns the issuer identifier.
func (i *Issuer) URL() string { return i.issuer }

// ServeHTTP serves the issuer's endpoints and pages.
func (i *Issuer) ServeHTTP(w http.ResponseWriter, r *http.Request) { i.handler.ServeHTTP(w, r) }

// random returns n random bytes, base64url-encoded.
func (i *Issuer) random(n int) string {
	b := make([]byte, n)
	if _, err := io.ReadFull(i.rand, b); err != nil {
		// crypto/rand does not fail on supported platforms; a broken
		// injected reader is a programming error.
		panic(fmt.Sprintf("op: random source failed: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func (i *Issuer) loginURL(id string) string {
	return i.issuer + "/login?id=" + url.QueryEscape(id)
}

func (i *Issuer) callbackURL(id string) string {
	return i.issuer + "/authorize/callback?id=" + url.QueryEscape(id)
}

// buildDiscovery renders the discovery document once. zitadel's default
// lists flows latchkey does not offer (implicit, device); the document here
// states only what is true.
func (i *Issuer) buildDiscovery() ([]byte, error) {
	ctx := zop.ContextWithIssuer(context.Background(), i.issuer)
	d := zop.CreateDiscoveryConfig(ctx, i.provider, i.store)
	d.ResponseTypesSupported = []string{string(oidc.ResponseTypeCode)}
	d.ResponseModesSupported = []string{string(oidc.ResponseModeQuery)}
	d.GrantTypesSupported = []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
	d.DeviceAuthorizationEndpoint = ""
	d.CheckSessionIframe = ""
	d.CodeChallengeMethodsSupported = []oidc.CodeChallengeMethod{oidc.CodeChallengeMethodS256}
	d.RequestParameterSupported = false
	raw, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("op: discovery: %w", err)
	}
	return raw, nil
}

// routes assembles the issuer: its pages, guards around some of zitadel's
// endpoints, and zitadel's router for the rest.
func (i *Issuer) routes() http.Handler {
	r := mux.NewRouter()
	p := i.path
	protocol := http.StripPrefix(p, i.provider)
	noStore := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("Pragma", "no-cache")
			h.ServeHTTP(w, r)
		})
	}
	r.Handle(p+"/.well-known/openid-configuration", cors.New(*corsOptions()).Handler(http.HandlerFunc(i.serveDiscovery))).Methods(http.MethodGet, http.MethodHead, http.MethodOptions)
	r.Handle(p+"/oauth/token", noStore(basicChallenge(protocol)))
	r.Handle(p+"/oauth/introspect", noStore(basicChallenge(protocol)))
	r.Handle(p+"/revoke", noStore(basicChallenge(protocol)))
	r.Handle(p+"/userinfo", cors.New(*corsOptions()).Handler(noStore(http.HandlerFunc(i.serveUserinfo)))).Methods(http.MethodGet, http.MethodPost, http.MethodOptions)
	r.Handle(p+"/authorize/callback", noStore(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i.guardCallback(w, r, protocol)
	})))
	r.Handle(p+"/end_session", noStore(http.HandlerFunc(i.handleEndSession)))
	r.Handle(p+"/device_authorization", http.NotFoundHandler())
	r.Handle(p+"/authorize", boundedRequest(protocol))
	r.Handle(p+"/login", i.page(i.handleLogin)).Methods(http.MethodGet, http.MethodPost)
	r.Handle(p+"/signup", i.page(i.handleSignup)).Methods(http.MethodGet, http.MethodPost)
	r.Handle(p+"/settings", i.page(i.handleSettings)).Methods(http.MethodGet, http.MethodPost)
	r.Handle(p+"/admin", i.page(i.handleAdmin)).Methods(http.MethodGet, http.MethodPost)
	r.Handle(p+"/invite", i.page(i.handleInvite)).Methods(http.MethodGet, http.MethodPost)
	r.Handle(p+"/reset", i.page(i.handleReset)).Methods(http.MethodGet, http.MethodPost)
	r.Handle(p+"/static/style.css", http.HandlerFunc(ServeStylesheet)).Methods(http.MethodGet, http.MethodHead)
	r.PathPrefix(p + "/").Handler(protocol)
	return r
}

// Bounds of an authorization request: anonymous requests are kept in
// memory until they expire, so their size is bounded here and their number
// in CreateAuthRequest.
const (
	maxAuthorizeQuery = 8 << 10
	maxAuthorizeBody  = 16 << 10
)

// boundedRequest refuses oversized authorization requests before zitadel
// parses them.
func boundedRequest(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.URL.RawQuery) > maxAuthorizeQuery {
			http.Error(w, "authorization request too large", http.StatusRequestURITooLong)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxAuthorizeBody)
		h.ServeHTTP(w, r)
	})
}

func (i *Issuer) serveDiscovery(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(i.discovery)
}

// guardCallback lets zitadel answer the authorization request only in the
// browser that completed it: the request is bound to the issuer session
// that signed in, so a leaked request ID cannot be turned into a code.
func (i *Issuer) guardCallback(w http.ResponseWriter, r *http.Request, next http.Handler) {
	ar, err := i.store.authRequest(r.URL.Query().Get("id"))
	if err != nil {
		i.renderMessage(w, r, http.StatusBadRequest, "This sign-in has expired", "Go back to the application and sign in again.")
		return
	}
	s, _, err := i.currentSession(r)
	if !ar.done || err != nil || s.Hash != ar.SessionHash {
		i.renderMessage(w, r, http.StatusForbidden, "Sign-in not completed in this browser", "Go back to the application and sign in again.")
		return
	}
	next.ServeHTTP(w, r)
}
