package testenv

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/latchkey-dev/latchkey/rp"
)

// Entra is a fake Microsoft Entra ID (v2.0 endpoints) on a loopback
// httptest server, for testing a backend's sign-in against "Entra-like"
// behaviour offline: per-tenant and multi-tenant ({tenantid}) discovery,
// tid/oid/preferred_username claims, an optional email claim, app roles,
// groups and the groups overage, key rollover, skewed clocks, v1.0 tokens
// and deliberately broken tokens.
//
// It signs users in without a page: each authorization takes the next
// queued user (QueueUser), or the default user (SetUser).
type Entra struct {
	// URL stands for https://login.microsoftonline.com.
	URL string
	// TenantID is the fake tenant's GUID.
	TenantID string

	t  testing.TB
	ts *httptest.Server

	mu          sync.Mutex
	keys        []*entraKey // the first one signs
	clients     map[string]EntraClient
	user        EntraUser
	queue       []EntraUser
	codes       map[string]*entraCode
	tokens      map[string]entraAccess
	skew        time.Duration
	v1          bool
	signing     EntraSigning
	claimsHook  func(map[string]any)
	authMethods []string
	logouts     int
	down        bool
}

// EntraUser is a person in the fake tenant.
type EntraUser struct {
	ObjectID            string // oid; generated when empty
	TenantID            string // tid; the Entra's TenantID when empty
	PreferredUsername   string // the UPN, e.g. ada@contoso.onmicrosoft.com
	Email               string // optional claim; empty = not sent (as Entra does by default)
	EmailDomainVerified *bool  // xms_edov, sent when not nil
	Name                string
	Roles               []string // app roles
	Groups              []string
	GroupsOverage       bool // send _claim_names/_claim_sources instead of groups
}

// EntraClient is an app registration.
type EntraClient struct {
	ID                     string
	Secret                 string
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
}

// EntraSigning chooses how the fake signs ID tokens, to test that a relying
// party refuses what it must.
type EntraSigning int

// Signing modes.
const (
	SignRS256        EntraSigning = iota // normal: RS256 with the active key's kid
	SignNoKid                            // RS256 without a kid header
	SignNone                             // alg "none", no signature
	SignHS256Secret                      // HS256 with the client secret as key
	SignUnknownKey                       // RS256 with a key that is not in the JWKS
	SignBadSignature                     // RS256 with a corrupted signature
)

// entraAccess is what an access token of the fake stands for.
type entraAccess struct {
	user EntraUser
	sub  string
}

type entraKey struct {
	id  string
	key *rsa.PrivateKey
}

type entraCode struct {
	clientID, redirectURI, nonce, challenge, tenant string
	user                                            EntraUser
	used                                            bool
}

// EntraOption configures NewEntra.
type EntraOption func(*Entra)

// WithEntraAuthMethods sets the token_endpoint_auth_methods_supported the
// fake announces and accepts (default client_secret_post,
// private_key_jwt, client_secret_basic, as Entra ID does).
func WithEntraAuthMethods(methods ...string) EntraOption {
	return func(e *Entra) { e.authMethods = methods }
}

// NewEntra starts a fake Entra ID that stops when the test ends.
func NewEntra(t testing.TB, opts ...EntraOption) *Entra {
	t.Helper()
	e := &Entra{
		t:           t,
		TenantID:    newGUID(),
		clients:     map[string]EntraClient{},
		codes:       map[string]*entraCode{},
		tokens:      map[string]entraAccess{},
		authMethods: []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
	}
	e.user = EntraUser{PreferredUsername: "ada@contoso.onmicrosoft.com", Name: "Ada Lovelace"}
	for _, o := range opts {
		o(e)
	}
	e.RotateKey(false)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", e.discovery)
	mux.HandleFunc("GET /{tenant}/oauth2/v2.0/authorize", e.authorize)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", e.token)
	mux.HandleFunc("GET /{tenant}/discovery/v2.0/keys", e.jwks)
	mux.HandleFunc("GET /{tenant}/oauth2/v2.0/logout", e.logout)
	mux.HandleFunc("GET /oidc/userinfo", e.userinfo)
	e.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		down := e.down
		e.mu.Unlock()
		if down {
			http.Error(w, "upstream connect error or disconnect/reset before headers", http.StatusBadGateway)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	e.URL = e.ts.URL
	t.Cleanup(e.ts.Close)
	return e
}

// AddClient registers an app registration (for example with the redirect
// URL of an Env started after the fake).
func (e *Entra) AddClient(c EntraClient) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.clients[c.ID] = c
}

// DiscoveryURL is the v2.0 discovery URL for tenant: the tenant's GUID, a
// domain, "common" or "organizations"; "" means the fake's own tenant.
func (e *Entra) DiscoveryURL(tenant string) string {
	if tenant == "" {
		tenant = e.TenantID
	}
	return e.URL + "/" + tenant + "/v2.0/.well-known/openid-configuration"
}

// Issuer is the v2.0 issuer of tenant tid.
func (e *Entra) Issuer(tid string) string { return e.URL + "/" + tid + "/v2.0" }

// SetDown makes every endpoint answer 502, as an unreachable provider
// behind a proxy does.
func (e *Entra) SetDown(down bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.down = down
}

// SetUser sets the user signed in when no user is queued.
func (e *Entra) SetUser(u EntraUser) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.user = u
}

// QueueUser makes u the user of the next authorization.
func (e *Entra) QueueUser(u EntraUser) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.queue = append(e.queue, u)
}

// RotateKey creates a new signing key (announced first in the JWKS); with
// keepOld the previous keys stay in the JWKS, otherwise they are removed.
func (e *Entra) RotateKey(keepOld bool) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		e.t.Fatalf("testenv: entra key: %v", err)
	}
	sum := sha256.Sum256(key.N.Bytes())
	k := &entraKey{id: base64.RawURLEncoding.EncodeToString(sum[:12]), key: key}
	e.mu.Lock()
	defer e.mu.Unlock()
	if keepOld {
		e.keys = append([]*entraKey{k}, e.keys...)
	} else {
		e.keys = []*entraKey{k}
	}
}

// SetClockSkew makes the fake's clock run d ahead (negative: behind) of
// real time in the tokens it issues.
func (e *Entra) SetClockSkew(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.skew = d
}

// SetV1Tokens makes the fake issue v1.0 tokens (iss https://sts.windows.net/<tid>/).
func (e *Entra) SetV1Tokens(on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.v1 = on
}

// SetSigning chooses how ID tokens are signed.
func (e *Entra) SetSigning(s EntraSigning) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.signing = s
}

// SetClaimsHook lets a test change the claims of every ID token before it
// is signed (nil removes the hook).
func (e *Entra) SetClaimsHook(f func(claims map[string]any)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.claimsHook = f
}

// LogoutRequests counts the sign-outs the logout endpoint received.
func (e *Entra) LogoutRequests() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.logouts
}

func (e *Entra) discovery(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	issTenant := tenant
	switch {
	case tenant == "common" || tenant == "organizations":
		issTenant = "{tenantid}"
	case !rp.IsTenantID(tenant):
		issTenant = e.TenantID // a domain name resolves to the tenant's GUID
	}
	base := e.URL + "/" + tenant
	e.mu.Lock()
	methods := slices.Clone(e.authMethods)
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                e.URL + "/" + issTenant + "/v2.0",
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"jwks_uri":                              base + "/discovery/v2.0/keys",
		"userinfo_endpoint":                     e.URL + "/oidc/userinfo",
		"end_session_endpoint":                  base + "/oauth2/v2.0/logout",
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"token_endpoint_auth_methods_supported": methods,
		"claims_supported":                      []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"},
		"tenant_region_scope":                   "EU",
		"cloud_instance_name":                   "microsoftonline.com",
	})
}

func (e *Entra) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	e.mu.Lock()
	client, ok := e.clients[q.Get("client_id")]
	e.mu.Unlock()
	if !ok {
		http.Error(w, "AADSTS700016: Application with identifier '"+q.Get("client_id")+"' was not found in the directory.", http.StatusBadRequest)
		return
	}
	redirect := q.Get("redirect_uri")
	if !slices.Contains(client.RedirectURIs, redirect) {
		http.Error(w, "AADSTS50011: The redirect URI '"+redirect+"' specified in the request does not match the redirect URIs configured for the application.", http.StatusBadRequest)
		return
	}
	fail := func(code, desc string) {
		u, _ := url.Parse(redirect)
		v := u.Query()
		v.Set("error", code)
		v.Set("error_description", desc)
		v.Set("state", q.Get("state"))
		u.RawQuery = v.Encode()
		http.Redirect(w, r, u.String(), http.StatusFound)
	}
	if q.Get("response_type") != "code" {
		fail("unsupported_response_type", "AADSTS700054: response_type is not enabled for the application.")
		return
	}
	if q.Get("code_challenge") != "" && q.Get("code_challenge_method") != "S256" {
		fail("invalid_request", "AADSTS501491: Invalid code_challenge_method.")
		return
	}
	e.mu.Lock()
	user := e.user
	if len(e.queue) > 0 {
		user, e.queue = e.queue[0], e.queue[1:]
	}
	code := rand.Text()
	e.codes[code] = &entraCode{clientID: client.ID, redirectURI: redirect, nonce: q.Get("nonce"), challenge: q.Get("code_challenge"), tenant: r.PathValue("tenant"), user: user}
	e.mu.Unlock()
	u, _ := url.Parse(redirect)
	v := u.Query()
	v.Set("code", code)
	v.Set("state", q.Get("state"))
	u.RawQuery = v.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func tokenError(w http.ResponseWriter, status int, code, desc string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="entra"`)
	}
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func (e *Entra) token(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	methods := slices.Clone(e.authMethods)
	e.mu.Unlock()
	if err := r.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request", "AADSTS900144: malformed body")
		return
	}
	id, secret, basic := r.BasicAuth()
	switch {
	case basic && !slices.Contains(methods, "client_secret_basic"):
		tokenError(w, http.StatusUnauthorized, "invalid_client", "AADSTS7000218: client_secret_basic is not allowed")
		return
	case !basic && r.PostForm.Get("client_secret") != "" && !slices.Contains(methods, "client_secret_post"):
		tokenError(w, http.StatusUnauthorized, "invalid_client", "AADSTS7000218: client_secret_post is not allowed")
		return
	case !basic:
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	e.mu.Lock()
	client, ok := e.clients[id]
	e.mu.Unlock()
	if !ok || client.Secret == "" || subtle.ConstantTimeCompare([]byte(secret), []byte(client.Secret)) != 1 {
		tokenError(w, http.StatusUnauthorized, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
		return
	}
	if r.PostForm.Get("grant_type") != "authorization_code" {
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "AADSTS70003: unsupported grant type")
		return
	}
	e.mu.Lock()
	c, ok := e.codes[r.PostForm.Get("code")]
	valid := ok && !c.used && c.clientID == client.ID
	if ok {
		c.used = true
	}
	e.mu.Unlock()
	if !valid {
		tokenError(w, http.StatusBadRequest, "invalid_grant", "AADSTS70008: The provided authorization code or refresh token has expired or was already used.")
		return
	}
	if r.PostForm.Get("redirect_uri") != c.redirectURI {
		tokenError(w, http.StatusBadRequest, "invalid_grant", "AADSTS50148: The redirect_uri does not match.")
		return
	}
	if c.challenge != "" {
		if oauth2.S256ChallengeFromVerifier(r.PostForm.Get("code_verifier")) != c.challenge {
			tokenError(w, http.StatusBadRequest, "invalid_grant", "AADSTS501481: The Code_Verifier does not match the code_challenge supplied in the authorization request.")
			return
		}
	}
	idToken := e.idToken(client, c)
	access := rand.Text()
	e.mu.Lock()
	_, sub := entraIDs(c.user, client.ID)
	e.tokens[access] = entraAccess{user: c.user, sub: sub}
	e.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{
		"token_type": "Bearer", "scope": "openid profile email", "expires_in": 3600,
		"access_token": access, "id_token": idToken,
	})
}

func (e *Entra) idToken(client EntraClient, c *entraCode) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	u := c.user
	tid := u.TenantID
	if tid == "" {
		tid = e.TenantID
	}
	oid, sub := entraIDs(u, client.ID)
	now := time.Now().Add(e.skew)
	claims := map[string]any{
		"aud": client.ID, "iss": e.URL + "/" + tid + "/v2.0",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"sub": sub, "oid": oid, "tid": tid,
		"preferred_username": u.PreferredUsername, "name": u.Name, "ver": "2.0",
	}
	if c.nonce != "" {
		claims["nonce"] = c.nonce
	}
	if e.v1 {
		claims["iss"], claims["ver"] = "https://sts.windows.net/"+tid+"/", "1.0"
	}
	if u.Email != "" {
		claims["email"] = u.Email
	}
	if u.EmailDomainVerified != nil {
		claims["xms_edov"] = *u.EmailDomainVerified
	}
	if len(u.Roles) > 0 {
		claims["roles"] = u.Roles
	}
	if u.GroupsOverage {
		claims["_claim_names"] = map[string]string{"groups": "src1"}
		claims["_claim_sources"] = map[string]any{"src1": map[string]string{"endpoint": "https://graph.microsoft.com/v1.0/users/" + oid + "/getMemberObjects"}}
	} else if len(u.Groups) > 0 {
		claims["groups"] = u.Groups
	}
	if e.claimsHook != nil {
		e.claimsHook(claims)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		e.t.Errorf("testenv: entra claims: %v", err)
		return ""
	}
	return e.signLocked(payload, client.Secret)
}

// entraIDs returns a user's object ID (generated from the UPN when unset)
// and the pairwise subject Entra ID gives it for one application.
func entraIDs(u EntraUser, clientID string) (oid, sub string) {
	oid = u.ObjectID
	if oid == "" {
		sum := sha256.Sum256([]byte(u.PreferredUsername))
		oid = guidFrom(sum[:16])
	}
	subSum := sha256.Sum256([]byte(oid + "|" + clientID))
	return oid, base64.RawURLEncoding.EncodeToString(subSum[:])
}

func (e *Entra) signLocked(payload []byte, clientSecret string) string {
	enc := base64.RawURLEncoding.EncodeToString
	switch e.signing {
	case SignNone:
		return enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc(payload) + "."
	case SignHS256Secret:
		return e.sign(jose.SigningKey{Algorithm: jose.HS256, Key: []byte(clientSecret)}, "", payload)
	case SignUnknownKey:
		other, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			e.t.Fatalf("testenv: entra key: %v", err)
		}
		return e.sign(jose.SigningKey{Algorithm: jose.RS256, Key: other}, "not-in-the-jwks", payload)
	}
	k := e.keys[0]
	kid := k.id
	if e.signing == SignNoKid {
		kid = ""
	}
	tok := e.sign(jose.SigningKey{Algorithm: jose.RS256, Key: k.key}, kid, payload)
	if e.signing == SignBadSignature {
		parts := strings.Split(tok, ".")
		sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
		sig[0] ^= 0xff
		tok = parts[0] + "." + parts[1] + "." + enc(sig)
	}
	return tok
}

func (e *Entra) sign(key jose.SigningKey, kid string, payload []byte) string {
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	s, err := jose.NewSigner(key, opts)
	if err != nil {
		e.t.Fatalf("testenv: entra signer: %v", err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		e.t.Fatalf("testenv: entra sign: %v", err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		e.t.Fatalf("testenv: entra serialize: %v", err)
	}
	return out
}

func (e *Entra) jwks(w http.ResponseWriter, _ *http.Request) {
	e.mu.Lock()
	set := jose.JSONWebKeySet{}
	for _, k := range e.keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.key.PublicKey, KeyID: k.id, Use: "sig"})
	}
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, set)
}

func (e *Entra) logout(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	e.mu.Lock()
	e.logouts++
	client, ok := e.clients[q.Get("client_id")]
	e.mu.Unlock()
	to := q.Get("post_logout_redirect_uri")
	if to == "" {
		_, _ = w.Write([]byte("You signed out of your account."))
		return
	}
	// Like Entra ID: only a URI registered for the application.
	if !ok || !slices.Contains(client.PostLogoutRedirectURIs, to) {
		http.Error(w, "AADSTS50011: The post logout redirect URI '"+to+"' is not registered for the application.", http.StatusBadRequest)
		return
	}
	http.Redirect(w, r, to, http.StatusFound)
}

func (e *Entra) userinfo(w http.ResponseWriter, r *http.Request) {
	token := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	e.mu.Lock()
	a, ok := e.tokens[token]
	e.mu.Unlock()
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		http.Error(w, "invalid token", http.StatusUnauthorized)
		return
	}
	// Like Microsoft Graph's OIDC userinfo: sub, name and, when known, email.
	info := map[string]string{"sub": a.sub, "name": a.user.Name}
	if a.user.Email != "" {
		info["email"] = a.user.Email
	}
	writeJSON(w, http.StatusOK, info)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func newGUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return guidFrom(b)
}

func guidFrom(b []byte) string {
	h := hex.EncodeToString(b[:16])
	return fmt.Sprintf("%s-%s-%s-%s-%s", h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])
}
