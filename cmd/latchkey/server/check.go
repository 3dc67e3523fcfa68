package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/latchkey-dev/latchkey/rp"
)

// report prints one line per finding and remembers whether any failed.
type report struct {
	w      io.Writer
	failed bool
}

func (r *report) ok(format string, args ...any)   { r.line("ok", format, args...) }
func (r *report) info(format string, args ...any) { r.line("info", format, args...) }
func (r *report) warn(format string, args ...any) { r.line("warn", format, args...) }
func (r *report) fail(format string, args ...any) {
	r.failed = true
	r.line("FAIL", format, args...)
}

func (r *report) line(tag, format string, args ...any) {
	fmt.Fprintf(r.w, "%-6s %s\n", "["+tag+"]", fmt.Sprintf(format, args...))
}

// Check examines whether sign-in can work with a valid configuration and
// writes its findings to w, one line each ([ok], [info], [warn], [FAIL]).
// It reports false when something fails. It is `latchkey check`.
func Check(cfg Config, w io.Writer) bool {
	rep := &report{w: w}
	rep.ok("configuration is valid")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	quiet := slog.New(slog.DiscardHandler)
	var err error

	var target Target
	redirect := cfg.PublicURL + rp.PathCallback
	if cfg.OIDC.Enabled {
		rep.info("mode: OIDC, against %s", cfg.OIDC.DiscoveryURL)
		switch {
		case !cfg.OIDC.VerifySSL:
			rep.warn("TLS: certificate verification is OFF (OIDC_VERIFY_SSL=false): acceptable in test setups only; set oidc.caFile to trust a private CA instead")
		case strings.HasPrefix(cfg.OIDC.DiscoveryURL, "http://"):
			rep.info("TLS: none: the provider is reached over plain http (allowed for loopback addresses only)")
		case cfg.OIDC.CAFile != "":
			rep.ok("TLS: verified against the system CAs and %s", cfg.OIDC.CAFile)
		default:
			rep.ok("TLS: verified against the system CAs")
		}
		if target, err = OIDCTarget(cfg.OIDC, quiet); err != nil {
			rep.fail("TLS: %v", err)
			return false
		}
	} else {
		rep.info("mode: basic auth, with the built-in issuer at %s%s", cfg.PublicURL, IssuerPath)
		srv, err := New(ctx, cfg, Options{Logger: quiet, DBTimeout: 200 * time.Millisecond})
		switch {
		case errors.Is(err, ErrDataDirInUse):
			rep.info("the data directory is in use by a running latchkey; checking it over the network at %s", cfg.PublicURL)
			target = Target{DiscoveryURL: cfg.PublicURL + IssuerPath + rp.DiscoverySuffix, HTTPClient: &http.Client{Timeout: 30 * time.Second}}
		case err != nil:
			rep.fail("built-in issuer: %v", err)
			return false
		default:
			defer srv.Close()
			target = srv.Target()
			rep.info("the backend reaches the built-in issuer in-process (no DNS or TLS involved)")
		}
	}
	checkProvider(ctx, rep, target, redirect)
	if cfg.OIDC.Enabled {
		rep.info("register this redirect URI with the provider: %s", redirect)
		rep.info("and, for sign-out, this post-logout redirect URI: %s/", cfg.PublicURL)
	} else {
		rep.info("redirect URI %s is registered with the built-in issuer automatically", redirect)
	}
	if rep.failed {
		fmt.Fprintln(w, "sign-in cannot work until the failures above are fixed")
		return false
	}
	fmt.Fprintln(w, "sign-in should work")
	return true
}

// checkProvider examines discovery, keys and client authentication.
func checkProvider(ctx context.Context, rep *report, t Target, redirect string) {
	doc, err := rp.FetchDiscovery(ctx, t.HTTPClient, t.DiscoveryURL)
	if err != nil {
		rep.fail("discovery: %v", err)
		return
	}
	rep.ok("discovery document reachable at %s", t.DiscoveryURL)
	notes, err := doc.Check(t.DiscoveryURL)
	if err != nil {
		rep.fail("discovery document: %v", err)
	} else {
		rep.ok("discovery document valid: authorization, token, userinfo and JWKS endpoints present")
	}
	if doc.Issuer != "" {
		rep.ok("issuer: %s", doc.Issuer)
	}
	for _, n := range notes {
		rep.info("%s", n)
	}
	if algs := doc.IDTokenSigningAlgValuesSupported; len(algs) > 0 {
		rep.ok("ID token signing algorithms: %s", strings.Join(algs, ", "))
	} else {
		rep.info("ID token signing algorithms not listed; RS256 assumed")
	}
	if doc.EndSessionEndpoint != "" {
		rep.ok("sign-out: end_session_endpoint %s", doc.EndSessionEndpoint)
	} else {
		rep.info("sign-out: the provider has no end_session_endpoint; sign-out ends the backend session only")
	}
	checkKeys(ctx, rep, t.HTTPClient, doc.JWKSURI)
	if t.ClientID == "" {
		rep.info("client credentials not checked (the server holds the data directory)")
		return
	}
	checkClient(ctx, rep, t, doc, redirect)
}

func checkKeys(ctx context.Context, rep *report, client *http.Client, jwksURI string) {
	if jwksURI == "" {
		return
	}
	set, err := rp.FetchJWKS(ctx, client, jwksURI)
	if err != nil {
		rep.fail("JWKS: %v", err)
		return
	}
	var desc []string
	for _, k := range set.Keys {
		if !k.IsPublic() {
			rep.fail("JWKS: key %q is not a public key: the provider publishes private key material", k.KeyID)
		}
		alg := k.Algorithm
		if alg == "" {
			alg = "alg unspecified"
		}
		desc = append(desc, fmt.Sprintf("%s (%s)", k.KeyID, alg))
	}
	if len(set.Keys) == 0 {
		rep.fail("JWKS: %s holds no keys", jwksURI)
		return
	}
	rep.ok("JWKS: %d key(s): %s", len(set.Keys), strings.Join(desc, ", "))
}

// checkClient sends a deliberately invalid code to the token endpoint: a
// provider answers invalid_grant when the client authenticated, and
// invalid_client when it did not.
func checkClient(ctx context.Context, rep *report, t Target, doc *rp.Discovery, redirect string) {
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {"latchkey-check-deliberately-invalid-code"},
		"redirect_uri":  {redirect},
		"code_verifier": {strings.Repeat("v", 43)},
	}
	// The same method the relying party would use (doc.Check reported it
	// when there is none).
	method, _ := doc.TokenAuthMethod()
	basic := method != "client_secret_post"
	if !basic {
		form.Set("client_id", t.ClientID)
		form.Set("client_secret", t.ClientSecret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, doc.TokenEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		rep.fail("token endpoint: %v", err)
		return
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic {
		req.SetBasicAuth(url.QueryEscape(t.ClientID), url.QueryEscape(t.ClientSecret))
	}
	resp, err := t.HTTPClient.Do(req)
	if err != nil {
		rep.fail("token endpoint: cannot reach %s: %v", doc.TokenEndpoint, err)
		return
	}
	defer resp.Body.Close()
	var answer struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&answer)
	switch answer.Error {
	case "invalid_grant":
		rep.ok("client credentials accepted by the token endpoint (%s; a test code was refused with invalid_grant, as it should be)", method)
	case "invalid_client", "unauthorized_client":
		rep.fail("client credentials refused by the token endpoint (%s): %s — check clientId and clientSecret (use the secret's Value, not its ID; secrets expire)", method, answer.Error)
	default:
		rep.warn("token endpoint answered HTTP %d %q to a test code; could not tell whether the client credentials are accepted", resp.StatusCode, answer.Error)
	}
}
