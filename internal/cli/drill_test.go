package cli

import (
	"slices"
	"testing"
)

func TestDrillList(t *testing.T) {
	var d drillList
	for _, v := range []string{"kill,server", "failover"} {
		if err := d.Set(v); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"kill", "server", "failover"}; !slices.Equal(d, want) {
		t.Fatalf("drills %q, want %q", d, want)
	}
	for _, bad := range []string{"", "a,,b", "Kill", "rm -rf", "x;y"} {
		var e drillList
		if e.Set(bad) == nil {
			t.Errorf("-drill %q accepted", bad)
		}
	}
	if got := drillCommand(d); got != "check -drill kill,server,failover" {
		t.Errorf("lock holder command %q", got)
	}
}
