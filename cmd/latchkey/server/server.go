// Package server assembles latchkey from its configuration: the bbolt
// database, the user store, the key manager, the built-in issuer under
// /oidc, the backend's relying party under /api/v1/auth, and the start page.
// The latchkey command and testenv both build their servers with it, so
// tests exercise exactly what `latchkey serve` runs.
package server

import (
	"context"
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
	s.users, err = users.New(s.db, users.Options{
		ValidEmailDomain: cfg.BasicAuth.ValidEmailDomain,
		Now:              opts.Now,
		Rand:             opts.Rand,
		Hash:             opts.Hash,
	})
	if err != nil {
		return err
	}
	sessionSecret := []byte(cfg.BasicAuth.JWTSecret)
	if len(sessionSecret) == 0 {
		// Generated once and kept, so a restart does not sign everybody out.
		if sessionSecret, err = s.keys.Secret("rp.session", 32); err != nil {
			return fmt.Errorf("server: session secret: %w", err)
		}
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
	s.rp, err = rp.New(ctx, rp.Config{
		Issuer:           s.issuer.URL(),
		ClientID:         BackendClientID,
		ClientSecret:     clientSecret,
		PublicURL:        cfg.PublicURL,
		SessionSecret:    sessionSecret,
		ValidEmailDomain: cfg.BasicAuth.ValidEmailDomain,
		HTTPClient:       &http.Client{Transport: transport, Timeout: 30 * time.Second},
		Logger:           s.log,
		Now:              opts.Now,
		Rand:             opts.Rand,
	})
	if err != nil {
		return err
	}
	r := mux.NewRouter()
	r.PathPrefix(IssuerPath + "/").Handler(s.issuer)
	s.rp.Register(r)
	r.Handle("/", s.rp.Optional(http.HandlerFunc(s.home))).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	s.handler = r
	return nil
}

// Handler serves the whole server.
func (s *Server) Handler() http.Handler { return s.handler }

// Users is the server's user store.
func (s *Server) Users() *users.Store { return s.users }

// RelyingParty is the backend's relying party; its middlewares protect
// backend handlers.
func (s *Server) RelyingParty() *rp.RelyingParty { return s.rp }

// IssuerURL is the built-in issuer's identifier.
func (s *Server) IssuerURL() string { return s.issuer.URL() }

// DBPath is the absolute path of the database file.
func (s *Server) DBPath() string { return s.dbPath }

// Close closes the database.
func (s *Server) Close() error {
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
