package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/latchkey-dev/latchkey/cmd/latchkey/server"
)

func readRepoFile(t *testing.T, name string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// readmeCommands returns the commands of the README's "Run it" and "Test it"
// sections.
func readmeCommands(t *testing.T) (runCmd, testCmd string) {
	t.Helper()
	readme := readRepoFile(t, "README.md")
	block := func(heading string) string {
		re := regexp.MustCompile("(?s)## " + heading + "\\s*```sh\\n(.*?)\\n```")
		m := re.FindStringSubmatch(readme)
		if m == nil {
			t.Fatalf("README has no %q section with a sh block", heading)
		}
		return strings.TrimSpace(m[1])
	}
	return block("Run it"), block("Test it")
}

func TestComposeMatchesReadme(t *testing.T) {
	runCmd, _ := readmeCommands(t)
	if runCmd != "go run ./cmd/latchkey serve" {
		t.Errorf("README run command = %q", runCmd)
	}
	var compose struct {
		Services map[string]struct {
			Image   string   `yaml:"image"`
			Command []string `yaml:"command"`
			Ports   []string `yaml:"ports"`
			Volumes []string `yaml:"volumes"`
			Configs []struct {
				Source string `yaml:"source"`
				Target string `yaml:"target"`
			} `yaml:"configs"`
		} `yaml:"services"`
		Configs map[string]struct {
			Content string `yaml:"content"`
		} `yaml:"configs"`
		Volumes map[string]any `yaml:"volumes"`
	}
	if err := yaml.Unmarshal([]byte(readRepoFile(t, "docker-compose.yml")), &compose); err != nil {
		t.Fatalf("docker-compose.yml does not parse: %v", err)
	}
	svc, ok := compose.Services["latchkey"]
	if !ok {
		t.Fatal("no latchkey service")
	}
	if !strings.HasPrefix(svc.Image, "golang:") {
		t.Errorf("image %q is not an official Go image", svc.Image)
	}
	cmd := strings.Join(svc.Command, " ")
	if !strings.HasPrefix(cmd, runCmd+" --config ") {
		t.Errorf("compose command %q does not run the README's %q with a config file", cmd, runCmd)
	}
	if len(svc.Ports) != 1 || svc.Ports[0] != "8080:8080" {
		t.Errorf("ports = %v, want 8080:8080", svc.Ports)
	}
	if len(svc.Configs) != 1 || !strings.HasSuffix(cmd, svc.Configs[0].Target) {
		t.Fatalf("the config file passed to --config is not the mounted one: %v", svc.Configs)
	}
	content := compose.Configs[svc.Configs[0].Source].Content
	path := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := server.Load(path, nil)
	if err != nil {
		t.Fatalf("the mounted config is invalid: %v", err)
	}
	if cfg.Listen != "0.0.0.0:8080" {
		t.Errorf("container listens on %q, want 0.0.0.0:8080", cfg.Listen)
	}
	if cfg.PublicURL != "http://localhost:8080" {
		t.Errorf("publicUrl %q, want the README's http://localhost:8080", cfg.PublicURL)
	}
	var dataVolume bool
	for _, v := range svc.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == cfg.DataDir {
			_, named := compose.Volumes[parts[0]]
			dataVolume = named
		}
	}
	if !dataVolume {
		t.Errorf("dataDir %q is not on a named volume: %v", cfg.DataDir, svc.Volumes)
	}
}

func TestCIRunsReadmeTestCommand(t *testing.T) {
	_, testCmd := readmeCommands(t)
	ci := readRepoFile(t, ".ci/run")
	if !strings.Contains(testCmd, "-race") {
		t.Errorf("README test command %q lacks -race", testCmd)
	}
	found := false
	for _, line := range strings.Split(ci, "\n") {
		if strings.TrimSpace(line) == testCmd {
			found = true
		}
	}
	if !found {
		t.Errorf(".ci/run does not run the README's test command %q", testCmd)
	}
	if !strings.Contains(ci, "go vet ./...") {
		t.Error(".ci/run does not run go vet")
	}
}

func TestReadmeDocumentsEveryEnvVar(t *testing.T) {
	readme := readRepoFile(t, "README.md")
	for _, v := range server.EnvVars {
		if !strings.Contains(readme, "`"+v.Name+"`") {
			t.Errorf("README does not document %s", v.Name)
		}
		if !strings.Contains(readme, "`"+v.Key+"`") {
			t.Errorf("README does not document %s", v.Key)
		}
	}
}
