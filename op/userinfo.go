package op

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// serveUserinfo is the userinfo endpoint (OpenID Connect Core §5.3), GET or
// POST, with errors as RFC 6750 §3.1 says: 401 and a WWW-Authenticate
// challenge, error="invalid_token" for a token that is not (or no longer)
// valid.
func (i *Issuer) serveUserinfo(w http.ResponseWriter, r *http.Request) {
	token := ""
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		token = strings.TrimSpace(h[7:])
	} else if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		token = r.PostFormValue("access_token")
	}
	if token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="latchkey"`)
		http.Error(w, "access token missing", http.StatusUnauthorized)
		return
	}
	invalid := func(desc string) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="latchkey", error="invalid_token", error_description="`+desc+`"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_token", "error_description": desc})
	}
	plain, err := i.provider.Crypto().Decrypt(token)
	id, sub, ok := strings.Cut(plain, ":")
	if err != nil || !ok {
		invalid("the access token is malformed")
		return
	}
	info := new(oidc.UserInfo)
	if err := i.store.SetUserinfoFromToken(r.Context(), info, id, sub, ""); err != nil {
		if errors.Is(err, errAccountInactive) {
			invalid("the account is no longer active or its sessions were ended")
		} else {
			invalid("the access token is expired or revoked")
		}
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(info)
}

// basicChallenge adds the WWW-Authenticate challenge RFC 6749 §5.2 requires
// when a client that authenticated with HTTP Basic gets 401.
func basicChallenge(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, _, ok := r.BasicAuth(); ok {
			w = &challengeWriter{ResponseWriter: w}
		}
		h.ServeHTTP(w, r)
	})
}

type challengeWriter struct{ http.ResponseWriter }

func (c *challengeWriter) WriteHeader(status int) {
	if status == http.StatusUnauthorized {
		c.Header().Set("WWW-Authenticate", `Basic realm="latchkey"`)
	}
	c.ResponseWriter.WriteHeader(status)
}
