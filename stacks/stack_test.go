package stacks_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"hastack.dev/hastack/engine"
	"hastack.dev/hastack/engine/config"
	"hastack.dev/hastack/internal/hostiletest"
	"hastack.dev/hastack/internal/secret"
	"hastack.dev/hastack/modules"
	"hastack.dev/hastack/modules/redis"
	"hastack.dev/hastack/stacks/hsts"
)

// These tests run the scripts the stack renders for the node's root shell
// through this machine's real /bin/sh, with stand-ins for redis-cli, chown
// and systemctl, as a hostile service user would meet them: passwords that
// a shell takes for code (hostiletest.Passwords, the list every script
// path is tested with), and links planted where root writes.

// render renders examples/three-node on a live cluster in a rotation and
// returns node1's resources by id.
func render(t *testing.T) map[string]modules.Resource {
	t.Helper()
	cfg, probs, err := config.Load("../examples/three-node")
	if err != nil || len(probs) > 0 {
		t.Fatalf("load: %v %v", err, probs)
	}
	cl := *cfg.Clusters[0]
	cl.PreviousSecret = &secret.Source{Env: "OLD"}
	sys, err := engine.Open(&cl)
	if err != nil {
		t.Fatal(err)
	}
	hc, err := hsts.Decode(&cl)
	if err != nil {
		t.Fatal(err)
	}
	r, err := engine.Render(cfg.Context, &cl, sys, hsts.Inputs(hc.Primary, nil, true, true))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]modules.Resource{}
	for _, res := range r.Nodes[0].Resources {
		out[res.ID] = res
	}
	return out
}

type commandSpec struct {
	Cmd     string `json:"cmd"`
	Stdin   string `json:"stdin"`
	Onlyif  string `json:"onlyif"`
	Prelude string `json:"prelude"`
}

func spec[T any](t *testing.T, rs map[string]modules.Resource, id string) T {
	t.Helper()
	r, ok := rs[id]
	if !ok {
		t.Fatalf("the stack renders no %s", id)
	}
	var s T
	if err := json.Unmarshal(r.Spec, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// fakeNode is a folder standing for a node's /opt/aspera/etc/redis, and
// stand-ins that record what they were handed (in rec/).
type fakeNode struct {
	dir   string // the stand-ins' folder and their records
	redis string // stands for /opt/aspera/etc/redis
	mark  string
}

func newFakeNode(t *testing.T) *fakeNode {
	t.Helper()
	// Not t.TempDir: subtests are named after passwords.
	dir, err := os.MkdirTemp("", "hastack-stack-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	n := &fakeNode{dir: dir, redis: filepath.Join(dir, "redis"), mark: filepath.Join(dir, "pwned")}
	if err := os.Mkdir(filepath.Join(dir, "rec"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(n.redis, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(n.redis, 0o770|os.ModeSticky); err != nil { // as the stack keeps it
		t.Fatal(err)
	}
	// redis-cli records its password and the commands it read, and answers
	// OK (or PONG to PING); chown and systemctl record their arguments.
	stubs := map[string]string{
		"redis-cli": `printf '%s\n' "$REDISCLI_AUTH" >> "$D/auth"
case "$*" in *PING*) echo PONG; exit 0 ;; esac
cat >> "$D/commands"; echo OK`,
		"chown":     `printf '%s\n' "$*" >> "$D/chown"`,
		"systemctl": `printf '%s\n' "$*" >> "$D/systemctl"`,
	}
	for name, body := range stubs {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\nD='"+dir+"/rec'\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// run runs a rendered script as the engine sends it: after the Redis
// prelude, filled with the passwords, on sh's stdin. The stand-ins come
// first on the PATH the prelude sets, and the node's /opt/aspera/etc/redis
// is the fake node's folder.
func (n *fakeNode) run(t *testing.T, script string, sec secret.Secret) (string, error) {
	t.Helper()
	pathLine := "\nPATH=" + redis.PATH + "\n"
	full := redis.Prelude + script
	if !strings.Contains(full, pathLine) {
		t.Fatalf("the prelude sets no PATH=%s", redis.PATH)
	}
	full = strings.Replace(full, pathLine, "\nPATH="+n.dir+":"+redis.PATH+"\n", 1)
	full = strings.ReplaceAll(full, "/opt/aspera/etc/redis/", n.redis+"/")
	cmd := exec.Command("/bin/sh", "-s")
	cmd.Stdin = strings.NewReader(string(secret.Fill([]byte(full), sec)))
	cmd.Dir = n.dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (n *fakeNode) record(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(n.dir, "rec", name))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

const sentinelConf = "sentinel_41415.conf"

// sentinelBefore is a Sentinel config as Sentinel leaves it mid-rotation.
const sentinelBefore = `port 41415
sentinel myid 0123456789abcdef0123456789abcdef01234567
requirepass Old-Passw0rd
user default on #5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8 ~* &* +@all
sentinel monitor myprimary 10.11.100.160 31415 2
`

// TestRotationScriptsQuoteThePassword: the rotation's scripts and their
// guards hand Redis and Sentinel every password as one literal word, and
// the Sentinel script writes it into the file as it is.
func TestRotationScriptsQuoteThePassword(t *testing.T) {
	rs := render(t)
	redisDrop := spec[commandSpec](t, rs, "command:drop-previous-password-redis")
	sentinelDrop := spec[commandSpec](t, rs, "command:drop-previous-password-sentinel")
	for _, raw := range hostiletest.Passwords {
		t.Run(raw, func(t *testing.T) {
			n := newFakeNode(t)
			pw := strings.ReplaceAll(raw, "MARK", n.mark)
			old := "Old-" + pw
			if secret.Check(pw) != nil {
				t.Fatalf("secret.Check refuses %q: not a case the rules allow", pw)
			}
			sec := secret.New(pw).WithPrevious(secret.New(old))
			f := filepath.Join(n.redis, sentinelConf)
			if err := os.WriteFile(f, []byte(sentinelBefore), 0o640); err != nil {
				t.Fatal(err)
			}
			for _, s := range []commandSpec{redisDrop, sentinelDrop} {
				if s.Prelude != redis.PreludeName || s.Cmd != "sh -s" {
					t.Fatalf("not a script after the Redis prelude: %+v", s)
				}
				if out, err := n.run(t, s.Stdin, sec); err != nil {
					t.Fatalf("script failed: %v\n%s", err, out)
				}
				if out, err := n.run(t, s.Onlyif, sec); err != nil {
					t.Fatalf("guard failed: %v\n%s", err, out)
				}
			}
			if _, err := os.Stat(n.mark); err == nil {
				t.Fatalf("the password ran as shell code: %s exists", n.mark)
			}
			wantCmds := "CONFIG SET requirepass '" + pw + "'\nCONFIG REWRITE\nACL SETUSER default resetpass '>" + pw + "'\n"
			if got := n.record(t, "commands"); got != wantCmds {
				t.Errorf("redis-cli read:\n%s\nwant:\n%s", got, wantCmds)
			}
			for _, a := range strings.Split(strings.TrimSpace(n.record(t, "auth")), "\n") {
				if a != pw && a != old {
					t.Errorf("redis-cli got REDISCLI_AUTH %q, want %q or %q", a, pw, old)
				}
			}
			got, _ := os.ReadFile(f)
			want := strings.Replace(sentinelBefore, "requirepass Old-Passw0rd", "requirepass "+pw, 1)
			want = strings.Replace(want, want[strings.Index(want, "user default"):strings.Index(want, "sentinel monitor")], "", 1)
			if string(got) != want {
				t.Errorf("%s after the rotation:\n%s\nwant:\n%s", sentinelConf, got, want)
			}
		})
	}
}

// TestRotationScriptFollowsNoLink: the service user owns the Sentinel
// config and can write in its directory. Links it plants at every name
// a script could predict must not make root write anywhere else, and the
// config itself swapped for a link must not be read through.
func TestRotationScriptFollowsNoLink(t *testing.T) {
	rs := render(t)
	script := spec[commandSpec](t, rs, "command:drop-previous-password-sentinel").Stdin
	pw := "New-Passw0rd;x"
	sec := secret.New(pw).WithPrevious(secret.New("Old-Passw0rd"))

	t.Run("links at predictable temporary names", func(t *testing.T) {
		n := newFakeNode(t)
		f := filepath.Join(n.redis, sentinelConf)
		if err := os.WriteFile(f, []byte(sentinelBefore), 0o640); err != nil {
			t.Fatal(err)
		}
		victims := filepath.Join(n.dir, "victims")
		os.Mkdir(victims, 0o700)
		var planted []string
		for _, suffix := range []string{".hastack-rotate", ".tmp", ".new", "~", ".hastack-tmp", ".bak", ".swp"} {
			link := f + suffix
			if err := os.Symlink(filepath.Join(victims, "via"+suffix), link); err != nil {
				t.Fatal(err)
			}
			planted = append(planted, link)
		}
		if out, err := n.run(t, script, sec); err != nil {
			t.Fatalf("script failed: %v\n%s", err, out)
		}
		if left, _ := os.ReadDir(victims); len(left) > 0 {
			t.Errorf("root wrote through a planted link: %s holds %v", victims, left)
		}
		got, _ := os.ReadFile(f)
		if !strings.Contains(string(got), "\nrequirepass "+pw+"\n") {
			t.Errorf("%s does not hold the new password:\n%s", f, got)
		}
		if fi, err := os.Lstat(f); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o640 {
			t.Errorf("%s is not a regular 0640 file afterwards: %v %v", f, fi.Mode(), err)
		}
		// chown acted on the file root created (now renamed to f), and
		// named the owner outright: no --reference through f.
		chown := strings.TrimSpace(n.record(t, "chown"))
		fields := strings.Fields(chown)
		if len(fields) != 3 || fields[0] != "-h" || fields[1] != "asperadaemon:aspadmins" || !strings.HasPrefix(fields[2], f+".") {
			t.Errorf("chown %q, want chown -h asperadaemon:aspadmins on root's temporary file", chown)
		}
		for _, p := range planted {
			if strings.HasSuffix(chown, " "+p) {
				t.Errorf("chown acted on the planted %s", p)
			}
		}
		if n.record(t, "systemctl") != "restart asperaredissentinel\n" {
			t.Errorf("systemctl %q", n.record(t, "systemctl"))
		}
	})

	t.Run("the config is a link", func(t *testing.T) {
		n := newFakeNode(t)
		f := filepath.Join(n.redis, sentinelConf)
		secretFile := filepath.Join(n.dir, "shadow")
		if err := os.WriteFile(secretFile, []byte("root:SECRET-HASH:19000::::::\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(secretFile, f); err != nil {
			t.Fatal(err)
		}
		out, err := n.run(t, script, sec)
		if err == nil {
			t.Fatalf("the script rotated through a link to %s:\n%s", secretFile, out)
		}
		if !strings.Contains(out, "not a regular file") {
			t.Errorf("the refusal does not say why: %s", out)
		}
		if b, _ := os.ReadFile(secretFile); string(b) != "root:SECRET-HASH:19000::::::\n" {
			t.Errorf("the link's target was changed: %q", b)
		}
		entries, _ := os.ReadDir(n.redis)
		for _, e := range entries {
			if b, err := os.ReadFile(filepath.Join(n.redis, e.Name())); err == nil && strings.Contains(string(b), "SECRET-HASH") && e.Name() != sentinelConf {
				t.Errorf("the link's target was copied into %s", e.Name())
			}
		}
		if fi, _ := os.Lstat(f); fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s was replaced although it was refused", f)
		}
		if n.record(t, "systemctl") != "" {
			t.Errorf("Sentinel was restarted after a refusal: %q", n.record(t, "systemctl"))
		}
	})

	t.Run("the directory lets others swap files", func(t *testing.T) {
		n := newFakeNode(t)
		f := filepath.Join(n.redis, sentinelConf)
		if err := os.WriteFile(f, []byte(sentinelBefore), 0o640); err != nil {
			t.Fatal(err)
		}
		os.Chmod(n.redis, 0o770) // group-writable, not sticky
		out, err := n.run(t, script, sec)
		if err == nil || !strings.Contains(out, "not sticky") {
			t.Fatalf("the script wrote in a group-writable directory without the sticky bit: %v\n%s", err, out)
		}
		if got, _ := os.ReadFile(f); string(got) != sentinelBefore {
			t.Errorf("%s changed after a refusal", f)
		}
	})
}

// TestRotationCarriesSafeDir: the stack's copy of hastack_safe_dir is the
// modules' one.
func TestRotationCarriesSafeDir(t *testing.T) {
	rs := render(t)
	script := spec[commandSpec](t, rs, "command:drop-previous-password-sentinel").Stdin
	if !strings.Contains(script, modules.SafeDirFunc) {
		t.Errorf("the rotation script's hastack_safe_dir differs from modules.SafeDirFunc:\n%s", script)
	}
}

type fileSpec struct {
	Path, Content, Owner, Group, Mode string
}

// TestSentinelUnitRendered: the asperaredissentinel unit is a file the stack
// renders (the plan shows its diff), the same text as the lab's stand-in of
// the one HSTS ships; systemd reloads and Sentinel restarts (in the serial
// phase) when it changes; nothing copies a file from the service user's
// directory as root.
func TestSentinelUnitRendered(t *testing.T) {
	rs := render(t)
	const id = "file:/lib/systemd/system/asperaredissentinel.service"
	unit := spec[fileSpec](t, rs, id)
	shipped, err := os.ReadFile("../internal/lab/standins/etc/redis/asperaredissentinel.service")
	if err != nil {
		t.Fatal(err)
	}
	if unit.Content != string(shipped) {
		t.Errorf("the rendered unit:\n%s\ndiffers from the stand-in HSTS ships:\n%s", unit.Content, shipped)
	}
	if unit.Owner != "root" || unit.Group != "root" || unit.Mode != "0644" {
		t.Errorf("unit owner/mode %s:%s %s", unit.Owner, unit.Group, unit.Mode)
	}
	for _, w := range []string{"command:daemon-reload", "service:asperaredissentinel"} {
		r := rs[w]
		found := false
		for _, x := range r.Watch {
			found = found || x == id
		}
		if !found {
			t.Errorf("%s does not watch %s", w, id)
		}
	}
	if rs["service:asperaredissentinel"].Phase != rs["service:asperaredisd"].Phase {
		t.Errorf("Sentinel does not restart in the services' serial phase")
	}
	for id, r := range rs {
		if r.Kind == "command" && strings.Contains(string(r.Spec), "/opt/aspera/etc/redis/asperaredissentinel.service") {
			t.Errorf("%s still reads the unit from the service user's directory: %s", id, r.Spec)
		}
	}
}

// TestRedisDirRootOwned: the service user may create files in the config
// directory but not own it, and the sticky bit keeps root's files there.
func TestRedisDirRootOwned(t *testing.T) {
	rs := render(t)
	d := spec[struct{ Path, Owner, Group, Mode string }](t, rs, "dir:/opt/aspera/etc/redis")
	if d.Owner != "root" || d.Group != "aspadmins" || d.Mode != "1770" {
		t.Errorf("dir %s: %s:%s %s, want root:aspadmins 1770", d.Path, d.Owner, d.Group, d.Mode)
	}
	for _, id := range []string{"conf:/opt/aspera/etc/redis/aspera_31415.conf", "conf:/opt/aspera/etc/redis/sentinel_41415.conf"} {
		c := spec[struct{ Owner, Group, Mode string }](t, rs, id)
		if c.Owner != "asperadaemon" || c.Group != "aspadmins" || c.Mode != "0640" {
			t.Errorf("%s: %s:%s %s, want asperadaemon:aspadmins 0640", id, c.Owner, c.Group, c.Mode)
		}
	}
}
