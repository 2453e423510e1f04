package lab

import (
	"testing"

	"hastack.dev/hastack/engine/config"
)

// The generated config must pass hastack's own schema, extra included.
// Needs no root: no lab is started.
func TestWriteConfigIsValid(t *testing.T) {
	l := newLab("cfg", 5)
	dir := t.TempDir()
	if err := l.WriteConfig(dir, `design: "haproxy"`); err != nil {
		t.Fatal(err)
	}
	_, problems, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) > 0 {
		t.Fatalf("generated config has problems:\n%v", problems)
	}
}
