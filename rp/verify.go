package rp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// ErrIDToken is wrapped by every reason an ID token is refused.
var ErrIDToken = errors.New("rp: ID token refused")

// acceptedAlgs are the signature algorithms an ID token may use. "none" and
// the HMAC algorithms (which would make the client secret a signing key) are
// never accepted.
var acceptedAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512, jose.ES256, jose.ES384, jose.ES512}

// tenantTemplate is the placeholder of multi-tenant Entra ID issuers.
const tenantTemplate = "{tenantid}"

var guidRe = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// IsTenantID reports whether s has the form of an Entra ID tenant ID (a GUID).
func IsTenantID(s string) bool { return guidRe.MatchString(s) }

// idClaims are the ID token claims the relying party reads.
type idClaims struct {
	Issuer            string          `json:"iss"`
	Subject           string          `json:"sub"`
	Audience          audience        `json:"aud"`
	Expiry            *numericDate    `json:"exp"`
	IssuedAt          *numericDate    `json:"iat"`
	NotBefore         *numericDate    `json:"nbf"`
	Nonce             string          `json:"nonce"`
	AuthorizedParty   string          `json:"azp"`
	Email             string          `json:"email"`
	EmailVerified     *bool           `json:"email_verified"`
	DomainOwnerVerify *bool           `json:"xms_edov"`
	Name              string          `json:"name"`
	PreferredUsername string          `json:"preferred_username"`
	TenantID          string          `json:"tid"`
	ObjectID          string          `json:"oid"`
	Version           string          `json:"ver"`
	Roles             []string        `json:"roles"`
	Groups            []string        `json:"groups"`
	ClaimNames        map[string]any  `json:"_claim_names"`
	Org               string          `json:"org"`
	Raw               json.RawMessage `json:"-"`
}

// audience is a JWT aud: one string or an array.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("aud is neither a string nor an array of strings")
	}
	*a = many
	return nil
}

// numericDate is a JWT NumericDate (seconds, possibly fractional).
type numericDate float64

func (d *numericDate) time() time.Time {
	sec := float64(*d)
	return time.Unix(int64(sec), int64((sec-float64(int64(sec)))*1e9))
}

// idVerifier checks ID tokens of one provider for one client (OpenID
// Connect Core §3.1.3.7).
type idVerifier struct {
	issuer   string // may contain {tenantid}
	clientID string
	keys     *keySet
	algs     []jose.SignatureAlgorithm
	skew     time.Duration
	now      func() time.Time
	tenants  []string // allowed tids for a {tenantid} issuer; "*" = any
}

func refused(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrIDToken}, args...)...)
}

// verify checks raw and returns its claims. nonce is the value sent in the
// authorization request.
func (v *idVerifier) verify(ctx context.Context, raw, nonce string) (*idClaims, error) {
	jws, err := jose.ParseSignedCompact(raw, v.algs)
	if err != nil {
		if alg := headerAlg(raw); alg != "" && !slices.Contains(v.algs, jose.SignatureAlgorithm(alg)) {
			return nil, refused("signature algorithm %q is not accepted (accepted: %v)", alg, v.algs)
		}
		return nil, refused("not a signed JWT: %v", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, refused("expected one signature, found %d", len(jws.Signatures))
	}
	h := jws.Signatures[0].Header
	key, err := v.keys.key(ctx, h.KeyID, h.Algorithm)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrIDToken, err)
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return nil, refused("bad signature (kid %q)", h.KeyID)
	}
	var c idClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, refused("claims: %v", err)
	}
	c.Raw = payload
	if err := v.checkIssuer(&c); err != nil {
		return nil, err
	}
	switch {
	case c.Subject == "":
		return nil, refused("sub is missing")
	case !slices.Contains(c.Audience, v.clientID):
		return nil, refused("aud %v does not contain the client ID %q", []string(c.Audience), v.clientID)
	case len(c.Audience) > 1 && c.AuthorizedParty != v.clientID:
		return nil, refused("azp %q is not the client ID %q of a multi-audience token", c.AuthorizedParty, v.clientID)
	case c.AuthorizedParty != "" && c.AuthorizedParty != v.clientID:
		return nil, refused("azp %q is not the client ID %q", c.AuthorizedParty, v.clientID)
	case c.Expiry == nil:
		return nil, refused("exp is missing")
	case c.IssuedAt == nil:
		return nil, refused("iat is missing")
	}
	now := v.now()
	if exp := c.Expiry.time(); !now.Before(exp.Add(v.skew)) {
		return nil, refused("expired at %s (now %s, %s of clock skew allowed)", exp.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), v.skew)
	}
	if iat := c.IssuedAt.time(); iat.After(now.Add(v.skew)) {
		return nil, refused("issued in the future (iat %s, now %s): check the clocks", iat.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if c.NotBefore != nil && c.NotBefore.time().After(now.Add(v.skew)) {
		return nil, refused("not valid before %s", c.NotBefore.time().UTC().Format(time.RFC3339))
	}
	if nonce == "" || c.Nonce != nonce {
		return nil, refused("nonce does not match the sign-in request")
	}
	return &c, nil
}

// checkIssuer compares iss with the expected issuer; an Entra ID template
// issuer is resolved with the token's tid, which must be a GUID.
func (v *idVerifier) checkIssuer(c *idClaims) error {
	want := v.issuer
	if strings.Contains(want, tenantTemplate) {
		if !guidRe.MatchString(c.TenantID) {
			return refused("tid %q is not a tenant GUID, so the issuer template %s cannot be resolved", c.TenantID, v.issuer)
		}
		if !slices.Contains(v.tenants, "*") && !slices.ContainsFunc(v.tenants, func(t string) bool { return strings.EqualFold(t, c.TenantID) }) {
			return refused("tenant %s is not in config.authentication.oidc.allowedTenants", c.TenantID)
		}
		want = strings.ReplaceAll(want, tenantTemplate, strings.ToLower(c.TenantID))
	}
	if c.Issuer == want {
		return nil
	}
	if strings.HasPrefix(c.Issuer, "https://sts.windows.net/") && strings.HasSuffix(strings.TrimSuffix(want, "/"), "/v2.0") {
		return refused("iss %q is an Entra ID v1.0 token but discovery is for v2.0 (%s): set \"accessTokenAcceptedVersion\": 2 (requestedAccessTokenVersion in the Microsoft Graph manifest) in the app registration's manifest, or use the v1.0 discovery URL", c.Issuer, want)
	}
	return refused("iss %q is not the expected issuer %q", c.Issuer, want)
}

// headerAlg reads the alg of a compact JWS header without trusting it.
func headerAlg(raw string) string {
	head, _, ok := strings.Cut(raw, ".")
	if !ok {
		return ""
	}
	b, err := base64URLDecode(head)
	if err != nil {
		return ""
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(b, &h) != nil {
		return ""
	}
	return h.Alg
}
