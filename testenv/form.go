package testenv

import (
	"errors"
	"html"
	"net/url"
	"regexp"
	"strings"
)

// Form is an HTML form read from a page: where it posts and the values of
// its hidden inputs.
type Form struct {
	Action string
	Values url.Values
}

var (
	formRe  = regexp.MustCompile(`(?is)<form\b([^>]*)>(.*?)</form>`)
	inputRe = regexp.MustCompile(`(?is)<input\b([^>]*)>`)
	attrRe  = regexp.MustCompile(`(?is)([a-z-]+)\s*=\s*"([^"]*)"`)
)

// ErrNoForm is returned by ParseForm for a page without a POST form.
var ErrNoForm = errors.New("testenv: no POST form on the page")

// ParseForm reads the first method="post" form of an HTML page. It
// understands the markup of latchkey's own pages, not arbitrary HTML.
func ParseForm(page string) (Form, error) {
	for _, m := range formRe.FindAllStringSubmatch(page, -1) {
		attrs := attributes(m[1])
		if !strings.EqualFold(attrs["method"], "post") {
			continue
		}
		f := Form{Action: attrs["action"], Values: url.Values{}}
		for _, in := range inputRe.FindAllStringSubmatch(m[2], -1) {
			a := attributes(in[1])
			if a["name"] != "" && strings.EqualFold(a["type"], "hidden") {
				f.Values.Set(a["name"], a["value"])
			}
		}
		return f, nil
	}
	return Form{}, ErrNoForm
}

func attributes(s string) map[string]string {
	out := map[string]string{}
	for _, m := range attrRe.FindAllStringSubmatch(s, -1) {
		out[strings.ToLower(m[1])] = html.UnescapeString(m[2])
	}
	return out
}
