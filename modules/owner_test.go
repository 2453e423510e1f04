package modules

import (
	"strings"
	"testing"
)

// A file owned by an account that a user and a group resource of an earlier
// phase create in the same plan is planned (a fresh node), with the ids the
// stack fixes; an account nothing creates is still an error.
func TestFileOwnedByAccountThePlanCreates(t *testing.T) {
	nf := accountsNode()
	env := &Env{Stopped: map[string]bool{}}
	diff := func(kind, id string, spec any) (*Change, error) {
		m, err := Lookup(kind)
		if err != nil {
			t.Fatal(err)
		}
		return m.Diff(resource(t, kind, id, spec), &Fact{Node: nf}, env)
	}
	file := map[string]any{"path": "/srv/www/index.html", "owner": "webdata", "group": "webdata", "mode": "0644", "content": "hi\n"}
	if _, err := diff("file", "file:/srv/www/index.html", file); err == nil || !strings.Contains(err.Error(), `owner "webdata" does not exist`) {
		t.Fatalf("before the accounts: err = %v, want the owner refused", err)
	}
	if c, err := diff("group", "group:webdata", map[string]any{"name": "webdata", "gid": 2080}); err != nil || c == nil {
		t.Fatalf("group: %v %v", c, err)
	}
	if c, err := diff("user", "user:webdata", map[string]any{"name": "webdata", "uid": 2081, "group": "webdata"}); err != nil || c == nil {
		t.Fatalf("user: %v %v", c, err)
	}
	c, err := diff("file", "file:/srv/www/index.html", file)
	if err != nil || c == nil || c.Action != Create {
		t.Fatalf("file: %+v %v, want a create", c, err)
	}
	if c.file == nil || c.file.UID != 2081 || c.file.GID != 2080 {
		t.Fatalf("file written as %+v, want uid 2081 gid 2080", c.file)
	}
}
