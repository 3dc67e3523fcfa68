// Package server assembles latchkey from its configuration: the bbolt
// database, the user store, the key manager, the built-in issuer under
// /oidc, the backend's relying party under /api/v1/auth, and the start page.
// The latchkey command and testenv both build their servers with it, so
// tests exercise exactly what `latchkey serve` runs.
package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/gorilla/mux"
	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/latchkey-dev/latchkey/keys"
	"github.com/latchkey-dev/latchkey/op"
	"github.com/latchkey-dev/latchkey/rp"
	"github.com/latchkey-dev/latchkey/users"
)

// DBFile is the name of the bbolt database inside the data directory.
const DBFile = "latchkey.db"

// IssuerPath is where the built-in issuer is mounted.
const IssuerPath = "/oidc"

// ErrDataDirInUse is returned when another process holds the database.
var ErrDataDirInUse = errors.New("server: data directory in use by another latchkey process")

// Options are the parts of a Server that tests replace.
type Options struct {
	Logger    *slog.Logger
	Now       func() time.Time
	Rand      io.Reader
	Hash      users.HashParams // zero: users.DefaultHashParams
	Lifetimes op.Lifetimes     // zero fields: op.DefaultLifetimes
	// DBTimeout is how long to wait for the database lock; default 1s.
	DBTimeout time.Duration
}

// Server is a configured latchkey: issuer, relying party and start page.
type Server struct {
	cfg     Config
	db      *bbolt.DB
	dbPath  string
	users   *users.Store
	keys    *keys.Manager
	issuer  *op.Issuer
	rp      *rp.RelyingParty
	handler http.Handler
	log     *slog.Logger
	target  Target
}

// Target is the identity provider the backend signs in against and how it
// reaches it: what `latchkey check` examines.
type Target struct {
	DiscoveryURL string
	ClientID     string
	ClientSecret string
	HTTPClient   *http.Client
}

// OIDCTarget is the external provider configured for OIDC mode.
func OIDCTarget(o OIDC, log *slog.Logger) (Target, error) {
	client, err := ProviderHTTPClient(o, log)
	if err != nil {
		return Target{}, err
	}
	return Target{DiscoveryURL: o.DiscoveryURL, ClientID: o.ClientID, ClientSecret: o.ClientSecret, HTTPClient: client}, nil
}

// OpenDB opens (creating if needed) the database in dataDir: the directory
// with mode 0700, the file with mode 0600. When another process holds it,
// the error wraps ErrDataDirInUse.
func OpenDB(dataDir string, timeout time.Duration) (*bbolt.DB, string, error) {
	if timeout <= 0 {
		timeout = time.Second
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, "", fmt.Errorf("server: create data directory %s: %w", dataDir, err)
	}
	path := filepath.Join(dataDir, DBFile)
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: timeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, path, fmt.Errorf("%w: %s is locked (bbolt allows one process per file); stop the other process or use another latchkey.dataDir", ErrDataDirInUse, path)
	}
	if err != nil {
		return nil, path, fmt.Errorf("server: open database %s: %w", path, err)
	}
	return db, path, nil
}

// New opens the data directory and assembles the server. The caller must
// Close it.
func New(ctx context.Context, cfg Config, opts Options) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: opts.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	var err error
	s.db, s.dbPath, err = OpenDB(cfg.DataDir, opts.DBTimeout)
	if err != nil {
		return nil, err
	}
	if err := s.assemble(ctx, opts); err != nil {
		_ = s.db.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) assemble(ctx context.Context, opts Options) error {
	cfg := s.cfg
	var err error
	if s.keys, err = keys.New(s.db, keys.Options{Rand: opts.Rand, Now: opts.Now}); err != nil {
		return err
	}
	sessionSecret := []byte(cfg.BasicAuth.JWTSecret)
	if len(sessionSecret) == 0 {
		// Generated once and kept, so a restart does not sign everybody out.
		if sessionSecret, err = s.keys.Secret("rp.session", 32); err != nil {
			return fmt.Errorf("server: session secret: %w", err)
		}
	}
	rpCfg := rp.Config{
		PublicURL:        cfg.PublicURL,
		SessionSecret:    sessionSecret,
		ValidEmailDomain: cfg.BasicAuth.ValidEmailDomain,
		Logger:           s.log,
		Now:              opts.Now,
		Rand:             opts.Rand,
	}
	r := mux.NewRouter()
	if cfg.OIDC.Enabled {
		client, err := ProviderHTTPClient(cfg.OIDC, s.log)
		if err != nil {
			return err
		}
		rpCfg.DiscoveryURL = cfg.OIDC.DiscoveryURL
		rpCfg.ClientID = cfg.OIDC.ClientID
		rpCfg.ClientSecret = cfg.OIDC.ClientSecret
		rpCfg.HTTPClient = client
		rpCfg.RetryDiscovery = true
		rpCfg.AllowedTenants = cfg.OIDC.AllowedTenants
	} else if err := s.assembleIssuer(opts, &rpCfg, r); err != nil {
		return err
	}
	s.target = Target{DiscoveryURL: rpCfg.DiscoveryURL, ClientID: rpCfg.ClientID, ClientSecret: rpCfg.ClientSecret, HTTPClient: rpCfg.HTTPClient}
	if s.target.DiscoveryURL == "" {
		s.target.DiscoveryURL = rpCfg.Issuer + rp.DiscoverySuffix
	}
	if s.rp, err = rp.New(ctx, rpCfg); err != nil {
		return err
	}
	s.rp.Register(r)
	r.Handle("/", s.rp.Optional(http.HandlerFunc(s.home))).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/static/style.css", op.ServeStylesheet).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	s.handler = limitBodies(r)
	return nil
}

// maxBodyBytes bounds every request body: latchkey's forms and token
// requests are small, and nothing it serves accepts uploads.
const maxBodyBytes = 64 << 10

// limitBodies caps request bodies before any handler reads them.
func limitBodies(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > maxBodyBytes {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		h.ServeHTTP(w, r)
	})
}

// assembleIssuer builds the user store and the built-in issuer, mounts the
// issuer under /oidc and points the relying party at it.
func (s *Server) assembleIssuer(opts Options, rpCfg *rp.Config, r *mux.Router) error {
	cfg := s.cfg
	var err error
	s.users, err = users.New(s.db, users.Options{
		ValidEmailDomain: cfg.BasicAuth.ValidEmailDomain,
		SignupPolicy:     users.SignupPolicy(cfg.Signup),
		Now:              opts.Now,
		Rand:             opts.Rand,
		Hash:             opts.Hash,
	})
	if err != nil {
		return err
	}
	backendSecret, err := s.keys.Secret("op.backend-client", 32)
	if err != nil {
		return fmt.Errorf("server: backend client secret: %w", err)
	}
	clientSecret := base64.RawURLEncoding.EncodeToString(backendSecret)
	clients := []op.Client{{
		ID:                     BackendClientID,
		Secret:                 clientSecret,
		RedirectURIs:           []string{cfg.PublicURL + rp.PathCallback},
		PostLogoutRedirectURIs: []string{cfg.PublicURL + "/"},
	}}
	for _, c := range cfg.Clients {
		clients = append(clients, op.Client{
			ID:                     c.ClientID,
			Secret:                 c.ClientSecret,
			RedirectURIs:           c.RedirectURIs,
			PostLogoutRedirectURIs: c.PostLogoutRedirectURIs,
		})
	}
	proxies, err := ParseProxies(cfg.TrustedProxies)
	if err != nil {
		return fmt.Errorf("server: latchkey.trustedProxies: %w", err)
	}
	s.issuer, err = op.New(op.Config{
		Issuer:           cfg.PublicURL + IssuerPath,
		HomeURL:          cfg.PublicURL + "/",
		Clients:          clients,
		DB:               s.db,
		Users:            s.users,
		Keys:             s.keys,
		Logger:           s.log,
		Now:              opts.Now,
		Rand:             opts.Rand,
		Lifetimes:        opts.Lifetimes,
		ValidEmailDomain: cfg.BasicAuth.ValidEmailDomain,
		SignInURL:        cfg.PublicURL + rp.PathLogin + "?redirect=%s",
		SignOutURL:       cfg.PublicURL + rp.PathLogout,
		TrustedProxies:   proxies,
	})
	if err != nil {
		return err
	}
	// The relying party reaches the built-in issuer in-process: a pod that
	// cannot reach its own public hostname still works.
	pub, err := url.Parse(cfg.PublicURL)
	if err != nil {
		return fmt.Errorf("server: public URL: %w", err)
	}
	transport := &rp.HandlerTransport{Origin: pub.Scheme + "://" + pub.Host, Handler: s.issuer}
	rpCfg.Issuer = s.issuer.URL()
	// The built-in issuer checks validEmailDomain at sign-up and invitation;
	// its addresses are the ones people signed in with.
	rpCfg.TrustEmailDomain = true
	rpCfg.Scopes = []string{"openid", "profile", "email", op.ScopeRoles}
	rpCfg.ClientID = BackendClientID
	rpCfg.ClientSecret = clientSecret
	rpCfg.HTTPClient = &http.Client{Transport: transport, Timeout: 30 * time.Second}
	r.PathPrefix(IssuerPath + "/").Handler(s.issuer)
	return nil
}

// ProviderHTTPClient is the HTTP client for calls to an external identity
// provider: the system's CAs plus oidc.caFile, or, with verifySsl: false,
// no TLS verification at all (and a loud warning).
func ProviderHTTPClient(o OIDC, log *slog.Logger) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("server: config.authentication.oidc.caFile: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("server: config.authentication.oidc.caFile %s holds no PEM certificate", o.CAFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	if !o.VerifySSL {
		tr.TLSClientConfig.InsecureSkipVerify = true //nolint:gosec // explicitly configured for test setups
		if log != nil {
			log.Warn("!!! OIDC_VERIFY_SSL=false: TLS certificates of the identity provider are NOT verified; anyone on the network path can impersonate it. Use this only in test setups; set config.authentication.oidc.caFile to trust a private CA instead !!!")
		}
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, nil
}

// Target is the provider the backend signs in against (for the built-in
// issuer: reached in-process, with the backend's own client).
func (s *Server) Target() Target { return s.target }

// Handler serves the whole server.
func (s *Server) Handler() http.Handler { return s.handler }

// Users is the server's user store (nil in OIDC mode).
func (s *Server) Users() *users.Store { return s.users }

// RelyingParty is the backend's relying party; its middlewares protect
// backend handlers.
func (s *Server) RelyingParty() *rp.RelyingParty { return s.rp }

// IssuerURL is the identifier of the issuer the backend trusts: the
// built-in one, or the external provider once discovered.
func (s *Server) IssuerURL() string {
	if s.issuer != nil {
		return s.issuer.URL()
	}
	return s.rp.Issuer()
}

// BuiltIn reports whether the built-in issuer runs (basic-auth mode).
func (s *Server) BuiltIn() bool { return s.issuer != nil }

// DBPath is the absolute path of the database file.
func (s *Server) DBPath() string { return s.dbPath }

// Close stops background work and closes the database.
func (s *Server) Close() error {
	if s.rp != nil {
		s.rp.Close()
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("server: close database: %w", err)
	}
	return nil
}

// Serve answers HTTP on l until ctx is cancelled, then shuts down
// gracefully, letting requests in flight finish for up to ten seconds.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("server: serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("server: shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("server: serve: %w", err)
	}
	return nil
}
