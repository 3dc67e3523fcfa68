package users

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/bbolt"
)

// DefaultInvitationTTL is how long an invitation stays valid when
// CreateInvitation is given no positive TTL.
const DefaultInvitationTTL = 7 * 24 * time.Hour

// Invitation lets one email address create an account, with a role chosen
// by an admin, by presenting the secret token CreateInvitation returned.
// The token is not part of the Invitation: the database holds only its
// SHA-256 digest. An invitation is pending until it expires, is revoked,
// is replaced by a new invitation of the same address, or is accepted.
type Invitation struct {
	// ID is random (128 bits, lower-case hex) and names the invitation
	// for listing and revoking. It is not secret and is not the token.
	ID string `json:"id"`
	// Email is the invited address, normalised by NormalizeEmail.
	Email string `json:"email"`
	// Role is the role the account gets when the invitation is accepted.
	Role Role `json:"role"`
	// OrgID is the organization the account joins.
	OrgID string `json:"org_id"`
	// InvitedBy is the ID of the admin who created the invitation, or ""
	// when it was created from the command line.
	InvitedBy string `json:"invited_by"`
	// CreatedAt is when the invitation was created.
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt is when the invitation stops being valid; it is valid
	// strictly before this instant.
	ExpiresAt time.Time `json:"expires_at"`
}

// CreateInvitation invites email to create an account with role, and
// returns the invitation and its secret token, to be sent to the invitee
// (typically in a link). The token is 32 random bytes in unpadded base64url;
// only its SHA-256 digest is stored, so it cannot be recovered later. The
// invitation expires after ttl, or DefaultInvitationTTL if ttl <= 0.
//
// invitedBy is the ID of the inviting admin, or "" for an invitation made
// from the command line; a non-empty invitedBy must be an active admin when
// the invitation is written, or the error wraps ErrNotAdmin.
//
// Inviting an address that already has a pending invitation replaces it, in
// the same transaction, so the old token stops working. Expired
// invitations are deleted in that transaction too.
//
// Errors wrap ErrInvalidEmail, ErrInvalidRole, ErrEmailDomain,
// ErrNoOrganization (no account exists yet: the first one signs up),
// ErrNotAdmin, ErrEmailTaken (the address already has an account), or
// ctx's error.
func (s *Store) CreateInvitation(ctx context.Context, email string, role Role, invitedBy string, ttl time.Duration) (Invitation, string, error) {
	normalized, err := NormalizeEmail(email)
	if err != nil {
		return Invitation{}, "", fmt.Errorf("users: create invitation: %w", err)
	}
	if !role.Valid() {
		return Invitation{}, "", fmt.Errorf("users: create invitation %q: %w %q", normalized, ErrInvalidRole, role)
	}
	if !domainAllowed(s.domain, normalized) {
		return Invitation{}, "", fmt.Errorf("users: create invitation %q: %w: only %s addresses may be invited", normalized, ErrEmailDomain, s.domain)
	}
	if ttl <= 0 {
		ttl = DefaultInvitationTTL
	}
	if err := ctx.Err(); err != nil {
		return Invitation{}, "", fmt.Errorf("users: create invitation %q: %w", normalized, err)
	}
	id, err := s.newID()
	if err != nil {
		return Invitation{}, "", fmt.Errorf("users: create invitation %q: %w", normalized, err)
	}
	token, key, err := s.newToken()
	if err != nil {
		return Invitation{}, "", fmt.Errorf("users: create invitation %q: %w", normalized, err)
	}
	now := s.now().UTC()
	inv := Invitation{
		ID:        id,
		Email:     normalized,
		Role:      role,
		InvitedBy: invitedBy,
		CreatedAt: now,
		ExpiresAt: now.Add(ttl),
	}

	err = s.db.Update(func(tx *bbolt.Tx) error {
		orgID := tx.Bucket(bucketMeta).Get(metaOrgID)
		if orgID == nil {
			return ErrNoOrganization
		}
		inv.OrgID = string(orgID)
		if invitedBy != "" {
			inviter, err := getUser(tx, invitedBy)
			if errors.Is(err, ErrNotFound) {
				return fmt.Errorf("%w: inviter %q not found", ErrNotAdmin, invitedBy)
			}
			if err != nil {
				return err
			}
			if !inviter.activeAdmin() {
				return fmt.Errorf("%w: inviter %q", ErrNotAdmin, invitedBy)
			}
		}
		if tx.Bucket(bucketByEmail).Get([]byte(normalized)) != nil {
			return ErrEmailTaken
		}
		if err := deleteExpiredInvitations(tx, now); err != nil {
			return err
		}
		if old := tx.Bucket(bucketInviteEmails).Get([]byte(normalized)); old != nil {
			if err := deleteInvitation(tx, bytes.Clone(old), normalized); err != nil {
				return err
			}
		}
		if tx.Bucket(bucketInvitations).Get(key) != nil {
			return errors.New("invitation token collision")
		}
		return putInvitation(tx, key, inv)
	})
	if err != nil {
		return Invitation{}, "", fmt.Errorf("users: create invitation %q: %w", normalized, err)
	}
	return inv, token, nil
}

// Invitations returns the pending, unexpired invitations, oldest first.
func (s *Store) Invitations(ctx context.Context) ([]Invitation, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("users: invitations: %w", err)
	}
	now := s.now()
	var list []Invitation
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketInvitations).ForEach(func(_, v []byte) error {
			inv, err := decodeInvitation(v)
			if err != nil {
				return err
			}
			if !expired(inv.ExpiresAt, now) {
				list = append(list, inv)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("users: invitations: %w", err)
	}
	slices.SortFunc(list, func(a, b Invitation) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return list, nil
}

// RevokeInvitation deletes the pending invitation with the given ID, so its
// token stops working, and returns it. The error wraps ErrNotFound if there
// is no such pending invitation (expired ones included). It does not quote
// id, in case a caller passes a token by mistake.
func (s *Store) RevokeInvitation(ctx context.Context, id string) (Invitation, error) {
	if err := ctx.Err(); err != nil {
		return Invitation{}, fmt.Errorf("users: revoke invitation: %w", err)
	}
	now := s.now()
	var inv Invitation
	err := s.db.Update(func(tx *bbolt.Tx) error {
		var key []byte
		var err error
		if key, inv, err = findInvitation(tx, id); err != nil {
			return err
		}
		if expired(inv.ExpiresAt, now) {
			return ErrNotFound
		}
		return deleteInvitation(tx, key, inv.Email)
	})
	if err != nil {
		return Invitation{}, fmt.Errorf("users: revoke invitation: %w", err)
	}
	return inv, nil
}

// Invitation returns the pending invitation whose secret token is token,
// for example to show the invitee's address on the accept form. An unknown,
// expired, revoked, replaced or used token, or one whose address no longer
// satisfies Options.ValidEmailDomain, returns an error wrapping
// ErrInvitationInvalid, the same for all.
func (s *Store) Invitation(ctx context.Context, token string) (Invitation, error) {
	inv, _, err := s.lookupInvitation(ctx, token)
	if err != nil {
		return Invitation{}, fmt.Errorf("users: invitation: %w", err)
	}
	return inv, nil
}

// lookupInvitation is Invitation without the error prefix; it also
// returns the token's storage key.
func (s *Store) lookupInvitation(ctx context.Context, token string) (Invitation, []byte, error) {
	if err := ctx.Err(); err != nil {
		return Invitation{}, nil, err
	}
	key, ok := tokenKey(token)
	if !ok {
		return Invitation{}, nil, ErrInvitationInvalid
	}
	now := s.now()
	var inv Invitation
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		inv, err = s.usableInvitation(tx, key, now)
		return err
	})
	if err != nil {
		return Invitation{}, nil, err
	}
	return inv, key, nil
}

// AcceptInvitation creates the invited account, with the invitation's email
// address, role and organization, the given name and password, and deletes
// the invitation. name and password follow SignUp's rules. It works under
// every SignupPolicy.
//
// The password is hashed outside any write transaction; then one
// transaction checks the invitation again, deletes it, checks that the
// address still has no account and writes the account, so an invitation
// makes at most one account even when accepted concurrently: the losers get
// ErrInvitationInvalid. The account is durable when AcceptInvitation
// returns.
//
// Errors wrap ErrNameRequired, ErrNameTooLong, ErrInvalidName,
// ErrPasswordTooShort, ErrPasswordTooLong, ErrInvitationInvalid (see
// Invitation), ErrEmailTaken (the address got an account since it was
// invited), or ctx's error.
func (s *Store) AcceptInvitation(ctx context.Context, token, name, password string) (User, error) {
	name, err := validateName(name)
	if err != nil {
		return User{}, fmt.Errorf("users: accept invitation: %w", err)
	}
	if err := ValidatePassword(password); err != nil {
		return User{}, fmt.Errorf("users: accept invitation: %w", err)
	}
	// Check the token before hashing, so that a bad one costs nothing;
	// the write transaction below checks it again.
	inv, key, err := s.lookupInvitation(ctx, token)
	if err != nil {
		return User{}, fmt.Errorf("users: accept invitation: %w", err)
	}

	hash, err := s.hashPassword(ctx, password)
	if err != nil {
		return User{}, fmt.Errorf("users: accept invitation for %q: %w", inv.Email, err)
	}
	userID, err := s.newID()
	if err != nil {
		return User{}, fmt.Errorf("users: accept invitation for %q: %w", inv.Email, err)
	}
	if err := ctx.Err(); err != nil {
		return User{}, fmt.Errorf("users: accept invitation for %q: %w", inv.Email, err)
	}
	now := s.now().UTC()

	var u User
	err = s.db.Update(func(tx *bbolt.Tx) error {
		// Again, now that we hold the write lock: it may have been
		// accepted, revoked or replaced while we hashed.
		cur, err := s.usableInvitation(tx, key, now)
		if err != nil {
			return err
		}
		if err := deleteInvitation(tx, key, cur.Email); err != nil {
			return err
		}
		byEmail := tx.Bucket(bucketByEmail)
		if byEmail.Get([]byte(cur.Email)) != nil {
			return ErrEmailTaken
		}
		if tx.Bucket(bucketOrgs).Get([]byte(cur.OrgID)) == nil {
			return ErrInvitationInvalid
		}
		if tx.Bucket(bucketUsers).Get([]byte(userID)) != nil {
			return fmt.Errorf("user ID collision for %q", userID)
		}
		u = User{
			ID:           userID,
			Email:        cur.Email,
			Name:         name,
			Role:         cur.Role,
			OrgID:        cur.OrgID,
			PasswordHash: hash,
			CreatedAt:    now,
		}
		if err := putUser(tx, u); err != nil {
			return err
		}
		if err := byEmail.Put([]byte(u.Email), []byte(u.ID)); err != nil {
			return fmt.Errorf("writing email index: %w", err)
		}
		return nil
	})
	if err != nil {
		return User{}, fmt.Errorf("users: accept invitation for %q: %w", inv.Email, err)
	}
	return u, nil
}

// usableInvitation reads the invitation stored under key and checks that it
// can be accepted at now: it exists, has not expired, has a valid role and
// an address the domain policy admits. Any failure is ErrInvitationInvalid.
func (s *Store) usableInvitation(tx *bbolt.Tx, key []byte, now time.Time) (Invitation, error) {
	v := tx.Bucket(bucketInvitations).Get(key)
	if v == nil {
		return Invitation{}, ErrInvitationInvalid
	}
	inv, err := decodeInvitation(v)
	if err != nil {
		return Invitation{}, err
	}
	if expired(inv.ExpiresAt, now) || !inv.Role.Valid() || !domainAllowed(s.domain, inv.Email) {
		return Invitation{}, ErrInvitationInvalid
	}
	// An invitation speaks for the administrator who made it: once they
	// are no longer an active administrator, it is void.
	if inv.InvitedBy != "" {
		by, err := getUser(tx, inv.InvitedBy)
		if err != nil || !by.activeAdmin() {
			return Invitation{}, ErrInvitationInvalid
		}
	}
	return inv, nil
}

// findInvitation looks an invitation up by ID, expired or not, and returns
// its storage key; the error is ErrNotFound if there is none. Invitations
// are few, so it scans.
func findInvitation(tx *bbolt.Tx, id string) ([]byte, Invitation, error) {
	c := tx.Bucket(bucketInvitations).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		inv, err := decodeInvitation(v)
		if err != nil {
			return nil, Invitation{}, err
		}
		if inv.ID == id {
			return bytes.Clone(k), inv, nil
		}
	}
	return nil, Invitation{}, ErrNotFound
}

// putInvitation writes inv under key and indexes it by email.
func putInvitation(tx *bbolt.Tx, key []byte, inv Invitation) error {
	v, err := json.Marshal(inv)
	if err != nil {
		return fmt.Errorf("encoding invitation: %w", err)
	}
	if err := tx.Bucket(bucketInvitations).Put(key, v); err != nil {
		return fmt.Errorf("writing invitation: %w", err)
	}
	if err := tx.Bucket(bucketInviteEmails).Put([]byte(inv.Email), key); err != nil {
		return fmt.Errorf("writing invitation email index: %w", err)
	}
	return nil
}

// deleteInvitation deletes the invitation stored under key, and the email
// index entry of email if it points at that invitation.
func deleteInvitation(tx *bbolt.Tx, key []byte, email string) error {
	if err := tx.Bucket(bucketInvitations).Delete(key); err != nil {
		return fmt.Errorf("deleting invitation: %w", err)
	}
	emails := tx.Bucket(bucketInviteEmails)
	if bytes.Equal(emails.Get([]byte(email)), key) {
		if err := emails.Delete([]byte(email)); err != nil {
			return fmt.Errorf("deleting invitation email index: %w", err)
		}
	}
	return nil
}

// deleteExpiredInvitations deletes every invitation expired at now.
func deleteExpiredInvitations(tx *bbolt.Tx, now time.Time) error {
	type stale struct {
		key   []byte
		email string
	}
	var expiredOnes []stale
	err := tx.Bucket(bucketInvitations).ForEach(func(k, v []byte) error {
		inv, err := decodeInvitation(v)
		if err != nil {
			return err
		}
		if expired(inv.ExpiresAt, now) {
			expiredOnes = append(expiredOnes, stale{bytes.Clone(k), inv.Email})
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Deleting while iterating would skip entries.
	for _, e := range expiredOnes {
		if err := deleteInvitation(tx, e.key, e.email); err != nil {
			return err
		}
	}
	return nil
}

// decodeInvitation decodes a stored invitation.
func decodeInvitation(v []byte) (Invitation, error) {
	var inv Invitation
	if err := json.Unmarshal(v, &inv); err != nil {
		return Invitation{}, fmt.Errorf("decoding invitation: %w", err)
	}
	return inv, nil
}
