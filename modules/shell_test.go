package modules

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// A failed command's error keeps the end of its output, where the reason
// usually is.
func TestClipKeepsHeadAndTail(t *testing.T) {
	long := "Job for x failed.\n" + strings.Repeat("log line é\n", 100) + "main process 7 exited, status 143"
	got := clip(long)
	if !strings.HasPrefix(got, "Job for x failed.") || !strings.HasSuffix(got, "status 143") {
		t.Errorf("clip lost the head or the tail:\n%s", got)
	}
	if len(got) > 500 || !strings.Contains(got, " … ") {
		t.Errorf("clip did not shorten (%d bytes):\n%s", len(got), got)
	}
	if !utf8.ValidString(got) {
		t.Errorf("clip cut a rune in half: %q", got)
	}
	if short := "exit 1: no such unit"; clip(short) != short {
		t.Errorf("clip changed a short message: %q", clip(short))
	}
}
