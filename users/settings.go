package users

import (
	"context"
	"fmt"

	"go.etcd.io/bbolt"
)

// SetName changes the display name of the user with the given ID and
// returns the updated user. The name follows SignUp's rules: it is trimmed
// and must be 1 to MaxNameLength runes without control characters. Errors
// wrap ErrNameRequired, ErrNameTooLong, ErrInvalidName, ErrNotFound, or
// ctx's error.
func (s *Store) SetName(ctx context.Context, id, name string) (User, error) {
	name, err := validateName(name)
	if err != nil {
		return User{}, fmt.Errorf("users: set name %q: %w", id, err)
	}
	if err := ctx.Err(); err != nil {
		return User{}, fmt.Errorf("users: set name %q: %w", id, err)
	}
	u, err := s.updateUser(id, func(_ *bbolt.Tx, u *User) error {
		u.Name = name
		return nil
	})
	if err != nil {
		return User{}, fmt.Errorf("users: set name %q: %w", id, err)
	}
	return u, nil
}

// ChangePassword replaces the password of the user with the given ID, given
// its current password, and returns the updated user.
//
// The current password is verified first, through the same hash limiter as
// Authenticate; a wrong one returns an error wrapping ErrInvalidCredentials,
// a disabled account one wrapping ErrDisabled. Then newPassword must pass
// ValidatePassword. The new hash uses the Store's current parameters and is
// computed outside any write transaction. The transaction that stores it
// also sets SessionsNotBefore to now, which ends every session including the
// caller's (sign the user in again if it should continue), and cancels any
// pending password reset. If the password changed since it was verified,
// the error wraps ErrInvalidCredentials and nothing is written.
//
// Errors wrap ErrNotFound, ErrInvalidCredentials, ErrDisabled,
// ErrPasswordTooShort, ErrPasswordTooLong, ErrMalformedHash, or ctx's
// error.
func (s *Store) ChangePassword(ctx context.Context, id, current, newPassword string) (User, error) {
	// As in Authenticate: no stored password is this long, and refusing
	// depends on nothing secret, so do not hash arbitrarily large inputs.
	if passwordTooLong(current) {
		return User{}, fmt.Errorf("users: change password %q: %w", id, ErrInvalidCredentials)
	}
	if err := ctx.Err(); err != nil {
		return User{}, fmt.Errorf("users: change password %q: %w", id, err)
	}
	var u User
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		u, err = getUser(tx, id)
		return err
	})
	if err != nil {
		return User{}, fmt.Errorf("users: change password %q: %w", id, err)
	}
	ok, _, err := s.verifyPassword(ctx, u.PasswordHash, current)
	if err != nil {
		return User{}, fmt.Errorf("users: change password %q: %w", id, err)
	}
	if !ok {
		return User{}, fmt.Errorf("users: change password %q: %w", id, ErrInvalidCredentials)
	}
	if u.Disabled {
		return User{}, fmt.Errorf("users: change password %q: %w", id, ErrDisabled)
	}
	if err := ValidatePassword(newPassword); err != nil {
		return User{}, fmt.Errorf("users: change password %q: %w", id, err)
	}
	hash, err := s.hashPassword(ctx, newPassword)
	if err != nil {
		return User{}, fmt.Errorf("users: change password %q: %w", id, err)
	}
	if err := ctx.Err(); err != nil {
		return User{}, fmt.Errorf("users: change password %q: %w", id, err)
	}
	now := s.now().UTC()

	updated, err := s.updateUser(id, func(tx *bbolt.Tx, cur *User) error {
		if cur.PasswordHash != u.PasswordHash {
			// Changed since we verified: what we checked is stale.
			return ErrInvalidCredentials
		}
		if cur.Disabled {
			return ErrDisabled
		}
		cur.PasswordHash = hash
		cur.revokeSessionsAt(now)
		return deleteResetFor(tx, cur.ID)
	})
	if err != nil {
		return User{}, fmt.Errorf("users: change password %q: %w", id, err)
	}
	return updated, nil
}

// RevokeSessions signs the user with the given ID out everywhere: it sets
// SessionsNotBefore to now and returns the updated user. Errors wrap
// ErrNotFound or ctx's error.
func (s *Store) RevokeSessions(ctx context.Context, id string) (User, error) {
	if err := ctx.Err(); err != nil {
		return User{}, fmt.Errorf("users: revoke sessions %q: %w", id, err)
	}
	now := s.now().UTC()
	u, err := s.updateUser(id, func(_ *bbolt.Tx, u *User) error {
		u.revokeSessionsAt(now)
		return nil
	})
	if err != nil {
		return User{}, fmt.Errorf("users: revoke sessions %q: %w", id, err)
	}
	return u, nil
}

// RecordSignIn sets the user's LastLoginAt to now: for sign-ins that do
// not go through Authenticate (a new account, an accepted invitation, a
// password reset), which sign the person in directly.
func (s *Store) RecordSignIn(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("users: record sign-in %q: %w", id, err)
	}
	now := s.now().UTC()
	_, err := s.updateUser(id, func(_ *bbolt.Tx, u *User) error {
		u.LastLoginAt = now
		return nil
	})
	if err != nil {
		return fmt.Errorf("users: record sign-in %q: %w", id, err)
	}
	return nil
}
