package main

import (
	"io"
	"log/slog"

	"github.com/latchkey-dev/latchkey/cmd/latchkey/server"
)

// check is `latchkey check`: it reads the same configuration as serve and
// reports, line by line, whether sign-in can work.
func check(args []string, stdout, stderr io.Writer, getenv func(string) (string, bool)) int {
	cfg, code, ok := loadConfig("check", args, stderr, getenv)
	if !ok {
		return code
	}
	// zitadel/oidc logs through the default logger; the report says it all.
	slog.SetDefault(slog.New(slog.DiscardHandler))
	if !server.Check(cfg, stdout) {
		return 1
	}
	return 0
}
