package users

import "errors"

// Sentinel errors. Functions in this package wrap them with context, so
// compare with errors.Is, never with ==. No error produced by this package
// ever contains a password or a password hash.
var (
	// ErrNotFound reports that no user or organization has the requested
	// ID or email address.
	ErrNotFound = errors.New("users: not found")
	// ErrInvalidCredentials reports a failed Authenticate: unknown email,
	// malformed email or wrong password, deliberately indistinguishable.
	ErrInvalidCredentials = errors.New("users: invalid email or password")
	// ErrEmailTaken reports a SignUp with an email address that is already
	// registered (compared after NormalizeEmail).
	ErrEmailTaken = errors.New("users: email already registered")
	// ErrEmailDomain reports a SignUp whose email domain is not
	// Options.ValidEmailDomain.
	ErrEmailDomain = errors.New("users: email domain not allowed")
	// ErrInvalidEmail reports an email address refused by NormalizeEmail.
	ErrInvalidEmail = errors.New("users: invalid email address")
	// ErrNameRequired reports a SignUp with an empty or all-space name.
	ErrNameRequired = errors.New("users: name required")
	// ErrNameTooLong reports a SignUp with a name longer than MaxNameLength
	// runes.
	ErrNameTooLong = errors.New("users: name too long")
	// ErrInvalidName reports a SignUp with a name that is not valid UTF-8
	// or contains control characters.
	ErrInvalidName = errors.New("users: name contains invalid characters")
	// ErrPasswordTooShort reports a password with fewer than
	// MinPasswordLength runes.
	ErrPasswordTooShort = errors.New("users: password too short")
	// ErrPasswordTooLong reports a password with more than
	// MaxPasswordLength runes.
	ErrPasswordTooLong = errors.New("users: password too long")
	// ErrDisabled reports a correct password for a disabled account.
	ErrDisabled = errors.New("users: account disabled")
	// ErrMalformedHash reports a stored password hash that is not a
	// well-formed argon2id PHC string within the accepted parameter bounds.
	ErrMalformedHash = errors.New("users: malformed password hash")
	// ErrInvalidHashParams reports HashParams outside the accepted bounds.
	ErrInvalidHashParams = errors.New("users: invalid hash parameters")
	// ErrInvalidRole reports a Role that is not one of the defined roles.
	ErrInvalidRole = errors.New("users: invalid role")
	// ErrLastAdmin reports a SetRole, SetDisabled or Remove refused
	// because it would leave the organization without an active admin (an
	// account with RoleAdmin that is not disabled).
	ErrLastAdmin = errors.New("users: would remove the last active admin")
	// ErrNotAdmin reports a CreateInvitation whose inviter is not an
	// active admin.
	ErrNotAdmin = errors.New("users: not an active admin")
	// ErrNoOrganization reports a CreateInvitation before the first
	// account, which creates the organization, exists.
	ErrNoOrganization = errors.New("users: no organization yet")
	// ErrInvitationInvalid reports an invitation token that is unknown,
	// expired, revoked, replaced or already used, deliberately
	// indistinguishable.
	ErrInvitationInvalid = errors.New("users: invitation invalid or expired")
	// ErrResetInvalid reports a password reset token that is unknown,
	// expired, replaced or already used, or that belongs to a disabled
	// account, deliberately indistinguishable.
	ErrResetInvalid = errors.New("users: password reset link invalid or expired")
	// ErrSignupClosed reports a SignUp refused by SignupInvite: an account
	// already exists, so new accounts need an invitation.
	ErrSignupClosed = errors.New("users: sign-up closed, an invitation is required")
	// ErrBusy is returned when too many password hashes are already
	// waiting: the caller should answer "try again shortly" (503).
	ErrBusy = errors.New("users: too many sign-ins at once; try again shortly")
)
