package cli

import (
	"bytes"
	"strings"
	"testing"
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
