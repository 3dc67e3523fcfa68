package op

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	zop "github.com/zitadel/oidc/v3/pkg/op"

	"github.com/latchkey-dev/latchkey/users"
)

const (
	// promptCreate asks for the Create Account page (OpenID Connect
	// Initiating User Registration 1.0).
	promptCreate = "create"
	csrfCookie   = "latchkey_csrf"
	maxFormBytes = 64 << 10
	msgBadLogin  = "Incorrect email or password."
)

// page wraps an HTML page handler: security headers, a bounded body, and
// net/http's cross-origin protection for unsafe methods.
func (i *Issuer) page(h http.HandlerFunc) http.Handler {
	cop := http.NewCrossOriginProtection()
	return cop.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hdr := w.Header()
		hdr.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'")
		hdr.Set("X-Frame-Options", "DENY")
		hdr.Set("X-Content-Type-Options", "nosniff")
		hdr.Set("Referrer-Policy", "no-referrer")
		hdr.Set("Cache-Control", "no-store")
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		h(w, r)
	}))
}

// csrfToken returns the form token for this browser, setting the cookie it
// is bound to when the browser has none.
func (i *Issuer) csrfToken(w http.ResponseWriter, r *http.Request) string {
	c, err := r.Cookie(csrfCookie)
	value := ""
	if err == nil && len(c.Value) >= 32 {
		value = c.Value
	} else {
		value = i.random(32)
		http.SetCookie(w, i.cookie(csrfCookie, value, time.Time{}))
	}
	return i.csrfMAC(value)
}

func (i *Issuer) csrfMAC(cookieValue string) string {
	m := hmac.New(sha256.New, i.csrfKey)
	m.Write([]byte("latchkey-form|" + cookieValue))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkCSRF verifies the posted token against the browser's cookie.
func (i *Issuer) checkCSRF(r *http.Request) bool {
	c, err := r.Cookie(csrfCookie)
	if err != nil || len(c.Value) < 32 {
		return false
	}
	return hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(i.csrfMAC(c.Value)))
}

// formValid checks a posted form's CSRF token; when it is wrong the
// browser gets a page saying so, and formValid reports false.
func (i *Issuer) formValid(w http.ResponseWriter, r *http.Request) bool {
	if i.checkCSRF(r) {
		return true
	}
	i.renderMessage(w, r, http.StatusForbidden, "This form has expired", "Reload the page and try again.")
	return false
}

// formRequest reads the authorization request named by the id parameter;
// ok is false (and the page answered) when it is missing or expired.
func (i *Issuer) formRequest(w http.ResponseWriter, r *http.Request, optional bool) (*authRequest, bool) {
	id := r.FormValue("id")
	if id == "" && optional {
		return nil, true
	}
	ar, err := i.store.authRequest(id)
	if err != nil {
		i.renderMessage(w, r, http.StatusBadRequest, "This sign-in link has expired",
			"Sign-in links are good for a limited time. Go back to the application and sign in again.")
		return nil, false
	}
	return ar, true
}

// satisfies reports whether an existing session may answer the request
// without asking for the password (prompt=login sets max_age to 0).
func (i *Issuer) satisfies(ar *authRequest, s session) bool {
	if ar.HintSubject != "" && ar.HintSubject != s.UserID {
		return false
	}
	if ar.Request.MaxAge != nil {
		// max_age=0 (also what prompt=login becomes) always asks again, even
		// when the clock has not moved since the last sign-in.
		age := i.now().Sub(s.AuthTime)
		if *ar.Request.MaxAge == 0 || age > time.Duration(*ar.Request.MaxAge)*time.Second {
			return false
		}
	}
	return true
}

// finish completes the authorization request with the session and sends the
// browser to zitadel's callback, which issues the code.
func (i *Issuer) finish(w http.ResponseWriter, r *http.Request, ar *authRequest, s session) {
	if err := i.store.completeAuthRequest(ar.ID, s.UserID, s.AuthTime, s.AMR, s.Hash); err != nil {
		i.renderMessage(w, r, http.StatusBadRequest, "This sign-in has already been used",
			"Go back to the application and sign in again.")
		return
	}
	http.Redirect(w, r, i.callbackURL(ar.ID), http.StatusSeeOther)
}

func (i *Issuer) handleLogin(w http.ResponseWriter, r *http.Request) {
	ar, ok := i.formRequest(w, r, false)
	if !ok {
		return
	}
	data := pageData{AuthRequestID: ar.ID, Email: ar.Request.LoginHint}
	if r.Method == http.MethodGet {
		if s, _, err := i.currentSession(r); err == nil && i.satisfies(ar, s) {
			i.finish(w, r, ar, s)
			return
		}
		if ar.hasPrompt(oidc.PromptNone) {
			zop.AuthRequestError(w, r, ar, oidc.ErrLoginRequired().WithDescription("the user is not signed in"), i.provider)
			return
		}
		setup, err := i.accounts.NeedsSetup(r.Context())
		if err != nil {
			i.serverError(w, r, err)
			return
		}
		if setup || ar.hasPrompt(promptCreate) {
			data.FirstAccount = setup
			i.render(w, r, http.StatusOK, "signup", data)
			return
		}
		i.render(w, r, http.StatusOK, "login", data)
		return
	}
	if !i.formValid(w, r) {
		return
	}
	data.Email = strings.TrimSpace(r.PostFormValue("email"))
	password := r.PostFormValue("password")
	ipKey := i.clientIP(r)
	acctKey := accountKey(data.Email)
	device := i.knownDevice(r, acctKey)
	if device != "" {
		// A browser that signed in to this account before has its own
		// budget: an attacker's failures elsewhere cannot lock it out.
		acctKey = "device:" + device + ":" + acctKey
	}
	// Attempts are counted before the password is checked, so concurrent
	// guesses are throttled as they arrive.
	d := i.addressThrottle.attempt(ipKey)
	if d == 0 {
		if d = i.accountThrottle.attempt(acctKey); d > 0 {
			i.addressThrottle.undo(ipKey)
		}
	}
	if d > 0 {
		secs := max(int(d.Round(time.Second)/time.Second), 1)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		data.Error = fmt.Sprintf("Too many attempts. Wait %d seconds and try again.", secs)
		i.log.Warn("audit: sign-in throttled", "event", "signin.throttled", "remote", ipKey)
		i.render(w, r, http.StatusTooManyRequests, "login", data)
		return
	}
	u, err := i.accounts.Authenticate(r.Context(), data.Email, password)
	if err != nil {
		switch {
		case errors.Is(err, users.ErrBusy):
			i.addressThrottle.undo(ipKey)
			i.accountThrottle.undo(acctKey)
			w.Header().Set("Retry-After", "2")
			data.Error = "Too many sign-ins at this moment. Try again in a few seconds."
			i.render(w, r, http.StatusServiceUnavailable, "login", data)
			return
		case !errors.Is(err, users.ErrInvalidCredentials) && !errors.Is(err, users.ErrDisabled):
			i.serverError(w, r, err)
			return
		}
		i.log.Info("audit: sign-in failed", "event", "signin.failure", "remote", ipKey)
		data.Error = msgBadLogin
		i.render(w, r, http.StatusUnauthorized, "login", data)
		return
	}
	i.addressThrottle.undo(ipKey)
	i.accountThrottle.succeed(acctKey)
	i.rememberDevice(w, r, accountKey(u.Email))
	s, err := i.newSession(w, r, u.ID, []string{"pwd"})
	if err != nil {
		i.serverError(w, r, err)
		return
	}
	i.log.Info("audit: sign-in", "event", "signin.success", "sub", u.ID, "client_id", ar.GetClientID(), "remote", ipKey)
	i.finish(w, r, ar, s)
}

func (i *Issuer) handleSignup(w http.ResponseWriter, r *http.Request) {
	ar, ok := i.formRequest(w, r, true)
	if !ok {
		return
	}
	var data pageData
	if ar != nil {
		data.AuthRequestID = ar.ID
	}
	setup, err := i.accounts.NeedsSetup(r.Context())
	if err != nil {
		i.serverError(w, r, err)
		return
	}
	data.FirstAccount = setup
	if r.Method == http.MethodGet {
		i.render(w, r, http.StatusOK, "signup", data)
		return
	}
	if !i.formValid(w, r) {
		return
	}
	data.Email = strings.TrimSpace(r.PostFormValue("email"))
	data.Name = strings.TrimSpace(r.PostFormValue("name"))
	ipKey := i.clientIP(r)
	if d := i.addressThrottle.attempt(ipKey); d > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(max(int(d/time.Second), 1)))
		data.Error = "Too many attempts from your network. Wait a moment and try again."
		i.render(w, r, http.StatusTooManyRequests, "signup", data)
		return
	}
	u, err := i.accounts.SignUp(r.Context(), data.Email, data.Name, r.PostFormValue("password"))
	if errors.Is(err, users.ErrBusy) {
		i.addressThrottle.undo(ipKey)
		w.Header().Set("Retry-After", "2")
		data.Error = "Too many sign-ins at this moment. Try again in a few seconds."
		i.render(w, r, http.StatusServiceUnavailable, "signup", data)
		return
	}
	if err != nil {
		field, msg := signupError(err, i.emailDomain)
		if field == "" {
			i.serverError(w, r, err)
			return
		}
		data.Errors = map[string]string{field: msg}
		i.render(w, r, http.StatusBadRequest, "signup", data)
		return
	}
	i.addressThrottle.undo(ipKey)
	i.recordSignIn(r, u.ID)
	i.log.Info("audit: account created", "event", "account.created", "sub", u.ID, "role", string(u.Role), "remote", ipKey)
	s, err := i.newSession(w, r, u.ID, []string{"pwd"})
	if err != nil {
		i.serverError(w, r, err)
		return
	}
	if ar == nil {
		http.Redirect(w, r, i.homeURL, http.StatusSeeOther)
		return
	}
	i.finish(w, r, ar, s)
}

// signupError maps a users error to the form field it concerns and a
// message for a person; field is "" for an unexpected error.
func signupError(err error, domain string) (field, msg string) {
	switch {
	case errors.Is(err, users.ErrInvalidEmail):
		return "email", "Enter an email address such as name@example.com."
	case errors.Is(err, users.ErrEmailDomain):
		if domain != "" {
			return "email", "Use your @" + domain + " address: only that domain can create accounts here."
		}
		return "email", "This email domain cannot create accounts here."
	case errors.Is(err, users.ErrEmailTaken):
		return "email", "An account with this email already exists. Sign in instead."
	case errors.Is(err, users.ErrNameRequired):
		return "name", "Enter your name (at most 200 characters)."
	case errors.Is(err, users.ErrPasswordTooShort):
		return "password", fmt.Sprintf("Use at least %d characters.", users.MinPasswordLength)
	case errors.Is(err, users.ErrPasswordTooLong):
		return "password", fmt.Sprintf("Use at most %d characters.", users.MaxPasswordLength)
	case errors.Is(err, users.ErrNameTooLong), errors.Is(err, users.ErrInvalidName):
		return "name", "Enter your name: at most 200 characters, no control characters."
	case errors.Is(err, users.ErrSignupClosed):
		return "email", "Accounts are created by invitation here: ask an administrator of your organization for an invitation link."
	}
	return "", ""
}

func (i *Issuer) serverError(w http.ResponseWriter, r *http.Request, err error) {
	i.log.Error("issuer page", "path", r.URL.Path, "err", err)
	i.renderMessage(w, r, http.StatusInternalServerError, "Something went wrong", "Try again in a moment.")
}

// clientIP is the address the request came from: the connection's peer,
// or, when that peer is a trusted proxy (Config.TrustedProxies), the
// nearest address in X-Forwarded-For that is not one.
func (i *Issuer) clientIP(r *http.Request) string {
	peer := r.RemoteAddr
	if host, _, err := net.SplitHostPort(peer); err == nil {
		peer = host
	}
	addr, err := netip.ParseAddr(peer)
	if err != nil || !i.trusted(addr) {
		return peer
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for n := len(hops) - 1; n >= 0; n-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[n]))
		if err != nil {
			return peer // a malformed chain: trust nothing in it
		}
		if !i.trusted(hop) {
			return hop.Unmap().String()
		}
	}
	return peer
}

func (i *Issuer) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range i.trustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// accountKey is the throttle key of an account: the address as users
// normalises it, so case and spaces do not make new keys.
func accountKey(email string) string {
	if n, err := users.NormalizeEmail(email); err == nil {
		return n
	}
	return strings.ToLower(strings.TrimSpace(email))
}

// deviceCookie marks a browser that has signed in to an account before.
const deviceCookie = "latchkey_device"

// knownDevice returns the browser's device ID when its device cookie was
// issued for account, else "".
func (i *Issuer) knownDevice(r *http.Request, account string) string {
	c, err := r.Cookie(deviceCookie)
	if err != nil {
		return ""
	}
	id, mac, ok := strings.Cut(c.Value, ".")
	if !ok || len(id) < 16 || !hmac.Equal([]byte(mac), []byte(i.deviceMAC(id, account))) {
		return ""
	}
	return id
}

// rememberDevice gives the browser a device cookie for account.
func (i *Issuer) rememberDevice(w http.ResponseWriter, r *http.Request, account string) {
	id := i.knownDevice(r, account)
	if id == "" {
		id = i.random(16)
	}
	http.SetCookie(w, i.cookie(deviceCookie, id+"."+i.deviceMAC(id, account), i.now().Add(365*24*time.Hour)))
}

func (i *Issuer) deviceMAC(id, account string) string {
	m := hmac.New(sha256.New, i.csrfKey)
	m.Write([]byte("latchkey-device|" + id + "|" + account))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// recordSignIn notes a sign-in that did not go through Authenticate.
func (i *Issuer) recordSignIn(r *http.Request, id string) {
	if err := i.users.RecordSignIn(r.Context(), id); err != nil {
		i.log.Warn("record sign-in", "sub", id, "err", err)
	}
}
