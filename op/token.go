package op

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"time"
)

// accessToken is the record behind an opaque access token. Access tokens
// are short-lived and kept in memory: after a restart a client refreshes.
type accessToken struct {
	ID        string
	ClientID  string
	Subject   string
	Scopes    []string
	Audience  []string
	IssuedAt  time.Time
	Expires   time.Time
	AuthTime  time.Time // when the user authenticated: sessions revoked later end it
	Family    string    // refresh token family it was issued with, if any
	AuthReqID string    // authorization request it was issued for, if any
}

// refreshToken is the stored record of a refresh token. The token itself is
// never stored: records are keyed by the SHA-256 of the token.
type refreshToken struct {
	ID        string    `json:"id"` // hex SHA-256 of the token
	Family    string    `json:"family"`
	ClientID  string    `json:"client_id"`
	Subject   string    `json:"sub"`
	Scopes    []string  `json:"scopes"`
	Audience  []string  `json:"aud"`
	AMR       []string  `json:"amr"`
	AuthTime  time.Time `json:"auth_time"`
	IssuedAt  time.Time `json:"iat"`
	Expires   time.Time `json:"exp"`
	RotatedAt time.Time `json:"rotated_at,omitzero"` // non-zero once exchanged: a second use is a replay
}

// refreshTokenID is the storage key of a refresh token.
func refreshTokenID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// refreshTokenRequest adapts a stored refresh token to zitadel's
// op.RefreshTokenRequest.
type refreshTokenRequest struct {
	rec refreshToken
}

// GetAMR implements op.RefreshTokenRequest.
func (r *refreshTokenRequest) GetAMR() []string { return slices.Clone(r.rec.AMR) }

// GetAudience implements op.RefreshTokenRequest.
func (r *refreshTokenRequest) GetAudience() []string { return slices.Clone(r.rec.Audience) }

// GetAuthTime implements op.RefreshTokenRequest.
func (r *refreshTokenRequest) GetAuthTime() time.Time { return r.rec.AuthTime }

// GetClientID implements op.RefreshTokenRequest.
func (r *refreshTokenRequest) GetClientID() string { return r.rec.ClientID }

// GetScopes implements op.RefreshTokenRequest.
func (r *refreshTokenRequest) GetScopes() []string { return slices.Clone(r.rec.Scopes) }

// GetSubject implements op.RefreshTokenRequest.
func (r *refreshTokenRequest) GetSubject() string { return r.rec.Subject }

// SetCurrentScopes implements op.RefreshTokenRequest (a narrower scope on refresh).
func (r *refreshTokenRequest) SetCurrentScopes(scopes []string) { r.rec.Scopes = scopes }
