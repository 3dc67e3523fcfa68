package users

import (
	"fmt"
	"log/slog"
	"time"
)

// Role is a user's role within the organization.
type Role string

// Roles. The first account created becomes RoleAdmin of the new
// organization; every later account joins it as RoleViewer when it signs
// up, or with the invitation's role when it accepts an invitation. SetRole
// changes a role.
const (
	RoleAdmin  Role = "admin"
	RoleViewer Role = "viewer"
)

// Valid reports whether r is one of the defined roles.
func (r Role) Valid() bool {
	return r == RoleAdmin || r == RoleViewer
}

// User is an account of the built-in issuer.
//
// User is stored as JSON, PasswordHash included. Its String, GoString and
// LogValue methods leave PasswordHash out so that a User printed with fmt or
// logged with log/slog never exposes the hash; still, never log a User's
// fields one by one.
type User struct {
	// ID is random (128 bits, lower-case hex), never changes, and is the
	// OIDC "sub" claim.
	ID string `json:"id"`
	// Email is normalised by NormalizeEmail and unique.
	Email string `json:"email"`
	// Name is the display name, trimmed.
	Name string `json:"name"`
	// Role is the user's role in the organization.
	Role Role `json:"role"`
	// OrgID is the ID of the user's Organization.
	OrgID string `json:"org_id"`
	// PasswordHash is the argon2id hash of the password in PHC string
	// format. It is secret: never log it, never send it to a client.
	PasswordHash string `json:"password_hash"`
	// Disabled accounts cannot authenticate.
	Disabled bool `json:"disabled"`
	// CreatedAt is when the account signed up.
	CreatedAt time.Time `json:"created_at"`
	// LastLoginAt is when the account last authenticated successfully;
	// zero until the first successful Authenticate.
	LastLoginAt time.Time `json:"last_login_at"`
	// SessionsNotBefore invalidates sessions and refresh tokens: those
	// authenticated before this instant are no longer valid, and callers
	// holding one must check it against this field. It is set to the
	// current time by ChangePassword, ResetPassword, RevokeSessions ("sign
	// out everywhere") and disabling with SetDisabled, never moves
	// backwards, and is not touched by SetRole. Zero (also for accounts
	// stored before the field existed) invalidates nothing.
	SessionsNotBefore time.Time `json:"sessions_not_before"`
}

// activeAdmin reports whether u counts towards the organization's active
// admins: RoleAdmin and not disabled.
func (u User) activeAdmin() bool {
	return u.Role == RoleAdmin && !u.Disabled
}

// revokeSessionsAt moves SessionsNotBefore forward to now; it never moves
// it backwards, so a clock stepping back cannot revive revoked sessions.
func (u *User) revokeSessionsAt(now time.Time) {
	if now.After(u.SessionsNotBefore) {
		u.SessionsNotBefore = now
	}
}

// String describes u without its password hash.
func (u User) String() string {
	return fmt.Sprintf("users.User{ID:%q Email:%q Name:%q Role:%q OrgID:%q Disabled:%t CreatedAt:%s LastLoginAt:%s SessionsNotBefore:%s}",
		u.ID, u.Email, u.Name, u.Role, u.OrgID, u.Disabled,
		u.CreatedAt.Format(time.RFC3339), u.LastLoginAt.Format(time.RFC3339),
		u.SessionsNotBefore.Format(time.RFC3339Nano))
}

// GoString is like String, so that %#v does not print the password hash
// either.
func (u User) GoString() string {
	return u.String()
}

// LogValue implements slog.LogValuer; it leaves the password hash out.
func (u User) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", u.ID),
		slog.String("email", u.Email),
		slog.String("role", string(u.Role)),
		slog.String("org_id", u.OrgID),
		slog.Bool("disabled", u.Disabled),
	)
}

// Organization is the organization every user belongs to. latchkey has a
// single organization, created by the first sign-up.
type Organization struct {
	// ID is random (128 bits, lower-case hex) and never changes.
	ID string `json:"id"`
	// Name is Options.OrganizationName at the time of the first sign-up.
	Name string `json:"name"`
	// CreatedAt is when the first account signed up.
	CreatedAt time.Time `json:"created_at"`
}
