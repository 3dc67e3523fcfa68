package op

import (
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// authRequest is a pending or completed authorization request. It lives in
// memory only: losing it on restart means "sign in again", nothing more.
type authRequest struct {
	ID        string
	CreatedAt time.Time
	Request   oidc.AuthRequest
	// HintSubject is the subject of a valid id_token_hint, if one was sent.
	HintSubject string

	// Set when the user has authenticated.
	UserID      string
	AuthTime    time.Time
	AMR         []string
	SessionHash string // the issuer session that completed the request
	done        bool

	// The authorization code and its life.
	Code        string
	CodeExpires time.Time
	CodeUsed    bool
	Redeemed    bool // tokens were issued for this request
	Compromised bool // the code was replayed: issue nothing more

	// What a redemption issued, so a replayed code can revoke it.
	AccessTokenIDs []string
	RefreshFamily  string
}

// GetID implements op.AuthRequest.
func (a *authRequest) GetID() string { return a.ID }

// GetACR implements op.AuthRequest.
func (a *authRequest) GetACR() string { return "" }

// GetAMR implements op.AuthRequest.
func (a *authRequest) GetAMR() []string { return slices.Clone(a.AMR) }

// GetAudience implements op.AuthRequest.
func (a *authRequest) GetAudience() []string { return []string{a.Request.ClientID} }

// GetAuthTime implements op.AuthRequest.
func (a *authRequest) GetAuthTime() time.Time { return a.AuthTime }

// GetClientID implements op.AuthRequest.
func (a *authRequest) GetClientID() string { return a.Request.ClientID }

// GetCodeChallenge implements op.AuthRequest.
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if a.Request.CodeChallenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{Challenge: a.Request.CodeChallenge, Method: a.Request.CodeChallengeMethod}
}

// GetNonce implements op.AuthRequest.
func (a *authRequest) GetNonce() string { return a.Request.Nonce }

// GetRedirectURI implements op.AuthRequest.
func (a *authRequest) GetRedirectURI() string { return a.Request.RedirectURI }

// GetResponseType implements op.AuthRequest.
func (a *authRequest) GetResponseType() oidc.ResponseType { return a.Request.ResponseType }

// GetResponseMode implements op.AuthRequest.
func (a *authRequest) GetResponseMode() oidc.ResponseMode { return a.Request.ResponseMode }

// GetScopes implements op.AuthRequest.
func (a *authRequest) GetScopes() []string { return slices.Clone(a.Request.Scopes) }

// GetState implements op.AuthRequest.
func (a *authRequest) GetState() string { return a.Request.State }

// GetSubject implements op.AuthRequest.
func (a *authRequest) GetSubject() string { return a.UserID }

// Done implements op.AuthRequest.
func (a *authRequest) Done() bool { return a.done }

// hasPrompt reports whether the request carries the prompt value p.
func (a *authRequest) hasPrompt(p string) bool { return slices.Contains(a.Request.Prompt, p) }

// clone returns a copy that callers may read without holding the lock.
func (a *authRequest) clone() *authRequest {
	c := *a
	c.AMR = slices.Clone(a.AMR)
	c.AccessTokenIDs = slices.Clone(a.AccessTokenIDs)
	return &c
}
