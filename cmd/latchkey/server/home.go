package server

import (
	"html/template"
	"net/http"

	"github.com/latchkey-dev/latchkey/rp"
)

var homePage = template.Must(template.New("home").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>latchkey</title>
<link rel="stylesheet" href="/static/style.css">
</head>
<body>
<main class="card">
<p class="brand">latchkey</p>
{{if .Signed}}
<h1>Signed in</h1>
<p>Signed in as <strong>{{.ID.Name}}</strong> ({{.ID.Email}}{{range .ID.Roles}}, <span class="role">{{.}}</span>{{end}}).</p>
<form method="post" action="/api/v1/auth/logout">
  <input type="hidden" name="csrf" value="{{.CSRF}}">
  <button type="submit">Sign out</button>
</form>
<p class="switch">{{if .BuiltIn}}<a href="/oidc/settings">Settings</a> · {{if .Admin}}<a href="/oidc/admin">Organization</a> · {{end}}{{end}}<a href="/api/v1/auth/me">Show my identity as JSON</a></p>
{{else}}
<h1>Welcome</h1>
<p>You are not signed in.</p>
<p><a class="button" href="/api/v1/auth/login">Sign in</a></p>
{{if .BuiltIn}}<p class="switch">No account yet? <a href="/api/v1/auth/login?prompt=create">Create Account</a></p>{{end}}
{{end}}
</main>
</body>
</html>
`))

// home is the start page: who is signed in, or a Sign in button.
func (s *Server) home(w http.ResponseWriter, r *http.Request) {
	id, signed := rp.IdentityFrom(r.Context())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Referrer-Policy", "no-referrer")
	data := struct {
		Signed  bool
		ID      rp.Identity
		CSRF    string
		BuiltIn bool
		Admin   bool
	}{signed, id, s.rp.CSRFToken(r), s.BuiltIn(), id.HasRole("admin")}
	if err := homePage.Execute(w, data); err != nil {
		s.log.Error("render start page", "err", err)
	}
}
