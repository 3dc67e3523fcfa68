package server

import (
	"bytes"
	"encoding/pem"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestProviderHTTPClientTLS(t *testing.T) {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("{}")) }))
	defer ts.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	get := func(o OIDC) (string, error) {
		var logs bytes.Buffer
		c, err := ProviderHTTPClient(o, slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			return logs.String(), err
		}
		resp, err := c.Get(ts.URL)
		if err == nil {
			resp.Body.Close()
		}
		return logs.String(), err
	}
	if _, err := get(OIDC{VerifySSL: true}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("an unknown CA was trusted: %v", err)
	}
	if logs, err := get(OIDC{VerifySSL: true, CAFile: caFile}); err != nil || logs != "" {
		t.Errorf("caFile: %v (logs %q)", err, logs)
	}
	logs, err := get(OIDC{VerifySSL: false})
	if err != nil {
		t.Errorf("verifySsl=false: %v", err)
	}
	if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "NOT verified") {
		t.Errorf("verifySsl=false without a loud warning: %q", logs)
	}
	bad := filepath.Join(t.TempDir(), "bad.pem")
	_ = os.WriteFile(bad, []byte("not a certificate"), 0o600)
	if _, err := get(OIDC{VerifySSL: true, CAFile: bad}); err == nil || !strings.Contains(err.Error(), "holds no PEM certificate") {
		t.Errorf("a caFile without certificates: %v", err)
	}
}
