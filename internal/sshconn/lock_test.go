package sshconn

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"hastack.dev/hastack/internal/sshtest"
)

// A started command runs under sudo -n when the login user is not root,
// as Run's do; it reads stdin until CloseStdin, streams its output, and
// holds one session slot until it ends.
func TestStartSudoAndSlot(t *testing.T) {
	// A stand-in sudo on the PATH the in-process server's shell sees: it
	// insists on -n and notes that it ran.
	bin := t.TempDir()
	note := filepath.Join(t.TempDir(), "sudo.log")
	os.WriteFile(filepath.Join(bin, "sudo"), []byte("#!/bin/sh\n[ \"$1\" = -n ] || exit 99\nshift\necho ran >>"+note+"\nSUDO_USER=hastack exec \"$@\"\n"), 0o755)
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))

	_, tg, cfg := setup(t, sshtest.Options{})
	tg.User, tg.Sudo = "hastack", true
	cfg.MaxSessions = 1
	c := dial(t, tg, cfg)
	p, err := c.Start(context.Background(), `echo "as $SUDO_USER"; cat >/dev/null; echo bye >&2; exit 3`)
	if err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(p.Stdout()).ReadString('\n')
	if line != "as hastack\n" {
		t.Fatalf("first line %q: not run through sudo -n", line)
	}
	// The one slot is the started command's: a Run waits for it.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	_, err = c.Run(ctx, "true", nil)
	cancel()
	if err == nil {
		t.Fatal("Run got a session while the started command held the only slot")
	}
	p.Stdin().Close()
	res, err := p.Wait()
	if err != nil || res.Code != 3 || strings.TrimSpace(string(res.Stderr)) != "bye" {
		t.Fatalf("Wait: %+v %v", res, err)
	}
	if _, err := c.Run(context.Background(), "true", nil); err != nil {
		t.Fatalf("the slot was not given back: %v", err)
	}
	if b, _ := os.ReadFile(note); strings.Count(string(b), "ran") != 2 {
		t.Fatalf("sudo ran %q", b)
	}
}
