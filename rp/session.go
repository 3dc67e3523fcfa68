package rp

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Cookie names set by the relying party.
const (
	SessionCookie     = "latchkey_session"
	transactionCookie = "latchkey_auth"
)

// Errors of session cookies.
var (
	ErrNoSession      = errors.New("rp: no session")
	ErrInvalidSession = errors.New("rp: invalid session")
)

const (
	sessionAudience = "latchkey-session"
	txAudience      = "latchkey-auth-transaction"
	cookieLeeway    = time.Minute
	maxCookieBytes  = 3800 // browsers keep cookies up to 4096 bytes, name and attributes included
)

// sessionClaims is the payload of the session cookie: a JWT signed HS256
// with jwtSecret, so any replica sharing the secret can check it.
type sessionClaims struct {
	Issuer    string   `json:"iss"`
	Audience  string   `json:"aud"`
	Subject   string   `json:"sub"`
	IssuedAt  int64    `json:"iat"`
	NotBefore int64    `json:"nbf"`
	Expiry    int64    `json:"exp"`
	ID        string   `json:"jti"`
	Identity  Identity `json:"idn"`
}

// transaction is the state of one login between /login and /callback,
// kept in a short-lived signed cookie.
type transaction struct {
	Audience string `json:"aud"`
	Expiry   int64  `json:"exp"`
	State    string `json:"state"`
	Nonce    string `json:"nonce"`
	Verifier string `json:"pkce"`
	Redirect string `json:"redirect"`
}

// jwtCodec signs and verifies compact HS256 JWTs with one key.
type jwtCodec struct {
	signer jose.Signer
	key    []byte
}

func newJWTCodec(key []byte) (*jwtCodec, error) {
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("rp: session signer: %w", err)
	}
	return &jwtCodec{signer: s, key: key}, nil
}

func (c *jwtCodec) encode(v any) (string, error) {
	payload, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("rp: encode cookie: %w", err)
	}
	jws, err := c.signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("rp: sign cookie: %w", err)
	}
	return jws.CompactSerialize()
}

func (c *jwtCodec) decode(token string, v any) error {
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.HS256})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidSession, err)
	}
	payload, err := jws.Verify(c.key)
	if err != nil {
		return fmt.Errorf("%w: signature", ErrInvalidSession)
	}
	if err := json.Unmarshal(payload, v); err != nil {
		return fmt.Errorf("%w: payload", ErrInvalidSession)
	}
	return nil
}

// deriveKey derives a purpose-bound key from the configured secret, so the
// session and the login transaction cookies cannot be swapped.
func deriveKey(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("latchkey rp " + purpose))
	return m.Sum(nil)
}

// Session returns the identity of the request's session cookie.
func (p *RelyingParty) Session(r *http.Request) (Identity, error) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return Identity{}, ErrNoSession
	}
	var claims sessionClaims
	if err := p.session.decode(c.Value, &claims); err != nil {
		return Identity{}, err
	}
	now := p.now()
	switch {
	case claims.Audience != sessionAudience || claims.Issuer != p.publicURL:
		return Identity{}, fmt.Errorf("%w: audience or issuer", ErrInvalidSession)
	case now.After(time.Unix(claims.Expiry, 0).Add(cookieLeeway)):
		return Identity{}, fmt.Errorf("%w: expired", ErrInvalidSession)
	case now.Add(cookieLeeway).Before(time.Unix(claims.NotBefore, 0)):
		return Identity{}, fmt.Errorf("%w: not yet valid", ErrInvalidSession)
	case claims.Subject == "" || claims.Subject != claims.Identity.Subject:
		return Identity{}, fmt.Errorf("%w: subject", ErrInvalidSession)
	}
	// A session of another identity provider (before a swap from the
	// built-in issuer to Entra ID, say) is not this configuration's.
	if prov, _, _ := p.current(); prov != nil && !issuerTrusted(prov.issuer, claims.Identity) {
		return Identity{}, fmt.Errorf("%w: issued by another identity provider", ErrInvalidSession)
	}
	return claims.Identity, nil
}

// setSession issues the session cookie for id.
func (p *RelyingParty) setSession(w http.ResponseWriter, id Identity) error {
	now := p.now()
	exp := now.Add(p.sessionLife)
	jti := p.random(16)
	claims := sessionClaims{
		Issuer: p.publicURL, Audience: sessionAudience, Subject: id.Subject,
		IssuedAt: now.Unix(), NotBefore: now.Unix(), Expiry: exp.Unix(), ID: jti, Identity: id,
	}
	token, err := p.session.encode(claims)
	if err != nil {
		return err
	}
	if len(token) > maxCookieBytes && len(id.Groups) > 0 {
		// Browsers drop cookies over 4 KiB: many groups would make the
		// session impossible to keep. Keep the session, without groups.
		p.log.Warn("the identity's groups do not fit in the session cookie; the session carries no groups (read them from the provider instead)", "sub", id.Subject, "groups", len(id.Groups))
		claims.Identity.Groups = nil
		if token, err = p.session.encode(claims); err != nil {
			return err
		}
	}
	http.SetCookie(w, p.cookie(SessionCookie, "/", token, exp))
	return nil
}

// clearInvalidSession removes a session cookie that is present but invalid.
func (p *RelyingParty) clearInvalidSession(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
		http.SetCookie(w, p.cookie(SessionCookie, "/", "", time.Time{}))
	}
}

// CSRFToken returns the token that a form posting to the relying party's
// logout endpoint must carry for the request's session ("" without one).
func (p *RelyingParty) CSRFToken(r *http.Request) string {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return ""
	}
	m := hmac.New(sha256.New, p.csrfKey)
	m.Write([]byte(c.Value))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// cookie builds one of the relying party's cookies.
func (p *RelyingParty) cookie(name, path, value string, expires time.Time) *http.Cookie {
	c := &http.Cookie{
		Name: name, Value: value, Path: path, Expires: expires,
		HttpOnly: true, Secure: p.secure, SameSite: http.SameSiteLaxMode,
	}
	if value == "" {
		c.MaxAge = -1
	}
	return c
}

// issuerTrusted reports whether an identity comes from the configured
// issuer, resolving an Entra ID {tenantid} template with its tenant.
func issuerTrusted(issuer string, id Identity) bool {
	if strings.Contains(issuer, tenantTemplate) {
		return guidRe.MatchString(id.TenantID) && id.Issuer == strings.ReplaceAll(issuer, tenantTemplate, strings.ToLower(id.TenantID))
	}
	return id.Issuer == issuer
}
