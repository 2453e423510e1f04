package modules

import (
	"context"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/secret"
)

// recorder is a node that records every command line and file write and
// runs nothing.
type recorder struct {
	mu     sync.Mutex
	cmds   []string
	writes []host.File
}

func (r *recorder) Name() string { return "rec" }
func (r *recorder) Close() error { return nil }
func (r *recorder) Run(_ context.Context, cmd string, stdin io.Reader) (host.Result, error) {
	if stdin != nil {
		io.Copy(io.Discard, stdin)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cmds = append(r.cmds, cmd)
	return host.Result{}, nil
}
func (r *recorder) WriteFile(_ context.Context, f host.File) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes = append(r.writes, f)
	return nil
}

// nodeAfter is the facts a node would show after the writes r recorded.
func (r *recorder) nodeAfter() *NodeFacts {
	nf := &NodeFacts{Files: map[string]*FileFact{}, Stamps: map[string]string{}}
	for _, f := range r.writes {
		nf.Files[f.Path] = &FileFact{Data: f.Data, Mode: f.Mode, Owner: "root", Group: "root"}
		if name, ok := strings.CutPrefix(f.Path, StampDir+"/"); ok {
			nf.Stamps[name] = strings.TrimSpace(string(f.Data))
		}
	}
	return nf
}

var hexHash = regexp.MustCompile(`[0-9a-f]{64}`)

func stampSpec(stdin string) commandSpec {
	return commandSpec{Cmd: "/opt/aspera/bin/askmscli -s redis-password", Stdin: stdin, Stamp: true}
}

// A stamp is keyed with the node's key, not the password: the same command
// and password give another stamp on another node, the same one with the
// key held fixed, and another one when the stdin changes.
func TestStampKeyedPerNode(t *testing.T) {
	sec := secret.New("Stamp-Passw0rd-1")
	k1 := (&NodeFacts{}).stampKeyOf()
	k2 := (&NodeFacts{}).stampKeyOf()
	a := stampOf(stampSpec(secret.Placeholder), k1, sec)
	if b := stampOf(stampSpec(secret.Placeholder), k1, sec); a != b {
		t.Errorf("the stamp changed with the key held fixed: %s, %s", a, b)
	}
	if b := stampOf(stampSpec(secret.Placeholder+"x"), k1, sec); a == b {
		t.Error("the stamp did not change with the stdin")
	}
	if b := stampOf(stampSpec(secret.Placeholder), k1, secret.New("Stamp-Passw0rd-2")); a == b {
		t.Error("the stamp did not change with the password filled into the stdin")
	}
	// askmscli -i -u USER has no stdin, yet re-reads the password.
	keystore := commandSpec{Cmd: "/opt/aspera/bin/askmscli -i -u xfer", Stamp: true}
	if stampOf(keystore, k1, sec) == stampOf(keystore, k1, secret.New("Stamp-Passw0rd-2")) {
		t.Error("a command without stdin kept its stamp across a new password: a rotation would skip it")
	}
	if b := stampOf(stampSpec(secret.Placeholder), k2, sec); a == b {
		t.Error("two nodes' keys gave the same stamp: it is keyed with the password alone")
	}
}

// On a node without a key, stamped commands run; apply writes one new key
// (root, 0600) and each stamp with WriteFile, never on a command line; the
// next plan finds every stamp valid. A key another user could have written
// is not trusted.
func TestStampApply(t *testing.T) {
	sec := secret.New("Stamp-Passw0rd-1")
	env := &Env{Secret: sec}
	specs := []map[string]any{
		{"cmd": "/opt/aspera/bin/askmscli -s redis-password", "stdin": secret.Placeholder, "stamp": true},
		{"cmd": "/opt/aspera/bin/askmscli -u xfer -s redis-password", "stdin": secret.Placeholder, "stamp": true},
	}
	plan := func(nf *NodeFacts) []*Change {
		var cs []*Change
		for i, sp := range specs {
			r := resource(t, "command", "command:askmscli"+string(rune('a'+i)), sp)
			c, err := commandModule{}.Diff(r, &Fact{Node: nf}, env)
			if err != nil {
				t.Fatal(err)
			}
			if c != nil {
				cs = append(cs, c)
			}
		}
		return cs
	}
	rec := &recorder{}
	cs := plan(&NodeFacts{})
	if len(cs) != 2 {
		t.Fatalf("a node without a stamp key: %d commands planned, want 2", len(cs))
	}
	for _, c := range cs {
		if err := c.Apply(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}
	var keys int
	for _, f := range rec.writes {
		if f.Mode != 0o600 || f.UID != 0 || f.GID != 0 {
			t.Errorf("%s written %v %d:%d, want 0600 root:root", f.Path, f.Mode, f.UID, f.GID)
		}
		if f.Path == StampKeyPath {
			keys++
			if len(f.Data) != 32 {
				t.Errorf("stamp key of %d bytes, want 32", len(f.Data))
			}
		}
	}
	if keys != 1 || len(rec.writes) != 3 {
		t.Errorf("writes %d (key %d times), want the key once and two stamps", len(rec.writes), keys)
	}
	// No command line holds a stamp (a hex SHA-256) nor the key.
	for _, cmd := range rec.cmds {
		if hexHash.MatchString(cmd) {
			t.Errorf("a stamp is on a command line: %s", cmd)
		}
	}
	after := rec.nodeAfter()
	if cs := plan(after); len(cs) != 0 {
		t.Errorf("%d commands planned again after their stamps were written", len(cs))
	}
	// A key that is not root's 0600 file could be known to someone else.
	for _, bad := range []func(f *FileFact){
		func(f *FileFact) { f.Mode = 0o644 },
		func(f *FileFact) { f.Owner = "asperadaemon" },
		func(f *FileFact) { f.Data = f.Data[:16] },
	} {
		nf := rec.nodeAfter()
		bad(nf.Files[StampKeyPath])
		if cs := plan(nf); len(cs) != 2 {
			t.Errorf("an unsound key was trusted: %d commands planned, want 2", len(cs))
		}
	}
}
