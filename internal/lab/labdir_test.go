package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// These tests plant what anyone on the machine could plant under the
// predictable /tmp/hastack-lab-NAME, and check that root removes, kills
// and enters nothing but the lab's own. They need root (as the lab does)
// but start no lab.

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the lab dir must be root's, and the test makes a network namespace")
	}
}

// testName is a lab name unique to the test and the process.
func testName(t *testing.T) string {
	h := fnv.New32a()
	fmt.Fprintf(h, "%s/%d", t.Name(), os.Getpid())
	return fmt.Sprintf("u%08x", h.Sum32())
}

// victim makes a directory outside any lab with a file in it, and returns
// a check that both are still there.
func victim(t *testing.T) (dir string, intact func() bool) {
	dir = filepath.Join(t.TempDir(), "victim")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	keep := filepath.Join(dir, "keep")
	if err := os.WriteFile(keep, []byte("not the lab's\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, func() bool { _, err := os.Stat(keep); return err == nil }
}

// foreign is a network namespace that is not the lab's, with a process in
// it that looks like a node's init (PID 1 of a child PID namespace).
type foreign struct {
	netns string
	init  int
	cmd   *exec.Cmd
}

func startForeign(t *testing.T) *foreign {
	t.Helper()
	f := &foreign{netns: "hx-" + testName(t)}
	if out, err := exec.Command("ip", "netns", "add", f.netns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "delete", f.netns).Run() })
	f.cmd = exec.Command("ip", "netns", "exec", f.netns, "unshare", "--pid", "--fork", "sleep", "300")
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { f.cmd.Wait(); close(exited) }()
	t.Cleanup(func() { f.cmd.Process.Kill(); <-exited })
	for deadline := time.Now().Add(10 * time.Second); f.init == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the foreign init did not start")
		}
		if inits := filterInits(pidsInNetns(f.netns)); len(inits) == 1 {
			f.init = inits[0]
		}
	}
	return f
}

// alive reports whether the foreign namespace and its init are untouched.
func (f *foreign) alive() bool {
	_, err := os.Stat("/run/netns/" + f.netns)
	return err == nil && syscall.Kill(f.init, 0) == nil && inNetns(f.init, f.netns)
}

// plantJSON writes a lab.json for lab name whose dir and namespace point
// at what is not the lab's.
func plantJSON(t *testing.T, dir, name, victimDir string, f *foreign) {
	t.Helper()
	l := Lab{
		Name: name, Dir: victimDir, Controller: f.netns,
		Nodes: []Node{{Name: "node1", Netns: f.netns, PID: f.init, Dir: victimDir}},
	}
	b, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "lab.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "boot.sh"), bootScript, 0o755); err != nil {
		t.Fatal(err)
	}
}

// labPath returns the lab dir of name, removed when the test ends.
func labPath(t *testing.T, name string) string {
	dir := DirOf(name)
	os.RemoveAll(dir)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// refused checks that err is an error that says so, that nothing outside
// the lab was touched, and that the planted dir is left to its owner.
func refused(t *testing.T, what string, err error, want string, intact func() bool, f *foreign, planted string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("%s: err = %v, want one saying %q", what, err, want)
	}
	if !intact() {
		t.Errorf("%s removed a directory outside the lab", what)
	}
	if !f.alive() {
		t.Errorf("%s killed a process or deleted a namespace that is not the lab's", what)
	}
	if _, err := os.Lstat(planted); err != nil {
		t.Errorf("%s removed the planted %s: %v", what, planted, err)
	}
}

// A user plants /tmp/hastack-lab-NAME (theirs, mode 0777) with a lab.json
// pointing at another directory and another namespace: down, up, exec and
// HASTACK_LAB all refuse it and touch nothing.
func TestPlantedLabDirOfAnotherUser(t *testing.T) {
	needRoot(t)
	name := testName(t)
	dir := labPath(t, name)
	vdir, intact := victim(t)
	f := startForeign(t)
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	plantJSON(t, dir, name, vdir, f)
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, filepath.Join(dir, "lab.json"), filepath.Join(dir, "boot.sh")} {
		if err := os.Chown(p, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	want := "owned by uid 65534"
	refused(t, "Clean", Clean(name), want, intact, f, dir)
	_, err := Up(context.Background(), Options{Name: name, Nodes: 1})
	refused(t, "Up", err, want, intact, f, dir)
	_, err = Open(name)
	refused(t, "Open", err, want, intact, f, dir)
	_, err = Load(dir)
	refused(t, "Load", err, want, intact, f, dir)
}

// /tmp/hastack-lab-NAME is a symlink to a directory that holds a lab.json:
// it is never followed.
func TestPlantedLabDirSymlink(t *testing.T) {
	needRoot(t)
	name := testName(t)
	dir := labPath(t, name)
	target, intact := victim(t)
	f := startForeign(t)
	plantJSON(t, target, name, target, f)
	if err := os.Symlink(target, dir); err != nil {
		t.Fatal(err)
	}
	want := "symbolic link"
	refused(t, "Clean", Clean(name), want, intact, f, dir)
	_, err := Open(name)
	refused(t, "Open", err, want, intact, f, dir)
}

// Even in a dir that passes the checks (so written by root), a lab.json
// that names other dirs or namespaces than the lab's is refused, not used.
func TestLabJSONThatDoesNotMatchTheName(t *testing.T) {
	needRoot(t)
	name := testName(t)
	vdir, intact := victim(t)
	f := startForeign(t)
	for _, tc := range []struct {
		what string
		edit func(l *Lab)
		want string
	}{
		{"dir elsewhere", func(l *Lab) { l.Dir = vdir }, "says dir"},
		{"node dir elsewhere", func(l *Lab) { l.Nodes[0].Dir = vdir }, "says nodes[0].dir"},
		{"another netns", func(l *Lab) { l.Nodes[0].Netns = f.netns; l.Nodes[0].PID = f.init }, "says nodes[0].netns"},
		{"another controller", func(l *Lab) { l.Controller = f.netns }, "says controller"},
		{"no nodes", func(l *Lab) { l.Nodes = nil }, "lists 0 nodes"},
	} {
		t.Run(tc.what, func(t *testing.T) {
			dir := labPath(t, name)
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			l := newLab(name, 2)
			tc.edit(l)
			b, _ := json.Marshal(l)
			if err := os.WriteFile(filepath.Join(dir, "lab.json"), b, 0o600); err != nil {
				t.Fatal(err)
			}
			refused(t, "Clean", Clean(name), tc.want, intact, f, dir)
			_, err := Open(name)
			refused(t, "Open", err, tc.want, intact, f, dir)
		})
	}
}

// A lab.json that is a symlink, too large, or not a regular file is not
// read (a FIFO would hang the reader).
func TestLabJSONMustBeASmallRegularFile(t *testing.T) {
	needRoot(t)
	name := testName(t)
	elsewhere := filepath.Join(t.TempDir(), "lab.json")
	b, _ := json.Marshal(newLab(name, 1))
	if err := os.WriteFile(elsewhere, b, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		what  string
		plant func(p string) error
		want  string
	}{
		{"symlink", func(p string) error { return os.Symlink(elsewhere, p) }, "too many levels of symbolic links"},
		{"too large", func(p string) error {
			return os.WriteFile(p, append(b, make([]byte, maxLabJSON)...), 0o600)
		}, "larger than"},
		{"fifo", func(p string) error { return syscall.Mkfifo(p, 0o600) }, "not a regular file"},
	} {
		t.Run(tc.what, func(t *testing.T) {
			dir := labPath(t, name)
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := tc.plant(filepath.Join(dir, "lab.json")); err != nil {
				t.Fatal(err)
			}
			if _, err := Open(name); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open: err = %v, want one saying %q", err, tc.want)
			}
		})
	}
}

// HASTACK_LAB names a dir: only a lab's own /tmp/hastack-lab-NAME is read.
func TestLoadReadsOnlyALabDir(t *testing.T) {
	needRoot(t)
	dir := t.TempDir() // root's, mode 0700: it would pass every other check
	b, _ := json.Marshal(newLab("x", 1))
	if err := os.WriteFile(filepath.Join(dir, "lab.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dir, "/tmp/hastack-lab-", "/tmp/hastack-lab-UP", "/tmp/x/../hastack-lab-a/b"} {
		if _, err := Load(d); err == nil || !strings.Contains(err.Error(), "not a lab dir") {
			t.Errorf("Load(%s): err = %v, want not a lab dir", d, err)
		}
	}
}

// A pid in lab.json is not entered unless it is the init of the node's own
// namespace: here it is a look-alike init in another namespace.
func TestExecEntersOnlyTheNodesInit(t *testing.T) {
	needRoot(t)
	name := testName(t)
	dir := labPath(t, name)
	f := startForeign(t)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	saved := newLab(name, 1)
	saved.Nodes[0].PID = f.init
	b, _ := json.Marshal(saved)
	if err := os.WriteFile(filepath.Join(dir, "lab.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := Open(name)
	if err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(t.TempDir(), "ran")
	_, err = l.Exec(context.Background(), "node1", "touch", marker)
	if err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("Exec: err = %v, want node1 is not running", err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("Exec ran the command in the namespaces of pid %d, which is not the node's", f.init)
	}
	if err := l.Down(); err != nil {
		t.Fatal(err)
	}
	if !f.alive() {
		t.Errorf("Down killed pid %d, which is not the lab's", f.init)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Down left the lab dir: %v", err)
	}
}

// Clean removes a dir that is a lab's leftover (root's, with boot.sh, or
// empty) and refuses one of root's that is not.
func TestCleanRemovesOnlyALabsLeftovers(t *testing.T) {
	needRoot(t)
	name := testName(t)
	for _, tc := range []struct {
		what   string
		files  []string
		remove bool
	}{
		{"empty", nil, true},
		{"crashed before lab.json", []string{"boot.sh", "id_ed25519"}, true},
		{"something else", []string{"notes.txt"}, false},
	} {
		t.Run(tc.what, func(t *testing.T) {
			dir := labPath(t, name)
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			for _, f := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			err := Clean(name)
			_, statErr := os.Stat(dir)
			if tc.remove && (err != nil || !errors.Is(statErr, os.ErrNotExist)) {
				t.Errorf("Clean: %v; dir: %v; want it removed", err, statErr)
			}
			if !tc.remove && (err == nil || statErr != nil) {
				t.Errorf("Clean: %v; dir: %v; want an error and the dir kept", err, statErr)
			}
		})
	}
}

// No lab's namespace is ever another lab's: with "hl-NAME-nodeI", lab "a"
// and lab "a-node1" shared hl-a-node1, so downing one deleted the other's.
func TestLabsNeverShareANamespace(t *testing.T) {
	owner := map[string]string{}
	for _, name := range []string{"a", "a-node1", "a-node1-n", "a-1", "node1", "a-node11"} {
		l := newLab(name, 12)
		for _, ns := range l.netnsNames() {
			if o, ok := owner[ns]; ok {
				t.Errorf("namespace %s is both lab %q's and lab %q's", ns, o, name)
			}
			owner[ns] = name
		}
	}
}

func TestValidName(t *testing.T) {
	for _, name := range []string{"", "-a", "A", "a/b", "../x", "a.b", "a b", "abcdefghijklm", "a\n"} {
		if ValidName(name) == nil {
			t.Errorf("ValidName(%q) = nil, want an error", name)
		}
	}
	for _, name := range []string{"a", "lab", "t0123abcd", "p31", "a-b-c"} {
		if err := ValidName(name); err != nil {
			t.Errorf("ValidName(%q) = %v", name, err)
		}
	}
}
