package rp

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// HandlerTransport is an http.RoundTripper that answers requests for one
// origin (scheme://host[:port]) from an http.Handler in the same process and
// sends every other request to Fallback.
//
// latchkey uses it to let the relying party reach the built-in issuer that
// runs in the same process: no DNS, no TLS, no hairpin through a load
// balancer — yet every byte exchanged is plain OpenID Connect over HTTP.
type HandlerTransport struct {
	Origin   string
	Handler  http.Handler
	Fallback http.RoundTripper // nil: http.DefaultTransport
}

// RoundTrip implements http.RoundTripper.
func (t *HandlerTransport) RoundTrip(req *http.Request) (resp *http.Response, err error) {
	if !strings.EqualFold(req.URL.Scheme+"://"+req.URL.Host, t.Origin) {
		fb := t.Fallback
		if fb == nil {
			fb = http.DefaultTransport
		}
		return fb.RoundTrip(req)
	}
	in := req.Clone(req.Context())
	in.RequestURI = req.URL.RequestURI()
	in.RemoteAddr = "127.0.0.1:0"
	in.Host = req.URL.Host
	if in.Body == nil {
		in.Body = http.NoBody
	}
	if u, err := url.Parse(in.RequestURI); err == nil {
		in.URL = u
	}
	rec := &recorder{header: http.Header{}}
	defer func() {
		if p := recover(); p != nil {
			resp, err = nil, fmt.Errorf("rp: in-process handler for %s panicked: %v", req.URL.Path, p)
		}
	}()
	t.Handler.ServeHTTP(rec, in)
	if req.Body != nil {
		_ = req.Body.Close()
	}
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	body := rec.body.Bytes()
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", rec.status, http.StatusText(rec.status)),
		StatusCode:    rec.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        rec.header,
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}, nil
}

// recorder is a minimal http.ResponseWriter that keeps the response.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
