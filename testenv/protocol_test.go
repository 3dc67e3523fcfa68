package testenv_test

// Protocol tests of the built-in issuer, spoken over HTTP the way a relying
// party we did not write would speak it: discovery, JWKS, the authorization
// code flow with PKCE, the token, userinfo, revocation, introspection and
// end_session endpoints, and the issuer's single sign-on session.

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/latchkey-dev/latchkey/cmd/latchkey/server"
	"github.com/latchkey-dev/latchkey/testenv"
)

const (
	appID        = "app"
	appSecret    = "app-secret-0123456789"
	cliID        = "cli"
	otherID      = "other" // a second confidential client
	otherSecret  = "other-secret-0123456789"
	appRedirect  = "http://127.0.0.1:9/cb"  // nothing listens there: never requested
	appRedirect2 = "http://127.0.0.1:9/cb2" // a second registered redirect URI of "app"
	appLogout    = "http://127.0.0.1:9/bye"
	adaEmail     = "ada@example.com"
	adaName      = "Ada"
	adaPassword  = "correct horse battery"
)

// protocolClients registers the confidential client "app" and the public
// client "cli" (PKCE S256 required, no secret).
func protocolClients() testenv.Option {
	return testenv.WithClients(
		server.Client{
			ClientID:               appID,
			ClientSecret:           appSecret,
			RedirectURIs:           []string{appRedirect, appRedirect2},
			PostLogoutRedirectURIs: []string{appLogout},
		},
		server.Client{ClientID: cliID, RedirectURIs: []string{appRedirect}},
		server.Client{ClientID: otherID, ClientSecret: otherSecret, RedirectURIs: []string{"http://127.0.0.1:9/other"}},
	)
}

// discovery is the part of the discovery document the tests read.
type discovery struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	UserinfoEndpoint                  string   `json:"userinfo_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	RevocationEndpoint                string   `json:"revocation_endpoint"`
	IntrospectionEndpoint             string   `json:"introspection_endpoint"`
	EndSessionEndpoint                string   `json:"end_session_endpoint"`
	ScopesSupported                   []string `json:"scopes_supported"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported"`
	IDTokenSigningAlgValuesSupported  []string `json:"id_token_signing_alg_values_supported"`
	ClaimsSupported                   []string `json:"claims_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
}

// harness is a running latchkey with the protocol clients, its discovery
// document, and a browser signed in as Ada (the first account: admin).
type harness struct {
	t       *testing.T
	env     *testenv.Env
	d       discovery
	browser *http.Client
	back    *http.Client // back channel: no cookies, no redirects
}

// sub returns the harness for subtest t, so that its helpers fail t.
func (h *harness) sub(t *testing.T) *harness {
	c := *h
	c.t = t
	return &c
}

func newHarness(t *testing.T, opts ...testenv.Option) *harness {
	t.Helper()
	env := testenv.New(t, append([]testenv.Option{protocolClients()}, opts...)...)
	h := &harness{
		t:   t,
		env: env,
		back: &http.Client{
			Timeout:       30 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	h.d = h.discover()
	h.browser = env.SignUp(adaEmail, adaName, adaPassword)
	return h
}

func (h *harness) discover() discovery {
	h.t.Helper()
	r := h.send(http.MethodGet, h.env.IssuerURL()+"/.well-known/openid-configuration", nil, nil)
	if r.Status != http.StatusOK {
		h.t.Fatalf("discovery: status %d:\n%s", r.Status, r.Body)
	}
	var d discovery
	if err := json.Unmarshal(r.Body, &d); err != nil {
		h.t.Fatalf("discovery: decode: %v\n%s", err, r.Body)
	}
	for name, u := range map[string]string{
		"authorization_endpoint": d.AuthorizationEndpoint, "token_endpoint": d.TokenEndpoint,
		"userinfo_endpoint": d.UserinfoEndpoint, "jwks_uri": d.JWKSURI,
		"revocation_endpoint": d.RevocationEndpoint, "introspection_endpoint": d.IntrospectionEndpoint,
		"end_session_endpoint": d.EndSessionEndpoint,
	} {
		if !strings.HasPrefix(u, h.env.IssuerURL()+"/") {
			h.t.Fatalf("discovery: %s = %q, want a URL under the issuer %s", name, u, h.env.IssuerURL())
		}
	}
	return d
}

// rawResponse is a back-channel response.
type rawResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

// object decodes a JSON object body.
func (r *rawResponse) object(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response (status %d) is not a JSON object: %v\n%s", r.Status, err, r.Body)
	}
	return m
}

// send makes a back-channel request; a non-nil form is posted
// form-encoded, edit may add headers.
func (h *harness) send(method, target string, form url.Values, edit func(*http.Request)) *rawResponse {
	h.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, target, err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if edit != nil {
		edit(req)
	}
	resp, err := h.back.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("read %s: %v", target, err)
	}
	return &rawResponse{Status: resp.StatusCode, Header: resp.Header, Body: raw}
}

// clientAuth is how a client authenticates at the token, revocation and
// introspection endpoints.
type clientAuth struct {
	ID, Secret string
	Method     string // "basic" (client_secret_basic), "post" (client_secret_post) or "none"
}

var (
	appBasic = clientAuth{ID: appID, Secret: appSecret, Method: "basic"}
	appPost  = clientAuth{ID: appID, Secret: appSecret, Method: "post"}
	cliNone  = clientAuth{ID: cliID, Method: "none"}
	other    = clientAuth{ID: otherID, Secret: otherSecret, Method: "basic"}
)

// post sends form to endpoint with the client's authentication.
func (h *harness) post(endpoint string, form url.Values, a clientAuth) *rawResponse {
	h.t.Helper()
	form = maps.Clone(form)
	var edit func(*http.Request)
	switch a.Method {
	case "basic":
		edit = func(r *http.Request) {
			// RFC 6749 §2.3.1: form-encode, then HTTP Basic.
			r.SetBasicAuth(url.QueryEscape(a.ID), url.QueryEscape(a.Secret))
		}
	case "post":
		form.Set("client_id", a.ID)
		form.Set("client_secret", a.Secret)
	case "none":
		form.Set("client_id", a.ID)
	default:
		h.t.Fatalf("unknown client auth method %q", a.Method)
	}
	return h.send(http.MethodPost, endpoint, form, edit)
}

// flow is one authorization request: what is sent to /authorize and what
// the token request must repeat.
type flow struct {
	ClientID    string
	RedirectURI string
	Scope       string
	State       string
	Nonce       string
	Verifier    string     // PKCE code_verifier; its S256 challenge is sent unless NoPKCE
	NoPKCE      bool       // send no code_challenge
	Extra       url.Values // more /authorize parameters (prompt, max_age, …); they override
}

func newFlow(clientID string) *flow {
	return &flow{
		ClientID:    clientID,
		RedirectURI: appRedirect,
		Scope:       "openid profile email",
		State:       rand.Text(),
		Nonce:       rand.Text(),
		Verifier:    oauth2.GenerateVerifier(),
	}
}

func (f *flow) with(key, value string) *flow {
	if f.Extra == nil {
		f.Extra = url.Values{}
	}
	f.Extra.Set(key, value)
	return f
}

func (f *flow) query() url.Values {
	q := url.Values{
		"response_type": {"code"},
		"client_id":     {f.ClientID},
		"redirect_uri":  {f.RedirectURI},
		"scope":         {f.Scope},
		"state":         {f.State},
	}
	if f.Nonce != "" {
		q.Set("nonce", f.Nonce)
	}
	if !f.NoPKCE {
		q.Set("code_challenge", oauth2.S256ChallengeFromVerifier(f.Verifier))
		q.Set("code_challenge_method", "S256")
	}
	for k, v := range f.Extra {
		q[k] = slices.Clone(v)
	}
	return q
}

// authorize sends the browser c to the authorization endpoint; the
// response is the first one that leaves the server's origin, or a page.
func (h *harness) authorize(c *http.Client, f *flow) *testenv.Response {
	h.t.Helper()
	return h.env.Get(c, h.d.AuthorizationEndpoint+"?"+f.query().Encode())
}

// redirectParams asserts resp redirects to f's redirect_uri and returns the
// query of that redirect.
func (h *harness) redirectParams(resp *testenv.Response, f *flow) url.Values {
	h.t.Helper()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		h.t.Fatalf("authorize: got %d at %s (Location %q), want a redirect to %s:\n%s", resp.StatusCode, resp.URL, loc, f.RedirectURI, resp.Body)
	}
	u, err := url.Parse(loc)
	if err != nil {
		h.t.Fatalf("authorize: bad Location %q: %v", loc, err)
	}
	if base := u.Scheme + "://" + u.Host + u.Path; base != f.RedirectURI {
		h.t.Fatalf("authorize: redirected to %q, want the redirect_uri %s", loc, f.RedirectURI)
	}
	if u.Fragment != "" {
		h.t.Errorf("authorize: response in the fragment %q, want the query (response_mode=query)", u.Fragment)
	}
	return u.Query()
}

// code runs the authorization request in browser c and returns the code.
func (h *harness) code(c *http.Client, f *flow) string {
	h.t.Helper()
	p := h.redirectParams(h.authorize(c, f), f)
	if e := p.Get("error"); e != "" {
		h.t.Fatalf("authorize: error=%s (%s), want a code", e, p.Get("error_description"))
	}
	if got := p.Get("state"); got != f.State {
		h.t.Fatalf("authorize: state = %q, want %q", got, f.State)
	}
	code := p.Get("code")
	if code == "" {
		h.t.Fatalf("authorize: no code in %v", p)
	}
	return code
}

// authError runs the authorization request in browser c and expects an
// error redirect to the redirect_uri carrying the state; it returns the
// error code.
func (h *harness) authError(c *http.Client, f *flow) string {
	h.t.Helper()
	p := h.redirectParams(h.authorize(c, f), f)
	if p.Get("code") != "" {
		h.t.Fatalf("authorize: got a code, want an error (%v)", p)
	}
	if got := p.Get("state"); got != f.State {
		h.t.Errorf("authorize error: state = %q, want %q", got, f.State)
	}
	if p.Get("error") == "" {
		h.t.Fatalf("authorize: redirect without error or code: %v", p)
	}
	return p.Get("error")
}

// redeem exchanges code at the token endpoint, repeating f's redirect_uri
// and code_verifier.
func (h *harness) redeem(f *flow, code string, a clientAuth) *rawResponse {
	h.t.Helper()
	form := url.Values{
		"grant_type":   {"authorization_code"},
		"code":         {code},
		"redirect_uri": {f.RedirectURI},
	}
	if !f.NoPKCE {
		form.Set("code_verifier", f.Verifier)
	}
	return h.post(h.d.TokenEndpoint, form, a)
}

func (h *harness) refresh(refreshToken string, a clientAuth) *rawResponse {
	h.t.Helper()
	return h.post(h.d.TokenEndpoint, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}, a)
}

// tokenResponse is a successful token endpoint response.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	IDToken      string `json:"id_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int64  `json:"expires_in"`
	Scope        string `json:"scope"`
}

// tokens asserts a 200 token response and decodes it.
func (h *harness) tokens(r *rawResponse) tokenResponse {
	h.t.Helper()
	if r.Status != http.StatusOK {
		h.t.Fatalf("token endpoint: status %d, want 200:\n%s", r.Status, r.Body)
	}
	var tr tokenResponse
	if err := json.Unmarshal(r.Body, &tr); err != nil {
		h.t.Fatalf("token endpoint: decode: %v\n%s", err, r.Body)
	}
	if tr.AccessToken == "" || tr.IDToken == "" {
		h.t.Fatalf("token endpoint: access_token or id_token missing:\n%s", r.Body)
	}
	return tr
}

// signIn runs f in browser c and redeems the code as a.
func (h *harness) signIn(c *http.Client, f *flow, a clientAuth) tokenResponse {
	h.t.Helper()
	return h.tokens(h.redeem(f, h.code(c, f), a))
}

// expectOAuthError asserts an RFC 6749 §5.2 error response.
func expectOAuthError(t *testing.T, what string, r *rawResponse, status int, codes ...string) {
	t.Helper()
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	_ = json.Unmarshal(r.Body, &e)
	if r.Status != status || !slices.Contains(codes, e.Error) {
		t.Errorf("%s: got %d error=%q, want %d with error in %v:\n%s", what, r.Status, e.Error, status, codes, r.Body)
	}
}

// userinfo calls the userinfo endpoint with GET and a bearer token.
func (h *harness) userinfo(accessToken string) *rawResponse {
	h.t.Helper()
	return h.send(http.MethodGet, h.d.UserinfoEndpoint, nil, func(r *http.Request) {
		r.Header.Set("Authorization", "Bearer "+accessToken)
	})
}

// expectRejected asserts the userinfo endpoint refuses accessToken.
func (h *harness) expectRejected(what, accessToken string) {
	h.t.Helper()
	if r := h.userinfo(accessToken); r.Status == http.StatusOK {
		h.t.Errorf("%s: userinfo accepted the access token (200), want it rejected:\n%s", what, r.Body)
	} else if r.Status != http.StatusUnauthorized && r.Status != http.StatusForbidden {
		h.t.Errorf("%s: userinfo status %d, want 401:\n%s", what, r.Status, r.Body)
	}
}

// expectAccepted asserts the userinfo endpoint accepts accessToken.
func (h *harness) expectAccepted(what, accessToken string) map[string]any {
	h.t.Helper()
	r := h.userinfo(accessToken)
	if r.Status != http.StatusOK {
		h.t.Fatalf("%s: userinfo status %d, want 200:\n%s", what, r.Status, r.Body)
	}
	return r.object(h.t)
}

// jwtParts decodes a compact JWS's header and payload without verifying it.
func jwtParts(t *testing.T, raw string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want a compact JWS with 3: %q", len(parts), raw)
	}
	decode := func(name, s string) map[string]any {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("JWT %s: base64url: %v", name, err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("JWT %s: %v\n%s", name, err, b)
		}
		return m
	}
	return decode("header", parts[0]), decode("payload", parts[1])
}

// jwks fetches the key set as raw JSON objects.
func (h *harness) jwks() []map[string]any {
	h.t.Helper()
	r := h.send(http.MethodGet, h.d.JWKSURI, nil, nil)
	if r.Status != http.StatusOK {
		h.t.Fatalf("jwks: status %d:\n%s", r.Status, r.Body)
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(r.Body, &set); err != nil {
		h.t.Fatalf("jwks: decode: %v\n%s", err, r.Body)
	}
	if len(set.Keys) == 0 {
		h.t.Fatalf("jwks: no keys:\n%s", r.Body)
	}
	return set.Keys
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func strs(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, _ := e.(string)
			out = append(out, s)
		}
		return out
	}
	return nil
}

func num(m map[string]any, k string) (int64, bool) {
	f, ok := m[k].(float64)
	return int64(f), ok
}

// --- 1. discovery ------------------------------------------------------------

func TestProtocolDiscovery(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, protocolClients())
	h := &harness{t: t, env: env, back: &http.Client{Timeout: 30 * time.Second}}
	d := h.discover()

	if d.Issuer != env.IssuerURL() {
		t.Errorf("issuer = %q, want %q", d.Issuer, env.IssuerURL())
	}
	contains := []struct {
		field string
		got   []string
		want  []string
	}{
		{"scopes_supported", d.ScopesSupported, []string{"openid", "profile", "email", "offline_access"}},
		{"claims_supported", d.ClaimsSupported, []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "azp", "email", "email_verified", "name", "roles"}},
		{"token_endpoint_auth_methods_supported", d.TokenEndpointAuthMethodsSupported, []string{"client_secret_basic", "client_secret_post", "none"}},
	}
	for _, c := range contains {
		for _, w := range c.want {
			if !slices.Contains(c.got, w) {
				t.Errorf("%s = %v, missing %q", c.field, c.got, w)
			}
		}
	}
	exact := []struct {
		field string
		got   []string
		want  []string
	}{
		{"response_types_supported", d.ResponseTypesSupported, []string{"code"}},
		{"code_challenge_methods_supported", d.CodeChallengeMethodsSupported, []string{"S256"}},
		{"id_token_signing_alg_values_supported", d.IDTokenSigningAlgValuesSupported, []string{"RS256"}},
	}
	for _, c := range exact {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("%s = %v, want exactly %v", c.field, c.got, c.want)
		}
	}
	if len(d.GrantTypesSupported) == 0 {
		t.Errorf("grant_types_supported is empty")
	}
	for _, g := range d.GrantTypesSupported {
		if g == "implicit" {
			t.Errorf("grant_types_supported = %v lists implicit, which is not offered", d.GrantTypesSupported)
		}
	}
	for _, g := range []string{"authorization_code", "refresh_token"} {
		if !slices.Contains(d.GrantTypesSupported, g) {
			t.Errorf("grant_types_supported = %v, missing %q", d.GrantTypesSupported, g)
		}
	}
}

// --- 2. JWKS -------------------------------------------------------------------

func TestProtocolJWKSHasOnlyPublicSigningKeys(t *testing.T) {
	t.Parallel()
	env := testenv.New(t, protocolClients())
	h := &harness{t: t, env: env, back: &http.Client{Timeout: 30 * time.Second}}
	h.d = h.discover()
	for i, k := range h.jwks() {
		if str(k, "kid") == "" {
			t.Errorf("key %d: no kid: %v", i, k)
		}
		for field, want := range map[string]string{"use": "sig", "alg": "RS256", "kty": "RSA"} {
			if got := str(k, field); got != want {
				t.Errorf("key %d (kid %q): %s = %q, want %q", i, str(k, "kid"), field, got, want)
			}
		}
		if str(k, "n") == "" || str(k, "e") == "" {
			t.Errorf("key %d (kid %q): RSA public members n/e missing: %v", i, str(k, "kid"), k)
		}
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
			if _, ok := k[private]; ok {
				t.Errorf("key %d (kid %q): private member %q published in the JWKS", i, str(k, "kid"), private)
			}
		}
	}
}

// --- 3. full code flow -----------------------------------------------------------

func TestProtocolCodeFlowConfidentialClient(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	me, status := h.env.Me(h.browser)
	if status != http.StatusOK {
		t.Fatalf("me: status %d", status)
	}

	f := newFlow(appID)
	code := h.code(h.browser, f)
	r := h.redeem(f, code, appBasic)
	tr := h.tokens(r)

	if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("token response Cache-Control = %q, want no-store (RFC 6749 §5.1)", cc)
	}
	if !strings.EqualFold(tr.TokenType, "Bearer") {
		t.Errorf("token_type = %q, want Bearer", tr.TokenType)
	}
	if tr.ExpiresIn <= 0 {
		t.Errorf("expires_in = %d, want > 0", tr.ExpiresIn)
	}
	if tr.RefreshToken != "" {
		t.Errorf("refresh_token issued without offline_access")
	}

	header, claims := jwtParts(t, tr.IDToken)
	if alg := str(header, "alg"); alg != "RS256" {
		t.Errorf("ID token alg = %q, want RS256", alg)
	}
	kid := str(header, "kid")
	var signer map[string]any
	for _, k := range h.jwks() {
		if kid != "" && str(k, "kid") == kid {
			signer = k
		}
	}
	if signer == nil {
		t.Fatalf("ID token kid %q is not in the JWKS", kid)
	}
	// The signature itself, with the published key.
	raw, _ := json.Marshal(signer)
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(raw); err != nil {
		t.Fatalf("JWKS key %q: %v", kid, err)
	}
	jws, err := jose.ParseSignedCompact(tr.IDToken, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("parse ID token: %v", err)
	}
	if _, err := jws.Verify(jwk.Key); err != nil {
		t.Errorf("ID token signature does not verify with JWKS key %q: %v", kid, err)
	}

	checks := []struct {
		claim string
		ok    bool
		got   any
		want  string
	}{
		{"iss", str(claims, "iss") == h.env.IssuerURL(), claims["iss"], h.env.IssuerURL()},
		{"sub", str(claims, "sub") != "" && str(claims, "sub") == me.Subject, claims["sub"], "the subject the backend sees: " + me.Subject},
		{"aud", slices.Contains(strs(claims["aud"]), appID), claims["aud"], "contains " + appID},
		{"azp", str(claims, "azp") == appID, claims["azp"], appID},
		{"nonce", str(claims, "nonce") == f.Nonce, claims["nonce"], f.Nonce},
		{"email", str(claims, "email") == adaEmail, claims["email"], adaEmail},
		{"name", str(claims, "name") == adaName, claims["name"], adaName},
		{"roles", slices.Equal(strs(claims["roles"]), []string{"admin"}), claims["roles"], `["admin"] (the first account)`},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("ID token %s = %v, want %s", c.claim, c.got, c.want)
		}
	}
	// latchkey sends no mail: it says so (email_verified is in
	// claims_supported), and never claims the address is verified.
	if v, present := claims["email_verified"]; !present || v != false {
		t.Errorf("ID token email_verified = %v (present: %t), want false", v, present)
	}
	exp, okExp := num(claims, "exp")
	iat, okIat := num(claims, "iat")
	authTime, okAuth := num(claims, "auth_time")
	if !okExp || !okIat || !okAuth {
		t.Fatalf("ID token exp/iat/auth_time missing or not numbers: %v", claims)
	}
	if exp <= iat {
		t.Errorf("ID token exp %d <= iat %d", exp, iat)
	}
	if exp <= time.Now().Unix() {
		t.Errorf("ID token already expired: exp %d", exp)
	}
	if authTime > iat {
		t.Errorf("ID token auth_time %d is after iat %d", authTime, iat)
	}
}

// --- 4. userinfo ---------------------------------------------------------------

func TestProtocolUserinfo(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	tr := h.signIn(h.browser, newFlow(appID), appBasic)
	_, idClaims := jwtParts(t, tr.IDToken)

	cases := []struct {
		name string
		send func(h *harness) *rawResponse
	}{
		{"GET with bearer header", func(h *harness) *rawResponse { return h.userinfo(tr.AccessToken) }},
		{"POST with access_token form parameter", func(h *harness) *rawResponse {
			return h.send(http.MethodPost, h.d.UserinfoEndpoint, url.Values{"access_token": {tr.AccessToken}}, nil)
		}},
		{"POST with bearer header", func(h *harness) *rawResponse {
			return h.send(http.MethodPost, h.d.UserinfoEndpoint, url.Values{}, func(r *http.Request) {
				r.Header.Set("Authorization", "Bearer "+tr.AccessToken)
			})
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := c.send(h.sub(t))
			if r.Status != http.StatusOK {
				t.Fatalf("status %d, want 200:\n%s", r.Status, r.Body)
			}
			info := r.object(t)
			if got := str(info, "sub"); got == "" || got != str(idClaims, "sub") {
				t.Errorf("sub = %q, want the ID token's %q", got, str(idClaims, "sub"))
			}
			if got := str(info, "email"); got != adaEmail {
				t.Errorf("email = %q, want %q", got, adaEmail)
			}
			if got := str(info, "name"); got != adaName {
				t.Errorf("name = %q, want %q", got, adaName)
			}
			if got := strs(info["roles"]); !slices.Equal(got, []string{"admin"}) {
				t.Errorf("roles = %v, want [admin]", got)
			}
		})
	}
	t.Run("garbage token", func(t *testing.T) {
		h := h.sub(t)
		for _, tok := range []string{"garbage", tr.AccessToken + "x", ""} {
			if r := h.userinfo(tok); r.Status != http.StatusUnauthorized {
				t.Errorf("userinfo with token %q: status %d, want 401:\n%s", tok, r.Status, r.Body)
			}
		}
	})
}

// --- 5. code reuse -------------------------------------------------------------

func TestProtocolCodeReuseRevokesTokens(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for _, scope := range []string{"openid profile email", "openid profile email offline_access"} {
		t.Run(scope, func(t *testing.T) {
			h := h.sub(t)
			f := newFlow(appID)
			f.Scope = scope
			code := h.code(h.browser, f)
			first := h.tokens(h.redeem(f, code, appBasic))
			h.expectAccepted("before the replay", first.AccessToken)
			offline := strings.Contains(scope, "offline_access")
			if offline && first.RefreshToken == "" {
				t.Fatalf("no refresh_token for offline_access")
			}

			expectOAuthError(t, "second redemption of the code", h.redeem(f, code, appBasic), http.StatusBadRequest, "invalid_grant")
			// RFC 6749 §4.1.2: tokens issued from the code should be revoked.
			h.expectRejected("access token of the replayed code", first.AccessToken)
			if offline {
				expectOAuthError(t, "refresh token of the replayed code", h.refresh(first.RefreshToken, appBasic), http.StatusBadRequest, "invalid_grant")
			}
		})
	}
}

// --- 6. PKCE ----------------------------------------------------------------------

func TestProtocolPKCE(t *testing.T) {
	t.Parallel()
	h := newHarness(t)

	t.Run("wrong code_verifier", func(t *testing.T) {
		h := h.sub(t)
		f := newFlow(appID)
		code := h.code(h.browser, f)
		f.Verifier = oauth2.GenerateVerifier()
		expectOAuthError(t, "token with the wrong verifier", h.redeem(f, code, appBasic), http.StatusBadRequest, "invalid_grant")
	})
	t.Run("missing code_verifier", func(t *testing.T) {
		h := h.sub(t)
		f := newFlow(appID)
		code := h.code(h.browser, f)
		r := h.post(h.d.TokenEndpoint, url.Values{
			"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {f.RedirectURI},
		}, appBasic)
		expectOAuthError(t, "token without the verifier", r, http.StatusBadRequest, "invalid_grant", "invalid_request")
	})
	t.Run("public client without code_verifier", func(t *testing.T) {
		h := h.sub(t)
		f := newFlow(cliID)
		code := h.code(h.browser, f)
		r := h.post(h.d.TokenEndpoint, url.Values{
			"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {f.RedirectURI},
		}, cliNone)
		expectOAuthError(t, "public client token without the verifier", r, http.StatusBadRequest, "invalid_grant", "invalid_request")
	})

	authorizeErrors := []struct {
		name string
		flow func() *flow
	}{
		{"code_challenge_method=plain", func() *flow {
			f := newFlow(appID)
			f.NoPKCE = true
			f.with("code_challenge", f.Verifier).with("code_challenge_method", "plain")
			return f
		}},
		{"code_challenge without method (plain by default)", func() *flow {
			f := newFlow(appID)
			f.NoPKCE = true
			f.with("code_challenge", f.Verifier)
			return f
		}},
		{"public client without code_challenge", func() *flow {
			f := newFlow(cliID)
			f.NoPKCE = true
			return f
		}},
	}
	for _, c := range authorizeErrors {
		t.Run(c.name, func(t *testing.T) {
			h := h.sub(t)
			if got := h.authError(h.browser, c.flow()); got != "invalid_request" {
				t.Errorf("authorize error = %q, want invalid_request", got)
			}
		})
	}

	t.Run("public client with S256 needs no secret", func(t *testing.T) {
		h := h.sub(t)
		f := newFlow(cliID)
		tr := h.signIn(h.browser, f, cliNone)
		_, claims := jwtParts(t, tr.IDToken)
		if str(claims, "azp") != cliID || !slices.Contains(strs(claims["aud"]), cliID) {
			t.Errorf("public client ID token azp=%v aud=%v, want %s", claims["azp"], claims["aud"], cliID)
		}
		h.expectAccepted("public client access token", tr.AccessToken)
	})
}

// --- 7. redirect_uri -----------------------------------------------------------

func TestProtocolRedirectURI(t *testing.T) {
	t.Parallel()
	h := newHarness(t)

	t.Run("unregistered at authorize is an error page", func(t *testing.T) {
		h := h.sub(t)
		for _, c := range []struct{ client, uri string }{
			{appID, "http://127.0.0.1:9/evil"},
			{appID, "https://attacker.example/cb"},
			{appID, appRedirect + "/../evil"},
			{cliID, "http://127.0.0.1:9/evil"},
			{"no-such-client", appRedirect},
		} {
			f := newFlow(c.client)
			f.RedirectURI = c.uri
			resp := h.authorize(h.browser, f)
			if loc := resp.Header.Get("Location"); loc != "" || resp.StatusCode != http.StatusBadRequest {
				t.Errorf("client %s, redirect_uri %s: got %d Location %q, want a 400 error page and no redirect", c.client, c.uri, resp.StatusCode, loc)
			}
			if resp.URL.Host != strings.TrimPrefix(h.env.URL, "http://") {
				t.Errorf("client %s, redirect_uri %s: browser left the server for %s", c.client, c.uri, resp.URL)
			}
		}
	})
	t.Run("token redirect_uri must match the authorize one", func(t *testing.T) {
		h := h.sub(t)
		f := newFlow(appID)
		code := h.code(h.browser, f)
		f.RedirectURI = appRedirect2 // registered, but not the one authorized
		expectOAuthError(t, "token with another redirect_uri", h.redeem(f, code, appBasic), http.StatusBadRequest, "invalid_grant")
	})
	t.Run("token without redirect_uri", func(t *testing.T) {
		h := h.sub(t)
		f := newFlow(appID)
		code := h.code(h.browser, f)
		r := h.post(h.d.TokenEndpoint, url.Values{
			"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {f.Verifier},
		}, appBasic)
		expectOAuthError(t, "token without redirect_uri", r, http.StatusBadRequest, "invalid_grant", "invalid_request")
	})
	t.Run("second registered redirect_uri works", func(t *testing.T) {
		h := h.sub(t)
		f := newFlow(appID)
		f.RedirectURI = appRedirect2
		h.signIn(h.browser, f, appBasic)
	})
}

// --- 8. client authentication -----------------------------------------------------

func TestProtocolClientAuthentication(t *testing.T) {
	t.Parallel()
	h := newHarness(t)

	for _, a := range []clientAuth{appBasic, appPost} {
		t.Run("client_secret_"+a.Method+" works", func(t *testing.T) {
			h := h.sub(t)
			tr := h.signIn(h.browser, newFlow(appID), a)
			h.expectAccepted("token from client_secret_"+a.Method, tr.AccessToken)
		})
	}
	failures := []struct {
		name string
		auth clientAuth
	}{
		{"wrong secret, basic", clientAuth{ID: appID, Secret: appSecret + "x", Method: "basic"}},
		{"wrong secret, post", clientAuth{ID: appID, Secret: "wrong", Method: "post"}},
		{"empty secret, basic", clientAuth{ID: appID, Secret: "", Method: "basic"}},
		{"no secret at all", clientAuth{ID: appID, Method: "none"}},
		{"another client's credentials", clientAuth{ID: cliID, Secret: appSecret, Method: "basic"}},
	}
	for _, c := range failures {
		t.Run(c.name, func(t *testing.T) {
			h := h.sub(t)
			f := newFlow(appID)
			code := h.code(h.browser, f)
			r := h.redeem(f, code, c.auth)
			if r.Status == http.StatusOK {
				t.Fatalf("token issued with %+v:\n%s", c.auth, r.Body)
			}
			if c.auth.Method == "none" || c.auth.ID != appID {
				// Not a plain "wrong secret": any 4xx refusal will do.
				if r.Status < 400 || r.Status > 499 {
					t.Errorf("status %d, want a 4xx refusal:\n%s", r.Status, r.Body)
				}
				return
			}
			expectOAuthError(t, "token with a wrong client_secret", r, http.StatusUnauthorized, "invalid_client")
		})
	}
}

// RFC 6749 §5.2: a client that authenticated with the Authorization header
// and failed gets 401 with a WWW-Authenticate header of the scheme it used.
func TestProtocolClientAuthenticationChallenge(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	f := newFlow(appID)
	r := h.redeem(f, h.code(h.browser, f), clientAuth{ID: appID, Secret: "wrong", Method: "basic"})
	expectOAuthError(t, "token with a wrong client_secret", r, http.StatusUnauthorized, "invalid_client")
	if got := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(strings.ToLower(got), "basic") {
		t.Errorf("WWW-Authenticate = %q, want a Basic challenge (RFC 6749 §5.2)", got)
	}
}

// --- 9. refresh with rotation ---------------------------------------------------

func TestProtocolRefreshRotation(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	f := newFlow(appID)
	f.Scope = "openid offline_access email"
	first := h.signIn(h.browser, f, appBasic)
	if first.RefreshToken == "" {
		t.Fatalf("no refresh_token for scope %q", f.Scope)
	}

	r := h.refresh(first.RefreshToken, appBasic)
	second := h.tokens(r)
	if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("refresh response Cache-Control = %q, want no-store", cc)
	}
	if second.RefreshToken == "" || second.RefreshToken == first.RefreshToken {
		t.Fatalf("refresh did not rotate the refresh token (old %q, new %q)", first.RefreshToken, second.RefreshToken)
	}
	if second.AccessToken == first.AccessToken {
		t.Errorf("refresh returned the same access token")
	}
	info := h.expectAccepted("refreshed access token", second.AccessToken)
	if str(info, "email") != adaEmail {
		t.Errorf("refreshed userinfo email = %v, want %s", info["email"], adaEmail)
	}
	_, c1 := jwtParts(t, first.IDToken)
	_, c2 := jwtParts(t, second.IDToken)
	if str(c1, "sub") != str(c2, "sub") || !slices.Equal(strs(c1["aud"]), strs(c2["aud"])) {
		t.Errorf("refreshed ID token sub/aud %v/%v differ from the original %v/%v", c2["sub"], c2["aud"], c1["sub"], c1["aud"])
	}
	a1, _ := num(c1, "auth_time")
	a2, _ := num(c2, "auth_time")
	if a1 == 0 || a1 != a2 {
		t.Errorf("refreshed ID token auth_time %v, want the original authentication's %v (OIDC Core §12.2)", c2["auth_time"], c1["auth_time"])
	}

	// Replay of the rotated-out token: refused, and the family is revoked.
	expectOAuthError(t, "old refresh token again", h.refresh(first.RefreshToken, appBasic), http.StatusBadRequest, "invalid_grant")
	expectOAuthError(t, "new refresh token after the replay", h.refresh(second.RefreshToken, appBasic), http.StatusBadRequest, "invalid_grant")
	h.expectRejected("access token of the revoked family", second.AccessToken)

	t.Run("refresh token is bound to its client", func(t *testing.T) {
		h := h.sub(t)
		f := newFlow(appID)
		f.Scope = "openid offline_access"
		tr := h.signIn(h.browser, f, appBasic)
		r := h.refresh(tr.RefreshToken, cliNone)
		if r.Status == http.StatusOK {
			t.Fatalf("client %s refreshed a token of %s:\n%s", cliID, appID, r.Body)
		}
		// The rightful client still can.
		h.tokens(h.refresh(tr.RefreshToken, appBasic))
	})
}

// --- 10. prompt=none ---------------------------------------------------------------

func TestProtocolPromptNone(t *testing.T) {
	t.Parallel()
	h := newHarness(t)

	t.Run("with a session", func(t *testing.T) {
		h := h.sub(t)
		f := newFlow(appID).with("prompt", "none")
		code := h.code(h.browser, f)
		h.tokens(h.redeem(f, code, appBasic))
	})
	t.Run("without a session", func(t *testing.T) {
		h := h.sub(t)
		f := newFlow(appID).with("prompt", "none")
		if got := h.authError(h.env.Client(), f); got != "login_required" {
			t.Errorf("prompt=none without a session: error = %q, want login_required", got)
		}
	})
}

// --- 11. single sign-on -------------------------------------------------------------

func TestProtocolSSO(t *testing.T) {
	t.Parallel()
	h := newHarness(t)

	t.Run("second authorization needs no password", func(t *testing.T) {
		h := h.sub(t)
		for range 2 {
			h.signIn(h.browser, newFlow(appID), appBasic)
		}
		h.signIn(h.browser, newFlow(cliID), cliNone) // and another client too
	})
	t.Run("max_age larger than the session's age", func(t *testing.T) {
		h := h.sub(t)
		h.code(h.browser, newFlow(appID).with("max_age", "3600"))
	})
	for _, c := range []struct{ key, value string }{{"prompt", "login"}, {"max_age", "0"}} {
		t.Run(c.key+"="+c.value+" asks for the password", func(t *testing.T) {
			h := h.sub(t)
			f := newFlow(appID).with(c.key, c.value)
			page := h.authorize(h.browser, f)
			if page.StatusCode != http.StatusOK || !strings.Contains(page.Body, `name="password"`) {
				t.Fatalf("%s=%s: got %d at %s (Location %q), want the sign-in form:\n%s", c.key, c.value, page.StatusCode, page.URL, page.Header.Get("Location"), page.Body)
			}
			// Signing in again answers the request.
			resp := h.env.Submit(h.browser, page, url.Values{"email": {adaEmail}, "password": {adaPassword}})
			p := h.redirectParams(resp, f)
			if p.Get("code") == "" || p.Get("state") != f.State {
				t.Fatalf("after re-authentication: %v, want a code and the state", p)
			}
			h.tokens(h.redeem(f, p.Get("code"), appBasic))
		})
	}
}

// prompt=login (and max_age=0, its equivalent: OpenID Connect Core §3.1.2.1)
// means "authenticate again" whatever the session's age: it must not depend
// on time having passed since the sign-in. A clock that does not move (as a
// coarse, stepped-back or injected clock may) makes that visible.
func TestProtocolReauthenticationWithFrozenClock(t *testing.T) {
	t.Parallel()
	frozen := time.Now()
	h := newHarness(t, testenv.WithClock(func() time.Time { return frozen }))
	h.code(h.browser, newFlow(appID)) // the session works under this clock
	for _, c := range []struct{ key, value string }{{"prompt", "login"}, {"max_age", "0"}} {
		t.Run(c.key+"="+c.value, func(t *testing.T) {
			h := h.sub(t)
			page := h.authorize(h.browser, newFlow(appID).with(c.key, c.value))
			if page.StatusCode != http.StatusOK || !strings.Contains(page.Body, `name="password"`) {
				t.Errorf("%s=%s right after sign-in: got %d at %s (Location %q), want the sign-in form",
					c.key, c.value, page.StatusCode, page.URL, page.Header.Get("Location"))
			}
		})
	}
}

// --- 12. revocation ---------------------------------------------------------------

func TestProtocolRevocation(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	revoke := func(t *testing.T, h *harness, token, hint string) {
		t.Helper()
		form := url.Values{"token": {token}}
		if hint != "" {
			form.Set("token_type_hint", hint)
		}
		if r := h.post(h.d.RevocationEndpoint, form, appBasic); r.Status != http.StatusOK {
			t.Fatalf("revoke (%s): status %d, want 200:\n%s", hint, r.Status, r.Body)
		}
	}

	t.Run("access token", func(t *testing.T) {
		h := h.sub(t)
		tr := h.signIn(h.browser, newFlow(appID), appBasic)
		h.expectAccepted("before revocation", tr.AccessToken)
		revoke(t, h, tr.AccessToken, "access_token")
		r := h.userinfo(tr.AccessToken)
		if r.Status != http.StatusUnauthorized {
			t.Errorf("userinfo with a revoked access token: status %d, want 401 (RFC 6750 §3.1 invalid_token):\n%s", r.Status, r.Body)
		}
	})
	t.Run("access token without hint", func(t *testing.T) {
		h := h.sub(t)
		tr := h.signIn(h.browser, newFlow(appID), appBasic)
		revoke(t, h, tr.AccessToken, "")
		h.expectRejected("after revocation without hint", tr.AccessToken)
	})
	for _, hint := range []string{"refresh_token", ""} {
		t.Run("refresh token hint="+hint, func(t *testing.T) {
			h := h.sub(t)
			f := newFlow(appID)
			f.Scope = "openid offline_access"
			tr := h.signIn(h.browser, f, appBasic)
			revoke(t, h, tr.RefreshToken, hint)
			expectOAuthError(t, "refresh with a revoked refresh token", h.refresh(tr.RefreshToken, appBasic), http.StatusBadRequest, "invalid_grant")
			// RFC 7009 §2.1: access tokens of the same grant go with it.
			h.expectRejected("access token of a revoked refresh token", tr.AccessToken)
		})
	}
	t.Run("unknown token is not an error", func(t *testing.T) {
		h := h.sub(t)
		revoke(t, h, "no-such-token", "")
	})
	t.Run("another client cannot revoke", func(t *testing.T) {
		h := h.sub(t)
		f := newFlow(appID)
		f.Scope = "openid offline_access"
		tr := h.signIn(h.browser, f, appBasic)
		for _, a := range []clientAuth{cliNone, other} {
			for _, tok := range []string{tr.AccessToken, tr.RefreshToken} {
				// Any answer will do, as long as the tokens survive.
				h.post(h.d.RevocationEndpoint, url.Values{"token": {tok}}, a)
			}
		}
		h.expectAccepted("access token after other clients' revocation attempts", tr.AccessToken)
		h.tokens(h.refresh(tr.RefreshToken, appBasic))
	})
}

// --- 13. introspection ------------------------------------------------------------

func TestProtocolIntrospection(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	tr := h.signIn(h.browser, newFlow(appID), appBasic)
	_, idClaims := jwtParts(t, tr.IDToken)

	introspect := func(t *testing.T, token string) map[string]any {
		t.Helper()
		r := h.sub(t).post(h.d.IntrospectionEndpoint, url.Values{"token": {token}}, appBasic)
		if r.Status != http.StatusOK {
			t.Fatalf("introspect: status %d, want 200:\n%s", r.Status, r.Body)
		}
		return r.object(t)
	}
	t.Run("valid access token", func(t *testing.T) {
		m := introspect(t, tr.AccessToken)
		if m["active"] != true {
			t.Fatalf("active = %v, want true: %v", m["active"], m)
		}
		if got := str(m, "sub"); got == "" || got != str(idClaims, "sub") {
			t.Errorf("sub = %q, want %q", got, str(idClaims, "sub"))
		}
		if got := str(m, "client_id"); got != appID {
			t.Errorf("client_id = %q, want %q", got, appID)
		}
		if scopes := strings.Fields(str(m, "scope")); !slices.Contains(scopes, "openid") || !slices.Contains(scopes, "email") {
			t.Errorf("scope = %q, want the granted scopes (openid profile email)", str(m, "scope"))
		}
	})
	t.Run("garbage token", func(t *testing.T) {
		m := introspect(t, "garbage")
		if m["active"] != false {
			t.Errorf("active = %v, want false: %v", m["active"], m)
		}
		if len(m) != 1 {
			t.Errorf("inactive token response has more than active: %v", m)
		}
	})
	t.Run("another client's token", func(t *testing.T) {
		r := h.sub(t).post(h.d.IntrospectionEndpoint, url.Values{"token": {tr.AccessToken}}, other)
		if r.Status != http.StatusOK {
			t.Fatalf("introspect by %s: status %d, want 200:\n%s", otherID, r.Status, r.Body)
		}
		if m := r.object(t); m["active"] != false {
			t.Errorf("client %s introspected a token of %s: %v, want active false", otherID, appID, m)
		}
	})
	t.Run("unauthenticated caller", func(t *testing.T) {
		h := h.sub(t)
		r := h.post(h.d.IntrospectionEndpoint, url.Values{"token": {tr.AccessToken}}, clientAuth{ID: appID, Secret: "wrong", Method: "basic"})
		if r.Status == http.StatusOK && strings.Contains(string(r.Body), `"active":true`) {
			t.Errorf("introspection with a wrong secret revealed the token:\n%s", r.Body)
		}
	})
}

// --- 14. end_session -----------------------------------------------------------------

func TestProtocolEndSession(t *testing.T) {
	t.Parallel()
	h := newHarness(t)

	t.Run("registered post_logout_redirect_uri", func(t *testing.T) {
		h := h.sub(t)
		h.code(h.browser, newFlow(appID).with("prompt", "none")) // the session works
		q := url.Values{"client_id": {appID}, "post_logout_redirect_uri": {appLogout}, "state": {"bye-state"}}
		resp := h.env.Get(h.browser, h.d.EndSessionEndpoint+"?"+q.Encode())
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther || loc == nil ||
			loc.Scheme+"://"+loc.Host+loc.Path != appLogout {
			t.Fatalf("end_session: got %d Location %q, want a redirect to %s:\n%s", resp.StatusCode, resp.Header.Get("Location"), appLogout, resp.Body)
		}
		if got := loc.Query().Get("state"); got != "bye-state" {
			t.Errorf("end_session redirect state = %q, want bye-state", got)
		}
		f := newFlow(appID).with("prompt", "none")
		if got := h.authError(h.browser, f); got != "login_required" {
			t.Errorf("prompt=none after end_session: error = %q, want login_required", got)
		}
	})
	t.Run("unregistered post_logout_redirect_uri", func(t *testing.T) {
		h := h.sub(t)
		browser := h.env.Login(adaEmail, adaPassword)
		for _, evil := range []string{"http://127.0.0.1:9/evil", "https://attacker.example/", appRedirect} {
			q := url.Values{"client_id": {appID}, "post_logout_redirect_uri": {evil}}
			resp := h.env.Get(browser, h.d.EndSessionEndpoint+"?"+q.Encode())
			loc := resp.Header.Get("Location")
			if strings.HasPrefix(loc, evil) || resp.URL.Host != strings.TrimPrefix(h.env.URL, "http://") {
				t.Errorf("end_session redirected to the unregistered %s (Location %q, final URL %s)", evil, loc, resp.URL)
			}
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("end_session with unregistered %s: status %d, want 400:\n%s", evil, resp.StatusCode, resp.Body)
			}
		}
	})
}

// --- 15. callback binding --------------------------------------------------------------

func TestProtocolCallbackBoundToBrowser(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	callbackPath := strings.TrimPrefix(h.env.IssuerURL(), h.env.URL) + "/authorize/callback"

	// The session browser, stopped on its way to the callback.
	stopping := &http.Client{
		Jar:     h.browser.Jar,
		Timeout: 30 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Path == callbackPath || req.URL.Host != strings.TrimPrefix(h.env.URL, "http://") {
				return http.ErrUseLastResponse
			}
			if len(via) >= 10 {
				return fmt.Errorf("stopped after 10 redirects")
			}
			return nil
		},
	}
	f := newFlow(appID)
	resp := h.authorize(stopping, f)
	callback := resp.Header.Get("Location")
	if cu, err := url.Parse(callback); err != nil || cu.Path != callbackPath || cu.Query().Get("id") == "" {
		t.Fatalf("authorize did not lead to %s?id=…: got %d Location %q at %s:\n%s", callbackPath, resp.StatusCode, callback, resp.URL, resp.Body)
	}
	if !strings.HasPrefix(callback, "http") {
		callback = h.env.URL + callback
	}

	other := h.env.SignUp("bob@example.com", "Bob", "another long password")
	for _, c := range []struct {
		name    string
		browser *http.Client
	}{
		{"a browser without a session", h.env.Client()},
		{"another user's browser", other},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := h.sub(t)
			r := h.env.Get(c.browser, callback)
			if loc := r.Header.Get("Location"); strings.Contains(loc, "code=") {
				t.Fatalf("callback replayed in %s produced a code: %s", c.name, loc)
			}
			if r.StatusCode != http.StatusForbidden {
				t.Errorf("callback replayed in %s: status %d, want 403:\n%s", c.name, r.StatusCode, r.Body)
			}
		})
	}
	// The browser that signed in still gets its code: the refusals above were
	// about the browser, not an expired request.
	p := h.redirectParams(h.env.Get(h.browser, callback), f)
	if p.Get("code") == "" || p.Get("state") != f.State {
		t.Fatalf("callback in the browser that signed in: %v, want a code and the state", p)
	}
	h.tokens(h.redeem(f, p.Get("code"), appBasic))
}
