package rp

import (
	"context"
	"net/http"
	"slices"
)

// Identity is who a request comes from, whatever the issuer: the built-in
// one or an external identity provider.
type Identity struct {
	Issuer  string `json:"iss"`
	Subject string `json:"sub"`
	// Key identifies the person stably across sign-ins: "entra:<tid>/<oid>"
	// for Entra ID, otherwise "<iss>#<sub>". Never the email, which can change.
	Key           string `json:"key"`
	Email         string `json:"email,omitempty"`
	EmailVerified bool   `json:"email_verified"`
	// EmailSource is "preferred_username" when the provider sent no email
	// and preferred_username stands in for it (unverified).
	EmailSource  string   `json:"email_source,omitempty"`
	Name         string   `json:"name,omitempty"`
	Roles        []string `json:"roles"`
	Groups       []string `json:"groups,omitempty"`
	Organization string   `json:"org,omitempty"`
	TenantID     string   `json:"tid,omitempty"`
}

// HasRole reports whether the identity holds role.
func (id Identity) HasRole(role string) bool { return slices.Contains(id.Roles, role) }

type identityKey struct{}

// WithIdentity returns a context carrying id.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// IdentityFrom returns the identity a middleware of this package put in ctx.
func IdentityFrom(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}

// Require is a middleware that lets only requests with a valid session
// through, with their Identity in the context; others get 401.
func (p *RelyingParty) Require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := p.Session(r)
		if err != nil {
			p.clearInvalidSession(w, r)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthenticated", "login": p.loginPath})
			return
		}
		next.ServeHTTP(w, r.WithContext(WithIdentity(r.Context(), id)))
	})
}

// Optional is a middleware that puts the Identity in the context when the
// request has a valid session, and lets every request through.
func (p *RelyingParty) Optional(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, err := p.Session(r); err == nil {
			r = r.WithContext(WithIdentity(r.Context(), id))
		} else {
			p.clearInvalidSession(w, r)
		}
		next.ServeHTTP(w, r)
	})
}
