package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestCheckUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{
		{"check", "-no-such-flag"},
		{"check", "a", "b"},
		{"check", "-wait", "-1s"},
	} {
		var out bytes.Buffer
		code := Run(&Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &out}, args)
		if code != ExitUsage {
			t.Errorf("hastack %s exited %d, want %d\n%s", strings.Join(args, " "), code, ExitUsage, out.String())
		}
		if !strings.Contains(out.String(), "check") {
			t.Errorf("hastack %s: the message does not name the command:\n%s", strings.Join(args, " "), out.String())
		}
	}
}

func TestCheckIsListedInHelp(t *testing.T) {
	var out bytes.Buffer
	Run(&Env{Stdout: &out, Stderr: &out}, []string{"help"})
	if !strings.Contains(out.String(), "check ") {
		t.Errorf("help does not list check:\n%s", out.String())
	}
}

// Each drill asked for adds 5 minutes to a cluster's limit: MassStore's
// kill and server drills in one call ran past a fixed 5.
func TestCheckLimit(t *testing.T) {
	for _, c := range []struct {
		drills int
		wait   time.Duration
		want   time.Duration
	}{
		{0, 0, 5 * time.Minute},
		{0, 30 * time.Second, 5*time.Minute + 30*time.Second},
		{2, time.Minute, 16 * time.Minute},
	} {
		if got := checkLimit(c.drills, c.wait); got != c.want {
			t.Errorf("checkLimit(%d, %s) = %s, want %s", c.drills, c.wait, got, c.want)
		}
	}
}
