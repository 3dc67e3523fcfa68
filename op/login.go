package op

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
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
	if ar.hasPrompt(oidc.PromptLogin) {
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
		if s, err := i.currentSession(r); err == nil && i.satisfies(ar, s) {
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
	ipKey := clientIP(r)
	acctKey := strings.ToLower(data.Email)
	if d := max(i.addressThrottle.wait(ipKey), i.accountThrottle.wait(acctKey)); d > 0 {
		secs := int(d.Round(time.Second) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
		data.Error = fmt.Sprintf("Too many attempts. Wait %d seconds and try again.", max(secs, 1))
		i.log.Warn("audit: sign-in throttled", "event", "signin.throttled", "remote", clientIP(r))
		i.render(w, r, http.StatusTooManyRequests, "login", data)
		return
	}
	u, err := i.accounts.Authenticate(r.Context(), data.Email, password)
	if err != nil {
		if !errors.Is(err, users.ErrInvalidCredentials) && !errors.Is(err, users.ErrDisabled) {
			i.serverError(w, r, err)
			return
		}
		i.addressThrottle.fail(ipKey)
		i.accountThrottle.fail(acctKey)
		i.log.Info("audit: sign-in failed", "event", "signin.failure", "remote", clientIP(r))
		data.Error = msgBadLogin
		i.render(w, r, http.StatusUnauthorized, "login", data)
		return
	}
	i.accountThrottle.succeed(acctKey)
	s, err := i.newSession(w, r, u.ID, []string{"pwd"})
	if err != nil {
		i.serverError(w, r, err)
		return
	}
	i.log.Info("audit: sign-in", "event", "signin.success", "sub", u.ID, "client_id", ar.GetClientID(), "remote", clientIP(r))
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
	u, err := i.accounts.SignUp(r.Context(), data.Email, data.Name, r.PostFormValue("password"))
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
	i.log.Info("audit: account created", "event", "account.created", "sub", u.ID, "role", string(u.Role), "remote", clientIP(r))
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

// clientIP is the address the request came from (the connection's peer;
// latchkey does not trust forwarding headers it cannot verify).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
