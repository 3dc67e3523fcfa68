package users

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"go.etcd.io/bbolt"
)

// The organization must keep at least one active admin (RoleAdmin, not
// disabled), or nobody could administer it. SetRole, SetDisabled and Remove
// enforce this inside their write transaction, counting the active admins
// in that transaction; bbolt serialises write transactions, so concurrent
// changes cannot together leave the organization without one.

// List returns every user, sorted by email address.
func (s *Store) List(ctx context.Context) ([]User, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("users: list: %w", err)
	}
	var list []User
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketUsers).ForEach(func(_, v []byte) error {
			u, err := decodeUser(v)
			if err != nil {
				return err
			}
			list = append(list, u)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("users: list: %w", err)
	}
	slices.SortFunc(list, func(a, b User) int {
		return cmp.Or(strings.Compare(a.Email, b.Email), strings.Compare(a.ID, b.ID))
	})
	return list, nil
}

// SetRole changes the role of the user with the given ID and returns the
// updated user. It does not touch SessionsNotBefore: callers that derive
// permissions from the role must read it afresh. Errors wrap ErrInvalidRole,
// ErrNotFound, ErrLastAdmin (the user is the last active admin and role is
// not RoleAdmin), or ctx's error.
func (s *Store) SetRole(ctx context.Context, id string, role Role) (User, error) {
	if !role.Valid() {
		return User{}, fmt.Errorf("users: set role %q: %w %q", id, ErrInvalidRole, role)
	}
	if err := ctx.Err(); err != nil {
		return User{}, fmt.Errorf("users: set role %q: %w", id, err)
	}
	u, err := s.updateUser(id, func(tx *bbolt.Tx, u *User) error {
		if role != RoleAdmin {
			if err := checkNotLastAdmin(tx, *u); err != nil {
				return err
			}
		}
		u.Role = role
		return nil
	})
	if err != nil {
		return User{}, fmt.Errorf("users: set role %q: %w", id, err)
	}
	return u, nil
}

// SetDisabled disables or re-enables the user with the given ID. A disabled
// user cannot authenticate, and disabling sets SessionsNotBefore to now, so
// that its existing sessions end; re-enabling does not revive them. Errors
// wrap ErrNotFound, ErrLastAdmin (disabling the last active admin), or
// ctx's error.
func (s *Store) SetDisabled(ctx context.Context, id string, disabled bool) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("users: set disabled %q: %w", id, err)
	}
	now := s.now().UTC()
	_, err := s.updateUser(id, func(tx *bbolt.Tx, u *User) error {
		if disabled {
			if err := checkNotLastAdmin(tx, *u); err != nil {
				return err
			}
			u.revokeSessionsAt(now)
		}
		u.Disabled = disabled
		return nil
	})
	if err != nil {
		return fmt.Errorf("users: set disabled %q: %w", id, err)
	}
	return nil
}

// Remove deletes the user with the given ID, its email index entry (so the
// address may sign up or be invited again) and its pending password reset,
// and returns the removed user. Errors wrap ErrNotFound, ErrLastAdmin (the
// user is the last active admin), or ctx's error.
func (s *Store) Remove(ctx context.Context, id string) (User, error) {
	if err := ctx.Err(); err != nil {
		return User{}, fmt.Errorf("users: remove %q: %w", id, err)
	}
	var u User
	err := s.db.Update(func(tx *bbolt.Tx) error {
		var err error
		if u, err = getUser(tx, id); err != nil {
			return err
		}
		if err := checkNotLastAdmin(tx, u); err != nil {
			return err
		}
		if err := tx.Bucket(bucketUsers).Delete([]byte(u.ID)); err != nil {
			return fmt.Errorf("deleting user: %w", err)
		}
		byEmail := tx.Bucket(bucketByEmail)
		if bytes.Equal(byEmail.Get([]byte(u.Email)), []byte(u.ID)) {
			if err := byEmail.Delete([]byte(u.Email)); err != nil {
				return fmt.Errorf("deleting email index: %w", err)
			}
		}
		return deleteResetFor(tx, u.ID)
	})
	if err != nil {
		return User{}, fmt.Errorf("users: remove %q: %w", id, err)
	}
	return u, nil
}

// ByEmailOrID returns the user ref names, for the command line: if ref
// contains '@' it is an email address (see ByEmail), otherwise a user ID
// (see Get). The error wraps ErrNotFound if there is no such user.
func (s *Store) ByEmailOrID(ctx context.Context, ref string) (User, error) {
	if strings.Contains(ref, "@") {
		return s.ByEmail(ctx, ref)
	}
	return s.Get(ctx, ref)
}

// checkNotLastAdmin returns ErrLastAdmin if u is an active admin and no
// other user in tx is one, that is if demoting, disabling or removing u
// would leave no active admin.
func checkNotLastAdmin(tx *bbolt.Tx, u User) error {
	if !u.activeAdmin() {
		return nil
	}
	c := tx.Bucket(bucketUsers).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if string(k) == u.ID {
			continue
		}
		other, err := decodeUser(v)
		if err != nil {
			return err
		}
		if other.activeAdmin() {
			return nil
		}
	}
	return ErrLastAdmin
}
