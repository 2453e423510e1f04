package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The ssh config is -F's, else $HASTACK_SSH_CONFIG's, else ~/.ssh/config
// when it exists; "none" reads none; a named file that is missing or
// refused is an error (a usage error: nothing is contacted).
func TestSSHConfigChoice(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("HASTACK_SSH_CONFIG", "")
	dir := t.TempDir()
	write := func(p, s string) string {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	path := func(r remoteFlags) string {
		t.Helper()
		opts, err := r.options()
		if err != nil {
			t.Fatal(err)
		}
		if opts.SSH.ClientConfig == nil {
			return "(none)"
		}
		return opts.SSH.ClientConfig.Path
	}
	if got := path(remoteFlags{}); got != "(none)" {
		t.Errorf("no ~/.ssh/config: read %s", got)
	}
	user := write(filepath.Join(home, ".ssh", "config"), "Host *\n  Port 22\n")
	env := write(filepath.Join(dir, "env"), "")
	flag := write(filepath.Join(dir, "flag"), "")
	if got := path(remoteFlags{}); got != user {
		t.Errorf("read %s, want ~/.ssh/config", got)
	}
	t.Setenv("HASTACK_SSH_CONFIG", env)
	if got := path(remoteFlags{}); got != env {
		t.Errorf("read %s, want $HASTACK_SSH_CONFIG's", got)
	}
	if got := path(remoteFlags{sshConfig: flag}); got != flag {
		t.Errorf("read %s, want -F's", got)
	}
	if got := path(remoteFlags{sshConfig: "none"}); got != "(none)" {
		t.Errorf("-F none read %s", got)
	}
	for _, bad := range []string{filepath.Join(dir, "missing"), write(filepath.Join(dir, "exec"), "Match exec true\n")} {
		if _, err := (&remoteFlags{sshConfig: bad}).options(); err == nil || !strings.Contains(err.Error(), "ssh config") {
			t.Errorf("-F %s: %v", bad, err)
		}
	}
}
