package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/latchkey-dev/latchkey/cmd/latchkey/server"
)

// check is `latchkey check`: it reads the same configuration as serve and
// reports, line by line, whether sign-in can work.
func check(args []string, stdout, stderr io.Writer, getenv func(string) (string, bool)) int {
	fs := flag.NewFlagSet("latchkey check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "values.yaml-shaped configuration file (default: embedded defaults)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := server.Load(*configPath, getenv)
	if err != nil {
		fmt.Fprintf(stdout, "[FAIL] configuration: %v\n", err)
		return 1
	}
	// zitadel/oidc logs through the default logger; the report says it all.
	slog.SetDefault(slog.New(slog.DiscardHandler))
	if !server.Check(cfg, stdout) {
		return 1
	}
	return 0
}
