package op

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/latchkey-dev/latchkey/users"
)

// Messages that must not differ between the cases they cover, so a link
// reveals nothing about accounts or other links.
const (
	msgInvitationInvalid = "Invitation links work once and expire after a while. Ask an administrator of your organization for a new one."
	msgResetInvalid      = "Password reset links work once and expire after an hour. Ask an administrator for a new one."
)

// signedIn returns the browser's session and its user, or sends the
// browser to sign in and back (ok false).
func (i *Issuer) signedIn(w http.ResponseWriter, r *http.Request) (session, users.User, bool) {
	if s, u, err := i.currentSession(r); err == nil {
		return s, u, true
	}
	target := i.signInURL
	if strings.Contains(target, "%s") {
		target = fmt.Sprintf(target, url.QueryEscape(r.URL.Path))
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
	return session{}, users.User{}, false
}

func (i *Issuer) orgName(r *http.Request, u users.User) string {
	org, err := i.users.Organization(r.Context(), u.OrgID)
	if err != nil {
		return ""
	}
	return org.Name
}

// handleSettings is Settings > Personal: display name, password, and
// signing out of every session.
func (i *Issuer) handleSettings(w http.ResponseWriter, r *http.Request) {
	_, u, ok := i.signedIn(w, r)
	if !ok {
		return
	}
	data := pageData{Page: "settings", User: u, Name: u.Name, Org: i.orgName(r, u)}
	if r.Method == http.MethodGet {
		i.render(w, r, http.StatusOK, "settings", data)
		return
	}
	if !i.formValid(w, r) {
		return
	}
	ctx := r.Context()
	switch r.PostFormValue("action") {
	case "name":
		data.Name = strings.TrimSpace(r.PostFormValue("name"))
		nu, err := i.users.SetName(ctx, u.ID, data.Name)
		if err != nil {
			field, msg := signupError(err, "")
			if field == "" {
				i.serverError(w, r, err)
				return
			}
			data.Errors = map[string]string{"name": msg}
			i.render(w, r, http.StatusBadRequest, "settings", data)
			return
		}
		data.User, data.Notice = nu, "Your name is saved. Applications see it at your next sign-in."
		i.log.Info("audit: name changed", "event", "user.name_changed", "sub", u.ID, "remote", i.clientIP(r))
		i.render(w, r, http.StatusOK, "settings", data)
	case "password":
		key := "settings:" + u.ID
		if d := i.accountThrottle.attempt(key); d > 0 {
			w.Header().Set("Retry-After", fmt.Sprint(max(int(d/time.Second), 1)))
			data.Errors = map[string]string{"current": "Too many attempts. Wait a moment and try again."}
			i.render(w, r, http.StatusTooManyRequests, "settings", data)
			return
		}
		_, err := i.users.ChangePassword(ctx, u.ID, r.PostFormValue("current"), r.PostFormValue("new"))
		switch {
		case errors.Is(err, users.ErrInvalidCredentials):
			data.Errors = map[string]string{"current": "That is not your current password."}
		case errors.Is(err, users.ErrPasswordTooShort), errors.Is(err, users.ErrPasswordTooLong):
			_, msg := signupError(err, "")
			data.Errors = map[string]string{"new": msg}
		case err != nil:
			i.serverError(w, r, err)
			return
		}
		if data.Errors != nil {
			i.render(w, r, http.StatusBadRequest, "settings", data)
			return
		}
		i.accountThrottle.succeed(key)
		// Every other session is over (SessionsNotBefore); this browser
		// gets a fresh one.
		if _, err := i.newSession(w, r, u.ID, []string{"pwd"}); err != nil {
			i.serverError(w, r, err)
			return
		}
		i.log.Info("audit: password changed", "event", "user.password_changed", "sub", u.ID, "remote", i.clientIP(r))
		data.Notice = "Your password is changed. Every other session of your account has been signed out."
		i.render(w, r, http.StatusOK, "settings", data)
	case "signout-all":
		if _, err := i.users.RevokeSessions(ctx, u.ID); err != nil {
			i.serverError(w, r, err)
			return
		}
		i.endSession(w, r)
		i.log.Info("audit: signed out everywhere", "event", "user.sessions_revoked", "sub", u.ID, "remote", i.clientIP(r))
		http.Redirect(w, r, i.signOutURL, http.StatusSeeOther)
	default:
		i.renderMessage(w, r, http.StatusBadRequest, "Unknown action", "Reload the page and try again.")
	}
}

// handleAdmin is the Organization page: members, roles, invitations.
func (i *Issuer) handleAdmin(w http.ResponseWriter, r *http.Request) {
	_, u, ok := i.signedIn(w, r)
	if !ok {
		return
	}
	if u.Role != users.RoleAdmin {
		i.render(w, r, http.StatusForbidden, "message", pageData{User: u, Title: "Administrators only",
			Heading: "Administrators only", Message: "Only administrators of the organization can manage its members."})
		return
	}
	data := pageData{Page: "admin", User: u, Org: i.orgName(r, u), Wide: true}
	status := http.StatusOK
	if r.Method == http.MethodPost {
		if !i.formValid(w, r) {
			return
		}
		status = i.adminAction(r, u, &data)
		if status == http.StatusInternalServerError {
			i.serverError(w, r, errors.New(data.Error))
			return
		}
		if status == 0 {
			// The admin changed their own role: the page is no longer theirs.
			http.Redirect(w, r, i.path+"/settings", http.StatusSeeOther)
			return
		}
	}
	if err := i.loadOrganization(r, &data); err != nil {
		i.serverError(w, r, err)
		return
	}
	i.render(w, r, status, "admin", data)
}

// adminAction performs one POSTed action and fills in the page's notice,
// error or link. It returns the status to answer with; 0 when the admin
// lost the admin role.
func (i *Issuer) adminAction(r *http.Request, admin users.User, data *pageData) int {
	ctx := r.Context()
	audit := func(msg, event string, args ...any) {
		i.log.Info("audit: "+msg, append([]any{"event", event, "by", admin.ID, "remote", i.clientIP(r)}, args...)...)
	}
	target := func() (users.User, bool) {
		t, err := i.users.Get(ctx, r.PostFormValue("user"))
		if err != nil {
			data.Error = "That member no longer exists."
			return users.User{}, false
		}
		return t, true
	}
	lastAdmin := func(t users.User) int {
		data.Error = t.Email + " is the last active administrator: promote another member to admin first."
		return http.StatusConflict
	}
	switch action := r.PostFormValue("action"); action {
	case "invite":
		data.Email = strings.TrimSpace(r.PostFormValue("email"))
		role := users.Role(r.PostFormValue("role"))
		inv, token, err := i.users.CreateInvitation(ctx, data.Email, role, admin.ID, 0)
		if err != nil {
			data.Errors = map[string]string{"email": i.invitationError(err)}
			if data.Errors["email"] == "" {
				data.Error = err.Error()
				return http.StatusInternalServerError
			}
			return http.StatusBadRequest
		}
		audit("invitation created", "invitation.created", "email", inv.Email, "role", string(inv.Role))
		data.Email = ""
		data.Link, data.LinkLabel = i.issuer+"/invite?token="+url.QueryEscape(token), "Invitation link for "+inv.Email+" ("+string(inv.Role)+")"
		data.LinkExpires = inv.ExpiresAt.UTC().Format("2 Jan 2006 15:04 MST")
	case "revoke-invite":
		inv, err := i.users.RevokeInvitation(ctx, r.PostFormValue("invitation"))
		if err != nil {
			data.Error = "That invitation is no longer pending."
			return http.StatusNotFound
		}
		audit("invitation revoked", "invitation.revoked", "email", inv.Email)
		data.Notice = "The invitation for " + inv.Email + " is revoked."
	case "role":
		t, ok := target()
		if !ok {
			return http.StatusNotFound
		}
		nu, err := i.users.SetRole(ctx, t.ID, users.Role(r.PostFormValue("role")))
		switch {
		case errors.Is(err, users.ErrLastAdmin):
			return lastAdmin(t)
		case errors.Is(err, users.ErrInvalidRole):
			data.Error = "Choose admin or viewer."
			return http.StatusBadRequest
		case err != nil:
			data.Error = err.Error()
			return http.StatusInternalServerError
		}
		audit("role changed", "user.role_changed", "sub", t.ID, "email", t.Email, "from", string(t.Role), "to", string(nu.Role))
		data.Notice = fmt.Sprintf("%s is now %s. It shows in their next token.", nu.Email, nu.Role)
		if t.ID == admin.ID && nu.Role != users.RoleAdmin {
			return 0
		}
	case "disable", "enable":
		t, ok := target()
		if !ok {
			return http.StatusNotFound
		}
		err := i.users.SetDisabled(ctx, t.ID, action == "disable")
		switch {
		case errors.Is(err, users.ErrLastAdmin):
			return lastAdmin(t)
		case err != nil:
			data.Error = err.Error()
			return http.StatusInternalServerError
		}
		audit("member "+action+"d", "user."+action+"d", "sub", t.ID, "email", t.Email)
		data.Notice = t.Email + " is " + action + "d."
		if action == "disable" {
			data.Notice += " Their sessions and refresh tokens stopped working."
		}
	case "remove":
		t, ok := target()
		if !ok {
			return http.StatusNotFound
		}
		_, err := i.users.Remove(ctx, t.ID)
		switch {
		case errors.Is(err, users.ErrLastAdmin):
			return lastAdmin(t)
		case err != nil:
			data.Error = err.Error()
			return http.StatusInternalServerError
		}
		if err := i.store.deleteRefresh(func(rt refreshToken) bool { return rt.Subject == t.ID }); err != nil {
			i.log.Error("remove member: revoke refresh tokens", "err", err)
		}
		audit("member removed", "user.removed", "sub", t.ID, "email", t.Email)
		data.Notice = t.Email + " is removed from the organization."
	case "reset-link":
		t, ok := target()
		if !ok {
			return http.StatusNotFound
		}
		token, exp, err := i.users.CreateResetToken(ctx, t.ID, 0)
		if err != nil {
			data.Error = err.Error()
			return http.StatusInternalServerError
		}
		audit("password reset link created", "reset_link.created", "sub", t.ID, "email", t.Email)
		data.Link, data.LinkLabel = i.issuer+"/reset?token="+url.QueryEscape(token), "Password reset link for "+t.Email
		data.LinkExpires = exp.UTC().Format("2 Jan 2006 15:04 MST")
	default:
		data.Error = "Unknown action; reload the page."
		return http.StatusBadRequest
	}
	return http.StatusOK
}

func (i *Issuer) invitationError(err error) string {
	switch {
	case errors.Is(err, users.ErrInvalidEmail):
		return "Enter an email address such as name@example.com."
	case errors.Is(err, users.ErrEmailDomain):
		if i.emailDomain != "" {
			return "Only @" + i.emailDomain + " addresses can join this organization (validEmailDomain)."
		}
		return "This email domain cannot join this organization."
	case errors.Is(err, users.ErrEmailTaken):
		return "This address already has an account."
	case errors.Is(err, users.ErrInvalidRole):
		return "Choose admin or viewer."
	case errors.Is(err, users.ErrNotAdmin):
		return "Only administrators can invite."
	}
	return ""
}

// loadOrganization fills the members and pending invitations.
func (i *Issuer) loadOrganization(r *http.Request, data *pageData) error {
	list, err := i.users.List(r.Context())
	if err != nil {
		return err
	}
	for _, m := range list {
		last := "never"
		if !m.LastLoginAt.IsZero() {
			last = m.LastLoginAt.UTC().Format("2006-01-02 15:04 MST")
		}
		data.Members = append(data.Members, member{ID: m.ID, Email: m.Email, Name: m.Name, Role: string(m.Role), LastLogin: last, Disabled: m.Disabled})
	}
	invs, err := i.users.Invitations(r.Context())
	if err != nil {
		return err
	}
	for _, inv := range invs {
		data.Invitations = append(data.Invitations, invitationRow{ID: inv.ID, Email: inv.Email, Role: string(inv.Role), Expires: inv.ExpiresAt.UTC().Format("2006-01-02 15:04 MST")})
	}
	return nil
}

// handleInvite lets an invited person choose a name and password and join.
func (i *Issuer) handleInvite(w http.ResponseWriter, r *http.Request) {
	token := r.FormValue("token")
	invalid := func() {
		i.renderMessage(w, r, http.StatusBadRequest, "This invitation link is not valid", msgInvitationInvalid)
	}
	inv, err := i.users.Invitation(r.Context(), token)
	if err != nil {
		invalid()
		return
	}
	data := pageData{Token: token, Email: inv.Email, Role: string(inv.Role)}
	if org, err := i.users.Organization(r.Context(), inv.OrgID); err == nil {
		data.Org = org.Name
	}
	if r.Method == http.MethodGet {
		i.render(w, r, http.StatusOK, "invite", data)
		return
	}
	if !i.formValid(w, r) {
		return
	}
	data.Name = strings.TrimSpace(r.PostFormValue("name"))
	u, err := i.users.AcceptInvitation(r.Context(), token, data.Name, r.PostFormValue("password"))
	if err != nil {
		if errors.Is(err, users.ErrInvitationInvalid) || errors.Is(err, users.ErrEmailTaken) {
			invalid()
			return
		}
		field, msg := signupError(err, "")
		if field == "" || field == "email" {
			i.serverError(w, r, err)
			return
		}
		data.Errors = map[string]string{field: msg}
		i.render(w, r, http.StatusBadRequest, "invite", data)
		return
	}
	i.recordSignIn(r, u.ID)
	i.log.Info("audit: invitation accepted", "event", "invitation.accepted", "sub", u.ID, "email", u.Email, "role", string(u.Role), "remote", i.clientIP(r))
	if _, err := i.newSession(w, r, u.ID, []string{"pwd"}); err != nil {
		i.serverError(w, r, err)
		return
	}
	http.Redirect(w, r, i.continueURL(), http.StatusSeeOther)
}

// handleReset sets a new password from an administrator's reset link.
func (i *Issuer) handleReset(w http.ResponseWriter, r *http.Request) {
	token := r.FormValue("token")
	invalid := func() {
		i.renderMessage(w, r, http.StatusBadRequest, "This password reset link is not valid", msgResetInvalid)
	}
	u, err := i.users.ResetTarget(r.Context(), token)
	if err != nil {
		invalid()
		return
	}
	data := pageData{Token: token, Email: u.Email}
	if r.Method == http.MethodGet {
		i.render(w, r, http.StatusOK, "reset", data)
		return
	}
	if !i.formValid(w, r) {
		return
	}
	u, err = i.users.ResetPassword(r.Context(), token, r.PostFormValue("password"))
	if err != nil {
		if errors.Is(err, users.ErrResetInvalid) {
			invalid()
			return
		}
		field, msg := signupError(err, "")
		if field != "password" {
			i.serverError(w, r, err)
			return
		}
		data.Errors = map[string]string{"password": msg}
		i.render(w, r, http.StatusBadRequest, "reset", data)
		return
	}
	i.recordSignIn(r, u.ID)
	i.log.Info("audit: password reset", "event", "user.password_reset", "sub", u.ID, "remote", i.clientIP(r))
	if _, err := i.newSession(w, r, u.ID, []string{"pwd"}); err != nil {
		i.serverError(w, r, err)
		return
	}
	http.Redirect(w, r, i.continueURL(), http.StatusSeeOther)
}

// continueURL is where a browser goes after joining or resetting: the
// application's sign-in, which completes at once thanks to the new issuer
// session.
func (i *Issuer) continueURL() string {
	if strings.Contains(i.signInURL, "%s") {
		return fmt.Sprintf(i.signInURL, url.QueryEscape("/"))
	}
	return i.signInURL
}
