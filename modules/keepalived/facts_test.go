package keepalived

import (
	"testing"

	"hastack.dev/hastack/modules"
)

func TestParseAddrs(t *testing.T) {
	out := []byte(`1: lo    inet 127.0.0.1/8 scope host lo\       valid_lft forever preferred_lft forever
2: eth0    inet 10.213.7.14/24 scope global eth0\       valid_lft forever preferred_lft forever
2: eth0    inet 10.213.7.2/24 scope global secondary eth0\       valid_lft forever preferred_lft forever
`)
	v, err := parseAddrs(out)
	if err != nil {
		t.Fatal(err)
	}
	var nf modules.NodeFacts
	nf.SetShared(VIPFact, v)
	for ip, want := range map[string]bool{"10.213.7.2": true, "10.213.7.14": true, "10.213.7.20": false, "10.213.7": false} {
		if got, ok := Holds(&nf, ip); !ok || got != want {
			t.Errorf("Holds(%s) = %v, %v; want %v", ip, got, ok, want)
		}
	}
	if _, ok := Holds(&modules.NodeFacts{}, "10.213.7.2"); ok {
		t.Error("a node not asked reads as answered")
	}
}
