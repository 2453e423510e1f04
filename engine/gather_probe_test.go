package engine

import (
	"encoding/json"
	"testing"

	"hastack.dev/hastack/modules"
)

// A render that adds a resource reading nothing on the node (a command with
// no guard, whose prelude is only for its own script) is covered by the
// first gather: a new HSTS cluster's wait costs no second gather. One that
// reads something (a guard) is not.
func TestCoversResourceThatReadsNothing(t *testing.T) {
	modules.RegisterPrelude("engine-test", "x() { :; }\n")
	file := modules.Resource{ID: "file:/a", Kind: "file", Spec: json.RawMessage(`{"path":"/a","content":"a\n"}`)}
	probes, err := probesOf([]modules.Resource{file})
	if err != nil {
		t.Fatal(err)
	}
	f := &Facts{probes: probes}
	for _, tc := range []struct {
		spec string
		want bool
	}{
		{`{"cmd":"sh -s","stdin":"true\n","prelude":"engine-test"}`, true},
		{`{"cmd":"sleep 1"}`, true},
		{`{"cmd":"sh -s","stdin":"true\n","prelude":"engine-test","unless":"redisq PING"}`, false},
		{`{"cmd":"touch /b","creates":"/b"}`, false},
	} {
		cmd := modules.Resource{ID: "command:x", Kind: "command", Spec: json.RawMessage(tc.spec)}
		got, err := f.covers(NodeSpec{Name: "n", Resources: []modules.Resource{file, cmd}})
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("%s: covered %v, want %v", tc.spec, got, tc.want)
		}
	}
}
