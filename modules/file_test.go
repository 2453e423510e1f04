package modules

import (
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/secret"
)

// A diff hides every secret-bearing line, context lines included: the
// directives whose names say they are secret, and the node's version of
// any line hastack writes a password into, whatever its key. Lines that
// only name a secret stay readable (issue 8 finding 8).
func TestMaskDiffSecretLines(t *testing.T) {
	sec := secret.New("Cluster-Pw-1")
	content := strings.Join([]string{
		"tls-key-file-pass KeyFilePass1",
		"  <token_encryption_key>TokenKey123</token_encryption_key>",
		"sentinel auth-user bob",
		"custom-thing " + secret.Placeholder,
		"port 2",
		"# Password for the replicas",
		"tls-key-file /etc/redis/tls.key",
		"",
	}, "\n")
	node := strings.Replace(strings.Replace(content, "port 2", "port 1", 1), secret.Placeholder, "OldCustom99", 1)
	r := resource(t, "file", "file:/etc/x.conf", map[string]string{"path": "/etc/x.conf", "content": content, "owner": "root", "group": "root", "mode": "0600"})
	nf := &NodeFacts{Files: map[string]*FileFact{"/etc/x.conf": {Data: []byte(node), Mode: 0o600, Owner: "root", Group: "root"}},
		Users: map[string]int{"root": 0}, Groups: map[string]int{"root": 0}}
	c, err := fileModule{}.Diff(r, &Fact{Node: nf}, &Env{Secret: sec})
	if err != nil || c == nil {
		t.Fatalf("diff: %v %v", c, err)
	}
	for _, leak := range []string{"KeyFilePass1", "TokenKey123", "OldCustom99", sec.Value()} {
		if strings.Contains(c.Diff, leak) {
			t.Errorf("the diff shows %q:\n%s", leak, c.Diff)
		}
	}
	for _, shown := range []string{" tls-key-file-pass (sensitive)\n", "   <token_encryption_key>(sensitive)\n", "-custom-thing (sensitive)\n", "+custom-thing (sensitive)\n",
		" # Password for the replicas\n", " tls-key-file /etc/redis/tls.key\n", " sentinel auth-user bob\n", "-port 1\n", "+port 2\n"} {
		if !strings.Contains(c.Diff, shown) {
			t.Errorf("the diff lacks %q:\n%s", shown, c.Diff)
		}
	}
}

func TestSecretName(t *testing.T) {
	for name, want := range map[string]bool{
		"requirepass": true, "masterauth": true, "auth-pass": true, "sentinel-pass": true, "tls-key-file-pass": true,
		"tls-client-key-file-pass": true, "token_encryption_key": true, "api-secret": true, "Password": true,
		"tls-key-file": false, "auth-user": false, "masteruser": false, "notify-keyspace-events": false, "port": false, "#": false,
	} {
		if got := secretName(name); got != want {
			t.Errorf("secretName(%q) = %v, want %v", name, got, want)
		}
	}
}

// The same on a conf diff: the password directive and a secret one
// hastack does not own, next to a change.
func TestMaskConfDiffSecretLines(t *testing.T) {
	node := "tls-key-file-pass KeyFilePass1\nrequirepass OldOnNode99\nport 1\nsentinel auth-pass myprimary OldSentinel9\n"
	r := resource(t, "conf", "conf:/etc/r.conf", map[string]any{"path": "/etc/r.conf", "owner": "root", "group": "root", "mode": "0600",
		"directives": []map[string]any{{"key": "requirepass", "value": secret.Placeholder}, {"key": "port", "value": "2"}}})
	nf := &NodeFacts{Files: map[string]*FileFact{"/etc/r.conf": {Data: []byte(node), Mode: 0o600, Owner: "root", Group: "root"}},
		Users: map[string]int{"root": 0}, Groups: map[string]int{"root": 0}}
	c, err := confModule{}.Diff(r, &Fact{Node: nf}, &Env{Secret: secret.New("Cluster-Pw-1")})
	if err != nil || c == nil {
		t.Fatalf("diff: %v %v", c, err)
	}
	for _, leak := range []string{"KeyFilePass1", "OldOnNode99", "OldSentinel9", "Cluster-Pw-1"} {
		if strings.Contains(c.Diff, leak) {
			t.Errorf("the diff shows %q:\n%s", leak, c.Diff)
		}
	}
	if !strings.Contains(c.Diff, "-port 1\n") || !strings.Contains(c.Diff, " tls-key-file-pass (sensitive)\n") {
		t.Errorf("diff:\n%s", c.Diff)
	}
}

// dirlessHost is a node where a write fails until its directory was made
// by "mkdir -p".
type dirlessHost struct {
	recorder
	made  bool
	tries int
}

func (d *dirlessHost) Run(ctx context.Context, cmd string, stdin io.Reader) (host.Result, error) {
	d.made = d.made || strings.HasPrefix(cmd, "mkdir -p ")
	return d.recorder.Run(ctx, cmd, stdin)
}

func (d *dirlessHost) WriteFile(ctx context.Context, f host.File) error {
	d.tries++
	if !d.made {
		return os.ErrNotExist
	}
	return d.recorder.WriteFile(ctx, f)
}

// A file whose directory exists costs no exec; a missing directory is made
// and the write tried again.
func TestWriteFileMkdirOnlyWhenMissing(t *testing.T) {
	f := host.File{Path: "/etc/app.d/x.conf", Data: []byte("x\n"), Mode: 0o644}
	h := &recorder{}
	if err := writeFile(context.Background(), h, f); err != nil || len(h.cmds) != 0 || len(h.writes) != 1 {
		t.Errorf("existing dir: error %v, execs %q, %d writes; want one write, no exec", err, h.cmds, len(h.writes))
	}
	d := &dirlessHost{}
	if err := writeFile(context.Background(), d, f); err != nil {
		t.Fatal(err)
	}
	if len(d.cmds) != 1 || d.cmds[0] != "mkdir -p /etc/app.d" || d.tries != 2 || len(d.writes) != 1 {
		t.Errorf("missing dir: execs %q, %d tries, %d writes; want the mkdir, then the write again", d.cmds, d.tries, len(d.writes))
	}
	// A mkdir that fails is the error, as before the write.
	fail := &failingHost{code: 1, stderr: "mkdir: cannot create directory '/etc/app.d': Not a directory\n"}
	fail.recorder = recorder{}
	err := writeFile(context.Background(), &failWrites{fail}, f)
	if err == nil || !strings.Contains(err.Error(), "mkdir -p /etc/app.d: exit 1: mkdir: cannot create") {
		t.Errorf("error %v", err)
	}
}

// failWrites fails every write and every command.
type failWrites struct{ *failingHost }

func (failWrites) WriteFile(context.Context, host.File) error { return os.ErrPermission }

// failingLive is a server that is up and refuses every live set, naming
// the command it was sent, as a real one's error does.
type failingLive struct{}

func (failingLive) Up(*NodeFacts, string) bool { return true }
func (failingLive) Set(_ context.Context, _ host.Host, _, cmd string, sec secret.Secret) error {
	return errors.New(Mask(cmd, sec) + ": ERR refused") // it knows only the passwords
}

// A live set goes through the diff's masker too: a secret the stack writes
// under a secret name is hidden in the plan's commands and in the error of
// a failed apply, not only in the diff; the cluster password likewise.
func TestMaskLiveCommands(t *testing.T) {
	RegisterLive("test-failing", failingLive{})
	sec := secret.New("Cluster-Pw-1")
	node := "tls-key-file-pass OldKeyPass1\nrequirepass OldOnNode99\nmaxmemory 1\n"
	r := resource(t, "conf", "conf:/etc/r.conf", map[string]any{"path": "/etc/r.conf", "owner": "root", "group": "root", "mode": "0600",
		"live": "test-failing", "liveAddr": "10.0.0.1 6379",
		"directives": []map[string]any{
			{"key": "tls-key-file-pass", "value": "NewKeyPass2", "liveSet": "CONFIG SET tls-key-file-pass"},
			{"key": "requirepass", "value": secret.Placeholder, "liveSet": "ACL SETUSER default >{}"},
			{"key": "maxmemory", "value": "2", "liveSet": "CONFIG SET maxmemory"},
		}})
	nf := &NodeFacts{Files: map[string]*FileFact{"/etc/r.conf": {Data: []byte(node), Mode: 0o600, Owner: "root", Group: "root"}},
		Users: map[string]int{"root": 0}, Groups: map[string]int{"root": 0}}
	c, err := confModule{}.Diff(r, &Fact{Node: nf}, &Env{Secret: sec})
	if err != nil || c == nil || !c.Live {
		t.Fatalf("diff: %+v %v", c, err)
	}
	shown := strings.Join(append(c.Commands, c.Diff, c.Summary), "\n")
	for _, leak := range []string{"NewKeyPass2", "OldKeyPass1", "OldOnNode99", sec.Value()} {
		if strings.Contains(shown, leak) {
			t.Errorf("the plan shows %q:\n%s", leak, shown)
		}
	}
	for _, want := range []string{"CONFIG SET tls-key-file-pass " + secret.Shown, "ACL SETUSER default '>" + secret.Shown + "'", "CONFIG SET maxmemory 2"} {
		if !slices.Contains(c.Commands, want) {
			t.Errorf("commands %q lack %q", c.Commands, want)
		}
	}
	err = c.Apply(context.Background(), &recorder{})
	if err == nil || strings.Contains(err.Error(), "NewKeyPass2") || strings.Contains(err.Error(), sec.Value()) || !strings.Contains(err.Error(), "ERR refused") {
		t.Errorf("apply error: %v", err)
	}
}
