package op

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"
	"go.etcd.io/bbolt"

	"github.com/latchkey-dev/latchkey/keys"
	"github.com/latchkey-dev/latchkey/users"
)

// Bucket names owned by this package.
var (
	bucketRefresh  = []byte("op.refresh")
	bucketSessions = []byte("op.sessions")
)

// ScopeRoles is the scope under which clients ask for the authorization
// claims: roles (also sent without it, as Entra ID sends app roles) and
// org, the name of the user's organization.
const ScopeRoles = "roles"

// accounts is what the issuer needs of the user store.
type accounts interface {
	Get(ctx context.Context, id string) (users.User, error)
	Authenticate(ctx context.Context, email, password string) (users.User, error)
	SignUp(ctx context.Context, email, name, password string) (users.User, error)
	NeedsSetup(ctx context.Context) (bool, error)
	Organization(ctx context.Context, id string) (users.Organization, error)
}

// signer is what the issuer needs of the key manager.
type signer interface {
	SigningKey() keys.Key
	PublicKeys() []jose.JSONWebKey
}

// maxPendingRequests bounds the authorization requests kept in memory (at
// most 16 KiB each): anyone can start one.
const maxPendingRequests = 20_000

var (
	errCodeInvalid      = errors.New("op: authorization code invalid or expired")
	errCodeReused       = errors.New("op: authorization code already used")
	errRefreshInvalid   = errors.New("op: refresh token invalid or expired")
	errRefreshReused    = errors.New("op: refresh token already used")
	errAccessInvalid    = errors.New("op: access token invalid or expired")
	errAuthReqNotFound  = errors.New("op: authorization request not found or expired")
	errAccountInactive  = errors.New("op: account no longer active")
	errUnsupportedGrant = errors.New("op: grant not supported")
)

// storage implements zitadel's op.Storage. Pending authorization requests,
// codes and access tokens are kept in memory (their loss on restart only means
// "sign in again"); refresh tokens and browser sessions are kept in bbolt.
type storage struct {
	db       *bbolt.DB
	accounts accounts
	keys     signer
	clients  map[string]*client
	now      func() time.Time
	random   func(n int) string
	life     Lifetimes
	log      *slog.Logger

	mu         sync.Mutex
	requests   map[string]*authRequest
	codes      map[string]string // code → authorization request ID
	access     map[string]*accessToken
	revoked    map[string]time.Time // refresh families revoked recently: no new tokens for them
	maxPending int                  // bound of requests (maxPendingRequests)
	lastSweep  time.Time
}

// --- authorization requests -------------------------------------------------

// CreateAuthRequest implements op.Storage. It refuses the PKCE method plain
// and requires PKCE from public clients (RFC 9700 §2.1.1).
func (s *storage) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, hintSubject string) (zop.AuthRequest, error) {
	c, ok := s.clients[req.ClientID]
	if !ok {
		return nil, oidc.ErrInvalidRequestRedirectURI().WithDescription("unknown client")
	}
	if req.CodeChallenge != "" && req.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
	}
	if req.CodeChallenge == "" && !c.confidential {
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE with code_challenge_method S256 is required for this client")
	}
	now := s.now()
	ar := &authRequest{ID: s.random(16), CreatedAt: now, Request: *req, HintSubject: hintSubject}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)
	if len(s.requests) >= s.maxPending {
		s.lastSweep = time.Time{}
		s.sweepLocked(now)
		if len(s.requests) >= s.maxPending {
			s.log.Warn("too many pending authorization requests; refusing new ones until some expire", "pending", len(s.requests))
			return nil, &oidc.Error{ErrorType: "temporarily_unavailable", Description: "too many sign-ins in progress; try again in a few minutes"}
		}
	}
	s.requests[ar.ID] = ar
	return ar.clone(), nil
}

// AuthRequestByID implements op.Storage.
func (s *storage) AuthRequestByID(_ context.Context, id string) (zop.AuthRequest, error) {
	ar, err := s.authRequest(id)
	if err != nil {
		return nil, err
	}
	return ar, nil
}

// authRequest returns a copy of a live authorization request.
func (s *storage) authRequest(id string) (*authRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ar, ok := s.requests[id]
	if !ok || ar.Redeemed || s.now().After(ar.CreatedAt.Add(s.life.AuthRequest)) {
		return nil, fmt.Errorf("op: authorization request %q: %w", id, errAuthReqNotFound)
	}
	return ar.clone(), nil
}

// completeAuthRequest records that the user authenticated for request id.
func (s *storage) completeAuthRequest(id, userID string, authTime time.Time, amr []string, sessionHash string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ar, ok := s.requests[id]
	if !ok || ar.Redeemed || ar.Code != "" {
		return fmt.Errorf("op: complete authorization request %q: %w", id, errAuthReqNotFound)
	}
	ar.UserID, ar.AuthTime, ar.AMR, ar.SessionHash, ar.done = userID, authTime, amr, sessionHash, true
	return nil
}

// AuthRequestByCode implements op.Storage. A code is good for one
// redemption: the first call consumes it; a second one revokes everything the
// first issued (RFC 6749 §4.1.2) and fails.
func (s *storage) AuthRequestByCode(_ context.Context, code string) (zop.AuthRequest, error) {
	s.mu.Lock()
	id, ok := s.codes[code]
	var ar *authRequest
	if ok {
		ar = s.requests[id]
	}
	if ar == nil {
		s.mu.Unlock()
		return nil, errCodeInvalid
	}
	if ar.CodeUsed {
		// Tokens of the first redemption may still be in the making:
		// mark the request so that none is issued from now on.
		ar.Compromised = true
		tokens, family := ar.AccessTokenIDs, ar.RefreshFamily
		for _, t := range tokens {
			delete(s.access, t)
		}
		ar.AccessTokenIDs = nil
		s.mu.Unlock()
		s.log.Warn("authorization code replayed; revoking the tokens it issued", "client_id", ar.Request.ClientID, "sub", ar.UserID)
		if family != "" {
			if err := s.revokeFamily(family); err != nil {
				return nil, err
			}
		}
		return nil, errCodeReused
	}
	if s.now().After(ar.CodeExpires) {
		s.mu.Unlock()
		return nil, errCodeInvalid
	}
	ar.CodeUsed = true
	c := ar.clone()
	s.mu.Unlock()
	return c, nil
}

// SaveAuthCode implements op.Storage. A request gets one code, ever, so the
// callback URL cannot be replayed to mint a second one.
func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ar, ok := s.requests[id]
	if !ok || !ar.done || ar.Code != "" || ar.Redeemed {
		return oidc.ErrInvalidRequest().WithDescription("authorization request already answered or expired")
	}
	ar.Code = code
	ar.CodeExpires = s.now().Add(s.life.Code)
	s.codes[code] = id
	return nil
}

// DeleteAuthRequest implements op.Storage. The request is kept as a
// tombstone until it expires so that a replayed code is recognised.
func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ar, ok := s.requests[id]; ok {
		ar.Redeemed = true
	}
	return nil
}

// sweepLocked drops expired in-memory state, at most once a minute.
func (s *storage) sweepLocked(now time.Time) {
	if now.Sub(s.lastSweep) < time.Minute {
		return
	}
	s.lastSweep = now
	for id, ar := range s.requests {
		if now.After(ar.CreatedAt.Add(s.life.AuthRequest)) && now.After(ar.CodeExpires) {
			delete(s.codes, ar.Code)
			delete(s.requests, id)
		}
	}
	for id, t := range s.access {
		if now.After(t.Expires) {
			delete(s.access, id)
		}
	}
	for f, at := range s.revoked {
		if now.Sub(at) > s.life.AuthRequest {
			delete(s.revoked, f)
		}
	}
}

// --- tokens ----------------------------------------------------------------

// CreateAccessToken implements op.Storage.
func (s *storage) CreateAccessToken(ctx context.Context, req zop.TokenRequest) (string, time.Time, error) {
	t, err := s.newAccessToken(req, "")
	if err != nil {
		return "", time.Time{}, err
	}
	return t.ID, t.Expires, nil
}

func (s *storage) newAccessToken(req zop.TokenRequest, family string) (*accessToken, error) {
	now := s.now()
	t := &accessToken{
		ID:       s.random(16),
		Subject:  req.GetSubject(),
		Audience: req.GetAudience(),
		Scopes:   req.GetScopes(),
		IssuedAt: now,
		Expires:  now.Add(s.life.AccessToken),
		Family:   family,
	}
	switch r := req.(type) {
	case *authRequest:
		t.ClientID, t.AuthReqID, t.AuthTime = r.GetClientID(), r.ID, r.AuthTime
	case *refreshTokenRequest:
		t.ClientID, t.AuthTime = r.GetClientID(), r.rec.AuthTime
	default:
		return nil, fmt.Errorf("op: create access token for %T: %w", req, errUnsupportedGrant)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, gone := s.revoked[family]; gone && family != "" {
		return nil, oidc.ErrInvalidGrant().WithDescription("the grant was revoked")
	}
	if ar, ok := s.requests[t.AuthReqID]; ok {
		if ar.Compromised {
			return nil, oidc.ErrInvalidGrant().WithDescription("authorization code already used")
		}
		ar.AccessTokenIDs = append(ar.AccessTokenIDs, t.ID)
		if family != "" {
			ar.RefreshFamily = family
		}
	}
	s.access[t.ID] = t
	return t, nil
}

// CreateAccessAndRefreshTokens implements op.Storage. Refresh tokens rotate:
// each use returns a new one and marks the old one used; presenting a used
// one again revokes the whole family (RFC 9700 §4.14.2).
func (s *storage) CreateAccessAndRefreshTokens(ctx context.Context, req zop.TokenRequest, current string) (string, string, time.Time, error) {
	now := s.now()
	rec := refreshToken{
		ClientID: "",
		Subject:  req.GetSubject(),
		Scopes:   req.GetScopes(),
		Audience: req.GetAudience(),
		IssuedAt: now,
		Expires:  now.Add(s.life.RefreshToken),
	}
	switch r := req.(type) {
	case *authRequest:
		rec.ClientID, rec.AMR, rec.AuthTime = r.GetClientID(), r.GetAMR(), r.GetAuthTime()
		rec.Family = s.random(16)
	case *refreshTokenRequest:
		if current == "" || refreshTokenID(current) != r.rec.ID {
			return "", "", time.Time{}, errRefreshInvalid
		}
		rec.ClientID, rec.AMR, rec.AuthTime, rec.Family = r.rec.ClientID, r.rec.AMR, r.rec.AuthTime, r.rec.Family
	default:
		return "", "", time.Time{}, fmt.Errorf("op: refresh token for %T: %w", req, errUnsupportedGrant)
	}
	token := s.random(32)
	rec.ID = refreshTokenID(token)
	val, err := json.Marshal(rec)
	if err != nil {
		return "", "", time.Time{}, fmt.Errorf("op: encode refresh token: %w", err)
	}
	// Batch coalesces concurrent token requests into one fsync'd commit.
	err = s.db.Batch(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketRefresh)
		if current != "" {
			var old refreshToken
			raw := b.Get([]byte(refreshTokenID(current)))
			if raw == nil {
				return errRefreshInvalid
			}
			if err := json.Unmarshal(raw, &old); err != nil {
				return fmt.Errorf("op: decode refresh token: %w", err)
			}
			if !old.RotatedAt.IsZero() {
				return errRefreshReused
			}
			old.RotatedAt = now
			enc, err := json.Marshal(old)
			if err != nil {
				return fmt.Errorf("op: encode refresh token: %w", err)
			}
			if err := b.Put([]byte(old.ID), enc); err != nil {
				return err
			}
		}
		return b.Put([]byte(rec.ID), val)
	})
	if errors.Is(err, errRefreshReused) {
		s.log.Warn("refresh token replayed; revoking its family", "client_id", rec.ClientID, "sub", rec.Subject)
		_ = s.revokeFamily(rec.Family)
		return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token already used").WithParent(err)
	}
	if err != nil {
		return "", "", time.Time{}, fmt.Errorf("op: store refresh token: %w", err)
	}
	at, err := s.newAccessToken(req, rec.Family)
	if err != nil {
		// The code was replayed or the family revoked meanwhile: the
		// refresh token just stored must not outlive that.
		_ = s.revokeFamily(rec.Family)
		return "", "", time.Time{}, err
	}
	return at.ID, token, at.Expires, nil
}

// TokenRequestByRefreshToken implements op.Storage.
func (s *storage) TokenRequestByRefreshToken(ctx context.Context, token string) (zop.RefreshTokenRequest, error) {
	rec, err := s.refreshRecord(refreshTokenID(token))
	if err != nil {
		return nil, err
	}
	if !rec.RotatedAt.IsZero() {
		s.log.Warn("refresh token replayed; revoking its family", "client_id", rec.ClientID, "sub", rec.Subject)
		if err := s.revokeFamily(rec.Family); err != nil {
			return nil, err
		}
		return nil, errRefreshReused
	}
	if s.now().After(rec.Expires) {
		return nil, errRefreshInvalid
	}
	if _, err := s.activeUser(ctx, rec.Subject, rec.AuthTime); err != nil {
		return nil, err
	}
	return &refreshTokenRequest{rec: rec}, nil
}

func (s *storage) refreshRecord(id string) (refreshToken, error) {
	var rec refreshToken
	err := s.db.View(func(tx *bbolt.Tx) error {
		raw := tx.Bucket(bucketRefresh).Get([]byte(id))
		if raw == nil {
			return errRefreshInvalid
		}
		return json.Unmarshal(raw, &rec)
	})
	return rec, err
}

// revokeFamily deletes every refresh token of a family and the access
// tokens issued with them.
func (s *storage) revokeFamily(family string) error {
	s.mu.Lock()
	s.revoked[family] = s.now()
	for id, t := range s.access {
		if t.Family == family {
			delete(s.access, id)
		}
	}
	s.mu.Unlock()
	return s.deleteRefresh(func(r refreshToken) bool { return r.Family == family })
}

// deleteRefresh deletes the stored refresh tokens for which match is true.
func (s *storage) deleteRefresh(match func(refreshToken) bool) error {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketRefresh)
		var doomed [][]byte
		err := b.ForEach(func(k, v []byte) error {
			var r refreshToken
			if json.Unmarshal(v, &r) != nil || match(r) {
				doomed = append(doomed, slices.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range doomed {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("op: revoke refresh tokens: %w", err)
	}
	return nil
}

// activeUser returns the user unless it is gone, disabled, or its sessions
// were revoked after authTime (password change, reset, "sign out
// everywhere", disable).
func (s *storage) activeUser(ctx context.Context, id string, authTime time.Time) (users.User, error) {
	u, err := s.accounts.Get(ctx, id)
	if err != nil {
		return users.User{}, fmt.Errorf("op: user %q: %w", id, errAccountInactive)
	}
	if u.Disabled {
		return users.User{}, fmt.Errorf("op: user %q disabled: %w", id, errAccountInactive)
	}
	if authTime.Before(u.SessionsNotBefore) {
		return users.User{}, fmt.Errorf("op: user %q: sessions revoked since %s: %w", id, u.SessionsNotBefore.Format(time.RFC3339), errAccountInactive)
	}
	return u, nil
}

// TerminateSession implements op.Storage; the browser session is ended by
// the end_session handler (see Issuer), which can see the cookie.
func (s *storage) TerminateSession(context.Context, string, string) error { return nil }

// RevokeToken implements op.Storage (RFC 7009). Unknown tokens are not an
// error; a token of another client is.
func (s *storage) RevokeToken(ctx context.Context, tokenOrID, userID, clientID string) *oidc.Error {
	s.mu.Lock()
	t, ok := s.access[tokenOrID]
	if ok && t.ClientID == clientID {
		delete(s.access, tokenOrID)
	}
	s.mu.Unlock()
	if ok {
		if t.ClientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
		}
		return nil
	}
	rec, err := s.refreshRecord(tokenOrID)
	if err != nil {
		rec, err = s.refreshRecord(refreshTokenID(tokenOrID))
	}
	if err != nil {
		return nil
	}
	if rec.ClientID != clientID {
		return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
	}
	if err := s.revokeFamily(rec.Family); err != nil {
		return oidc.ErrServerError().WithParent(err)
	}
	return nil
}

// GetRefreshTokenInfo implements op.Storage.
func (s *storage) GetRefreshTokenInfo(_ context.Context, _ string, token string) (string, string, error) {
	rec, err := s.refreshRecord(refreshTokenID(token))
	if err != nil {
		return "", "", zop.ErrInvalidRefreshToken
	}
	return rec.Subject, rec.ID, nil
}

// --- keys ------------------------------------------------------------------

type signingKey struct{ k keys.Key }

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return k.k.Algorithm }
func (k signingKey) Key() any                                    { return k.k.Private }
func (k signingKey) ID() string                                  { return k.k.ID }

type publicKey struct{ k jose.JSONWebKey }

func (k publicKey) ID() string                         { return k.k.KeyID }
func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.SignatureAlgorithm(k.k.Algorithm) }
func (k publicKey) Use() string                        { return k.k.Use }
func (k publicKey) Key() any                           { return k.k.Key }

// SigningKey implements op.Storage.
func (s *storage) SigningKey(context.Context) (zop.SigningKey, error) {
	return signingKey{s.keys.SigningKey()}, nil
}

// SignatureAlgorithms implements op.Storage.
func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

// KeySet implements op.Storage.
func (s *storage) KeySet(context.Context) ([]zop.Key, error) {
	pub := s.keys.PublicKeys()
	out := make([]zop.Key, 0, len(pub))
	for _, k := range pub {
		if _, ok := k.Key.(*rsa.PublicKey); ok {
			out = append(out, publicKey{k})
		}
	}
	return out, nil
}

// --- clients ---------------------------------------------------------------

// GetClientByClientID implements op.Storage.
func (s *storage) GetClientByClientID(_ context.Context, id string) (zop.Client, error) {
	c, ok := s.clients[id]
	if !ok {
		return nil, fmt.Errorf("op: client %q: %w", id, ErrUnknownClient)
	}
	return c, nil
}

// AuthorizeClientIDSecret implements op.Storage with a constant-time
// comparison.
func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	c, ok := s.clients[id]
	if !ok {
		return fmt.Errorf("op: client %q: %w", id, ErrUnknownClient)
	}
	if !c.checkSecret(secret) {
		return fmt.Errorf("op: client %q: %w", id, errClientAuth)
	}
	return nil
}

// --- claims ----------------------------------------------------------------

// SetUserinfoFromScopes implements op.Storage; SetUserinfoFromRequest does the work.
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest implements op.CanSetUserinfoFromRequest: the claims
// of the ID token.
func (s *storage) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, req zop.IDTokenRequest, scopes []string) error {
	u, err := s.activeUser(ctx, req.GetSubject(), req.GetAuthTime())
	if err != nil {
		return err
	}
	return s.fillUserinfo(ctx, info, u, scopes)
}

// SetUserinfoFromToken implements op.Storage: the userinfo endpoint.
func (s *storage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	t, err := s.accessTokenByID(tokenID, subject)
	if err != nil {
		return err
	}
	u, err := s.activeUser(ctx, t.Subject, t.AuthTime)
	if err != nil {
		return err
	}
	return s.fillUserinfo(ctx, info, u, t.Scopes)
}

// SetIntrospectionFromToken implements op.Storage (RFC 7662).
func (s *storage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	t, err := s.accessTokenByID(tokenID, subject)
	if err != nil {
		return err
	}
	if t.ClientID != clientID && !slices.Contains(t.Audience, clientID) {
		return fmt.Errorf("op: introspection by client %q of a token of %q: %w", clientID, t.ClientID, errAccessInvalid)
	}
	u, err := s.activeUser(ctx, t.Subject, t.AuthTime)
	if err != nil {
		return err
	}
	info := new(oidc.UserInfo)
	if err := s.fillUserinfo(ctx, info, u, t.Scopes); err != nil {
		return err
	}
	resp.SetUserInfo(info)
	resp.Scope = t.Scopes
	resp.ClientID = t.ClientID
	resp.TokenType = oidc.BearerToken
	resp.Expiration = oidc.FromTime(t.Expires)
	resp.IssuedAt = oidc.FromTime(t.IssuedAt)
	resp.Audience = t.Audience
	return nil
}

func (s *storage) accessTokenByID(id, subject string) (*accessToken, error) {
	s.mu.Lock()
	t, ok := s.access[id]
	s.mu.Unlock()
	if !ok || t.Subject != subject || s.now().After(t.Expires) {
		return nil, errAccessInvalid
	}
	return t, nil
}

// fillUserinfo fills the claims a set of scopes grants about an active
// user. roles is always sent.
func (s *storage) fillUserinfo(ctx context.Context, info *oidc.UserInfo, u users.User, scopes []string) error {
	info.Subject = u.ID
	for _, scope := range scopes {
		switch scope {
		case oidc.ScopeProfile:
			info.Name = u.Name
			info.PreferredUsername = u.Email
		case oidc.ScopeEmail:
			info.Email = u.Email
			// latchkey sends no mail, so it never claims an address was
			// verified; the claim is sent explicitly (zitadel omits false).
			info.EmailVerified = false
			info.AppendClaims("email_verified", false)
		}
	}
	info.AppendClaims("roles", []string{string(u.Role)})
	if slices.Contains(scopes, ScopeRoles) {
		if org, err := s.accounts.Organization(ctx, u.OrgID); err == nil {
			info.AppendClaims("org", org.Name)
		}
	}
	return nil
}

// GetPrivateClaimsFromScopes implements op.Storage (JWT access tokens only; unused).
func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

// GetKeyByIDAndClientID implements op.Storage; the JWT profile grant is not supported.
func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errUnsupportedGrant
}

// ValidateJWTProfileScopes implements op.Storage; the JWT profile grant is not supported.
func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errUnsupportedGrant
}

// Health implements op.Storage.
func (s *storage) Health(context.Context) error {
	return s.db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketRefresh) == nil {
			return errors.New("op: storage not initialised")
		}
		return nil
	})
}
