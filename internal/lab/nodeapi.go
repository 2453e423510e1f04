package lab

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
)

// The Node API stand-in (standins/nodeapi) is a small Go program: a correct
// HTTPS server with RSA token checks is far shorter in Go than in shell. The
// lab builds it from the embedded source with the machine's Go, once per
// source version (a file under /tmp named by the source's hash, shared by
// every lab of every process), and hard-links it into each node as
// /opt/aspera/sbin/asperanoded-lab: 201 nodes cost one file. The
// asperanoded stand-in script execs it. Without Go the script stays the old
// idle daemon and logs why (the file asperanoded-lab.missing says).
const nodeAPIName = "asperanoded-lab"

var nodeAPIBuild struct {
	once sync.Once
	path string
	err  error
}

// nodeAPIBinary returns the built stand-in, building it the first time.
func nodeAPIBinary() (string, error) {
	nodeAPIBuild.once.Do(func() {
		nodeAPIBuild.path, nodeAPIBuild.err = buildNodeAPI()
	})
	return nodeAPIBuild.path, nodeAPIBuild.err
}

func buildNodeAPI() (string, error) {
	src := map[string][]byte{}
	h := sha256.New()
	ents, err := fs.ReadDir(standins, "standins/nodeapi")
	if err != nil {
		return "", err
	}
	var names []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".go") && !strings.HasSuffix(e.Name(), "_test.go") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, n := range names {
		b, err := standins.ReadFile(path.Join("standins/nodeapi", n))
		if err != nil {
			return "", err
		}
		src[n] = b
		fmt.Fprintf(h, "%s %d\n", n, len(b))
		h.Write(b)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		if _, serr := os.Stat("/usr/local/go/bin/go"); serr != nil {
			return "", errors.New("no go on PATH or in /usr/local/go to build the Node API stand-in")
		}
		goBin = "/usr/local/go/bin/go"
	}
	out := filepath.Join(os.TempDir(), "hastack-nodeapi-"+hex.EncodeToString(h.Sum(nil))[:16])
	if fi, err := os.Stat(out); err == nil && fi.Mode().IsRegular() && fi.Sys().(*syscall.Stat_t).Uid == 0 {
		return out, nil // built by an earlier run (root's: it runs on every node)
	}
	dir, err := os.MkdirTemp("", "hastack-nodeapi-src-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	args := []string{"build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(dir, nodeAPIName)}
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), src[n], 0o644); err != nil {
			return "", err
		}
		args = append(args, n)
	}
	cmd := exec.Command(goBin, args...)
	cmd.Dir = dir
	// The files alone, outside any module: only the standard library.
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GO111MODULE=on", "GOWORK=off", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the Node API stand-in: %v: %s", err, strings.TrimSpace(string(b)))
	}
	// Renamed into place: a concurrent build of the same source wins or
	// loses whole.
	if err := os.Rename(filepath.Join(dir, nodeAPIName), out); err != nil {
		return "", err
	}
	return out, nil
}

// installNodeAPI puts the stand-in into node n's /opt/aspera/sbin.
func (l *Lab) installNodeAPI(n *Node) error {
	dst := filepath.Join(n.Dir, "opt/aspera/sbin", nodeAPIName)
	bin, err := nodeAPIBinary()
	if err != nil {
		return os.WriteFile(dst+".missing", []byte(err.Error()+"\n"), 0o644)
	}
	if err := os.Link(bin, dst); err == nil {
		return nil
	} else if !errors.Is(err, syscall.EXDEV) {
		return err
	}
	// Another filesystem (TMPDIR elsewhere): a copy.
	in, err := os.Open(bin)
	if err != nil {
		return err
	}
	defer in.Close()
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, in); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
