package op

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"

	"github.com/latchkey-dev/latchkey/users"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static/style.css
var styleCSS []byte

// pageData is what the issuer's templates render.
type pageData struct {
	Title         string
	Issuer        string
	CSRF          string
	AuthRequestID string
	Email         string
	Name          string
	Error         string            // a message for the whole form
	Errors        map[string]string // field name → message
	FirstAccount  bool
	Heading       string
	Message       string
	HomeURL       string
	SignupOpen    bool

	// Account pages.
	Page        string     // "settings", "admin", …: marks the current nav entry
	User        users.User // the signed-in user, when there is one
	Org         string
	Wide        bool
	Notice      string
	Token       string
	Role        string
	Link        string // a one-time link to copy (invitation, password reset)
	LinkLabel   string
	LinkExpires string
	Members     []member
	Invitations []invitationRow
	Hidden      map[string]string // extra hidden fields of a form
}

// member is one row of the Organization page.
type member struct {
	ID, Email, Name, Role, LastLogin string
	Disabled                         bool
}

// invitationRow is one pending invitation on the Organization page.
type invitationRow struct {
	ID, Email, Role, Expires string
}

// pages holds one template set per page, each with the shared layout.
type pages struct {
	sets map[string]*template.Template
}

func newPages() (*pages, error) {
	p := &pages{sets: map[string]*template.Template{}}
	for _, name := range []string{"login", "signup", "message", "settings", "admin", "invite", "reset", "logout"} {
		t, err := template.New("layout.html").ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("op: parse page %s: %w", name, err)
		}
		p.sets[name] = t
	}
	return p, nil
}

// render writes page name with data, adding the CSRF token and URLs.
func (i *Issuer) render(w http.ResponseWriter, r *http.Request, status int, name string, data pageData) {
	data.Issuer = i.path
	data.HomeURL = i.homeURL
	data.CSRF = i.csrfToken(w, r)
	data.SignupOpen = i.users.SignupPolicy() != users.SignupInvite
	var buf bytes.Buffer
	if err := i.pages.sets[name].Execute(&buf, data); err != nil {
		i.log.Error("render page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// renderMessage renders a page with a heading and one paragraph.
func (i *Issuer) renderMessage(w http.ResponseWriter, r *http.Request, status int, heading, message string) {
	i.render(w, r, status, "message", pageData{Title: heading, Heading: heading, Message: message})
}

// ServeStylesheet serves the CSS of the issuer's pages, for other pages
// that want to look the same.
func ServeStylesheet(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(styleCSS)
}
