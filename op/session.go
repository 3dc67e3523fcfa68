package op

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.etcd.io/bbolt"

	"github.com/latchkey-dev/latchkey/users"
)

// sessionCookie is the issuer's own browser session: single sign-on across
// the clients of the built-in issuer.
const sessionCookie = "latchkey_op_session"

var errNoSession = errors.New("op: no valid session")

// session is a signed-in browser. Only the SHA-256 of the cookie value is
// stored, so a copy of the database does not hand out live sessions.
type session struct {
	Hash     string    `json:"-"`
	UserID   string    `json:"sub"`
	AuthTime time.Time `json:"auth_time"`
	AMR      []string  `json:"amr"`
	Expires  time.Time `json:"exp"`
}

func sessionHash(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// newSession stores a fresh session and sets its cookie. Any session the
// browser had is deleted first: the identifier changes at every sign-in.
func (i *Issuer) newSession(w http.ResponseWriter, r *http.Request, userID string, amr []string) (session, error) {
	if old, err := r.Cookie(sessionCookie); err == nil {
		_ = i.store.deleteSession(sessionHash(old.Value))
	}
	now := i.now()
	id := i.random(32)
	s := session{Hash: sessionHash(id), UserID: userID, AuthTime: now, AMR: amr, Expires: now.Add(i.life.Session)}
	raw, err := json.Marshal(s)
	if err != nil {
		return session{}, fmt.Errorf("op: encode session: %w", err)
	}
	err = i.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketSessions).Put([]byte(s.Hash), raw)
	})
	if err != nil {
		return session{}, fmt.Errorf("op: store session: %w", err)
	}
	http.SetCookie(w, i.cookie(sessionCookie, id, s.Expires))
	return s, nil
}

// currentSession returns the browser's valid session, if any, and its
// (active) user.
func (i *Issuer) currentSession(r *http.Request) (session, users.User, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return session{}, users.User{}, errNoSession
	}
	s := session{Hash: sessionHash(c.Value)}
	err = i.db.View(func(tx *bbolt.Tx) error {
		raw := tx.Bucket(bucketSessions).Get([]byte(s.Hash))
		if raw == nil {
			return errNoSession
		}
		return json.Unmarshal(raw, &s)
	})
	if err != nil || i.now().After(s.Expires) {
		return session{}, users.User{}, errNoSession
	}
	u, err := i.store.activeUser(r.Context(), s.UserID, s.AuthTime)
	if err != nil {
		return session{}, users.User{}, errNoSession
	}
	return s, u, nil
}

func (s *storage) deleteSession(hash string) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketSessions).Delete([]byte(hash))
	})
}

// endSession deletes the browser's session and clears its cookie.
func (i *Issuer) endSession(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		if err := i.store.deleteSession(sessionHash(c.Value)); err != nil {
			i.log.Error("end session", "err", err)
		}
	}
	http.SetCookie(w, i.cookie(sessionCookie, "", time.Unix(0, 0)))
}

// sweepSessions deletes expired sessions and refresh tokens; run at start.
func (i *Issuer) sweepSessions() error {
	now := i.now()
	err := i.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketSessions)
		var doomed [][]byte
		_ = b.ForEach(func(k, v []byte) error {
			var s session
			if json.Unmarshal(v, &s) != nil || now.After(s.Expires) {
				doomed = append(doomed, append([]byte(nil), k...))
			}
			return nil
		})
		for _, k := range doomed {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("op: sweep sessions: %w", err)
	}
	return i.store.deleteRefresh(func(r refreshToken) bool { return now.After(r.Expires) })
}

// cookie builds one of the issuer's cookies: HttpOnly, SameSite=Lax, scoped
// to the issuer's path, Secure when the issuer is https.
func (i *Issuer) cookie(name, value string, expires time.Time) *http.Cookie {
	c := &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     i.path + "/",
		HttpOnly: true,
		Secure:   i.secure,
		SameSite: http.SameSiteLaxMode,
		Expires:  expires,
	}
	if value == "" {
		c.MaxAge = -1
	}
	return c
}
