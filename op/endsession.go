package op

import (
	"context"
	"net/http"
	"time"

	zop "github.com/zitadel/oidc/v3/pkg/op"
)

// endState carries the browser's session into zitadel's end_session
// handling, so the session ends only once the request has been validated.
type endState struct {
	hash string
	done bool
}

type endStateKey struct{}

// handleEndSession is RP-initiated logout. A cross-site request without an
// id_token_hint could be a forged link: the person confirms first (OpenID
// Connect RP-Initiated Logout §2). The issuer session ends only after
// zitadel has validated the request.
func (i *Issuer) handleEndSession(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		i.renderMessage(w, r, http.StatusBadRequest, "This sign-out request is not valid", "Go back to the application and try again.")
		return
	}
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" && r.Form.Get("id_token_hint") == "" {
		hidden := map[string]string{}
		for _, k := range []string{"client_id", "post_logout_redirect_uri", "state", "logout_hint", "ui_locales"} {
			if v := r.Form.Get(k); v != "" {
				hidden[k] = v
			}
		}
		i.render(w, r, http.StatusOK, "logout", pageData{Title: "Sign out", Hidden: hidden})
		return
	}
	if r.Method == http.MethodPost && r.PostForm.Get("csrf") != "" && !i.formValid(w, r) {
		return
	}
	st := &endState{}
	if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" {
		st.hash = sessionHash(c.Value)
	}
	ew := &endWriter{ResponseWriter: w, clear: func() { http.SetCookie(w, i.cookie(sessionCookie, "", time.Unix(0, 0))) }, st: st}
	http.StripPrefix(i.path, i.provider).ServeHTTP(ew, r.WithContext(context.WithValue(r.Context(), endStateKey{}, st)))
}

// endWriter clears the session cookie when zitadel answers a request whose
// session was terminated.
type endWriter struct {
	http.ResponseWriter
	clear func()
	st    *endState
	wrote bool
}

func (e *endWriter) WriteHeader(status int) {
	if !e.wrote && e.st.done {
		e.clear()
	}
	e.wrote = true
	e.ResponseWriter.WriteHeader(status)
}

func (e *endWriter) Write(b []byte) (int, error) {
	if !e.wrote {
		e.WriteHeader(http.StatusOK)
	}
	return e.ResponseWriter.Write(b)
}

// TerminateSessionFromRequest implements op.CanTerminateSessionFromRequest:
// called once zitadel has validated the end_session request.
func (s *storage) TerminateSessionFromRequest(ctx context.Context, req *zop.EndSessionRequest) (string, error) {
	if st, ok := ctx.Value(endStateKey{}).(*endState); ok && st.hash != "" {
		if err := s.deleteSession(st.hash); err != nil {
			return "", err
		}
		st.done = true
	}
	return req.RedirectURI, nil
}
