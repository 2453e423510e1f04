package engine

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"cuelang.org/go/cue"

	"hastack.dev/hastack/engine/config"
	"hastack.dev/hastack/schema"
	"hastack.dev/hastack/stacks"
)

// RenderCache keeps the stack's output on disk, keyed by everything the
// evaluation reads: the embedded schema and stack sources, the CUE
// evaluator's version, the system as the user's files define it, and the
// inputs its driver renders it for.
// Evaluating the stack is most of a plan's CPU (about 60 ms for 31 nodes);
// a scheduled drift check plans the same cluster again and again. What is
// kept is the stack's JSON, decoded and checked by the same code as a fresh
// render, and it holds no secret (the password is a placeholder until a
// command runs). A nil *RenderCache renders every time.
//
// An entry is code that will run as root on every node, so it is trusted
// only as far as the user's own files are: the directory must be the
// user's and writable by no one else, and each entry carries an HMAC-SHA256
// of its key and content under a random key kept 0600 beside the entries.
// An entry that fails any check is a miss and is written again; a
// directory that fails makes the cache render every time.
type RenderCache struct {
	Dir  string
	Keep int // entries kept (the newest); 0 means 32

	// parent, when set, is a directory above Dir that hastack created and
	// checks as it checks Dir (~/.cache/hastack for the default cache).
	parent string
}

const (
	macKeyFile  = "key"    // the HMAC key's file in Dir
	macKeySize  = 32       // bytes of HMAC key
	maxEntry    = 64 << 20 // bytes; a 31-node render is about 300 KB
	entryHeader = "hastack render v2 "
)

// DefaultRenderCache is the user's cache directory, or nil when there is
// none or HASTACK_RENDER_CACHE=off. When the directory is unsafe to trust
// (not the user's, writable by others, a symlink) it is nil too, with the
// reason: the caller warns and plans without a cache.
func DefaultRenderCache() (*RenderCache, error) {
	if os.Getenv("HASTACK_RENDER_CACHE") == "off" {
		return nil, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return nil, nil
	}
	c := &RenderCache{Dir: filepath.Join(base, "hastack", "render"), parent: filepath.Join(base, "hastack")}
	if _, err := c.macKey(); err != nil {
		return nil, fmt.Errorf("the render cache is off for this run: %w", err)
	}
	return c, nil
}

// Render is Render, from the cache when it holds these inputs. hit says
// which.
func (c *RenderCache) Render(ctx *cue.Context, cl *config.Cluster, sys System, inputs map[string]any) (r *Rendered, hit bool, err error) {
	if c == nil {
		r, err = Render(ctx, cl, sys, inputs)
		return r, false, err
	}
	// Any failure here only costs the time of a fresh render.
	name, kerr := renderKey(cl, inputs)
	var mac []byte
	if kerr == nil {
		mac, kerr = c.macKey()
	}
	if kerr == nil {
		if out := c.get(mac, name); out != nil {
			if r, err := decodeRendered(cl, sys, inputs, out); err == nil {
				return r, true, nil
			}
		}
	}
	out, err := renderJSON(ctx, cl, sys, inputs)
	if err != nil {
		return nil, false, err
	}
	if r, err = decodeRendered(cl, sys, inputs, out); err != nil {
		return nil, false, err
	}
	if kerr == nil {
		c.put(mac, name, out)
	}
	return r, false, nil
}

// get is the entry for name when it is the user's, 0600, within bounds
// and its MAC is right; nil otherwise.
func (c *RenderCache) get(mac []byte, name string) *rendered {
	b, err := readPrivate(filepath.Join(c.Dir, name+".json"), maxEntry)
	if err != nil {
		return nil
	}
	body, ok := openEntry(mac, name, b)
	if !ok {
		return nil
	}
	var out rendered
	if json.Unmarshal(body, &out) != nil || out.Phases == nil || out.Nodes == nil {
		return nil
	}
	return &out
}

// put writes an entry atomically (0600, in a 0700 directory) and keeps
// only the newest entries.
func (c *RenderCache) put(mac []byte, name string, out *rendered) {
	// Not json.Marshal: it would HTML-escape the specs' "&&" and "<",
	// and the entry should hold the very bytes a fresh render decodes.
	var buf bytes.Buffer
	buf.WriteString(entryHeader)
	buf.WriteString(strings.Repeat("0", 2*sha256.Size)) // the MAC, below
	buf.WriteByte('\n')
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if enc.Encode(out) != nil || buf.Len() > maxEntry {
		return
	}
	b := buf.Bytes()
	hex.Encode(b[len(entryHeader):], entryMAC(mac, name, b[len(entryHeader)+2*sha256.Size+1:]))
	if writeAtomic(c.Dir, name+".json", b) != nil {
		return
	}
	c.prune()
}

// prune keeps the newest Keep entries and removes the temporary files a
// killed run left.
func (c *RenderCache) prune() {
	keep := c.Keep
	if keep == 0 {
		keep = 32
	}
	ents, err := os.ReadDir(c.Dir)
	if err != nil || len(ents) <= keep+1 { // +1: the key
		return
	}
	type entry struct {
		name string
		info fs.FileInfo
	}
	var es []entry
	for _, e := range ents {
		info, err := e.Info()
		switch {
		case err != nil:
		case filepath.Ext(e.Name()) == ".json":
			es = append(es, entry{e.Name(), info})
		case strings.HasPrefix(e.Name(), ".tmp-") && time.Since(info.ModTime()) > time.Hour:
			os.Remove(filepath.Join(c.Dir, e.Name()))
		}
	}
	sort.Slice(es, func(i, j int) bool { return es[i].info.ModTime().After(es[j].info.ModTime()) })
	for _, e := range es[min(keep, len(es)):] {
		os.Remove(filepath.Join(c.Dir, e.name))
	}
}

// entryMAC authenticates an entry's body under its name, so that neither
// the content nor the inputs it answers for can be changed.
func entryMAC(mac []byte, name string, body []byte) []byte {
	h := hmac.New(sha256.New, mac)
	fmt.Fprintf(h, "hastack render entry\x00%s\x00", name)
	h.Write(body)
	return h.Sum(nil)
}

// openEntry is an entry's body when its header holds the body's MAC.
func openEntry(mac []byte, name string, b []byte) ([]byte, bool) {
	n := len(entryHeader) + 2*sha256.Size + 1
	if len(b) < n || string(b[:len(entryHeader)]) != entryHeader || b[n-1] != '\n' {
		return nil, false
	}
	want := make([]byte, sha256.Size)
	if _, err := hex.Decode(want, b[len(entryHeader):n-1]); err != nil {
		return nil, false
	}
	body := b[n:]
	return body, hmac.Equal(want, entryMAC(mac, name, body))
}

// macKey checks the cache's directories and reads the HMAC key, making
// one the first time (or when the one there fails a check: the entries
// made with it are then misses).
func (c *RenderCache) macKey() ([]byte, error) {
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return nil, err
	}
	for _, d := range []string{c.parent, c.Dir} {
		if d == "" {
			continue
		}
		if err := checkPrivateDir(d); err != nil {
			return nil, err
		}
	}
	path := filepath.Join(c.Dir, macKeyFile)
	k, err := readPrivate(path, macKeySize)
	if err == nil && len(k) == macKeySize {
		return k, nil
	}
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		os.Remove(path) // unlinks a symlink, never its target
	}
	return newMACKey(c.Dir)
}

// newMACKey makes a random key and links it in as the key file. The
// temporary file is made with O_EXCL and the link fails if a key is there
// already: a key file is whole or absent, and when two runs make one at
// once, the loser uses the winner's.
func newMACKey(dir string) ([]byte, error) {
	k := make([]byte, macKeySize)
	rand.Read(k)
	tmp, err := writeTemp(dir, k)
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp)
	path := filepath.Join(dir, macKeyFile)
	if err := os.Link(tmp, path); err != nil {
		if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		if k, err = readPrivate(path, macKeySize); err != nil || len(k) != macKeySize {
			return nil, fmt.Errorf("%s: not a key of %d bytes", path, macKeySize)
		}
	}
	return k, nil
}

// writeAtomic writes name in dir (0600) through a temporary file in dir,
// so that a reader sees the old file or the new one, whole.
func writeAtomic(dir, name string, b []byte) error {
	tmp, err := writeTemp(dir, b)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// writeTemp writes b to a new file in dir, mode 0600 whatever the umask,
// and returns its path.
func writeTemp(dir string, b []byte) (string, error) {
	f, err := os.CreateTemp(dir, ".tmp-*") // O_CREATE|O_EXCL
	if err != nil {
		return "", err
	}
	_, werr := f.Write(b)
	cherr := f.Chmod(0o600)
	if cerr := f.Close(); werr != nil || cherr != nil || cerr != nil {
		os.Remove(f.Name())
		return "", errors.Join(werr, cherr, cerr)
	}
	return f.Name(), nil
}

// checkPrivateDir says why dir cannot be trusted with code that runs as
// root: it must be a directory (not a symlink to one) that the user owns
// and that neither group nor others can write.
func checkPrivateDir(dir string) error {
	info, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	switch {
	case info.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("%s is a symlink", dir)
	case !info.IsDir():
		return fmt.Errorf("%s is not a directory", dir)
	}
	if err := checkOwner(dir, info); err != nil {
		return err
	}
	if info.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s is writable by group or others (mode %04o); chmod 700 it", dir, info.Mode().Perm())
	}
	return nil
}

// readPrivate reads a file that must be the user's alone: a regular file
// (opened without following a symlink, and without blocking on a FIFO),
// owned by the user, mode 0600, at most max bytes.
func readPrivate(path string, max int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	switch {
	case !info.Mode().IsRegular():
		return nil, fmt.Errorf("%s is not a regular file", path)
	case info.Mode().Perm() != 0o600:
		return nil, fmt.Errorf("%s: mode %04o, want 0600", path, info.Mode().Perm())
	case info.Size() > max:
		return nil, fmt.Errorf("%s: %d bytes, more than %d", path, info.Size(), max)
	}
	if err := checkOwner(path, info); err != nil {
		return nil, err
	}
	b := make([]byte, info.Size())
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, err
	}
	return b, nil
}

// checkOwner says whether info, path's, is owned by the user hastack runs
// as.
func checkOwner(path string, info fs.FileInfo) error {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: no owner to check", path)
	}
	if uid := os.Geteuid(); int64(st.Uid) != int64(uid) {
		return fmt.Errorf("%s is owned by uid %d, not by this user (uid %d)", path, st.Uid, uid)
	}
	return nil
}

// renderKey hashes a render's inputs.
func renderKey(cl *config.Cluster, inputs map[string]any) (string, error) {
	src, err := sourcesHash()
	if err != nil {
		return "", err
	}
	clJSON, err := cl.Value.MarshalJSON()
	if err != nil {
		return "", err
	}
	in, err := json.Marshal(inputs) // map keys sorted: one key per inputs
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "hastack render v2\x00%s\x00%s\x00%s\x00%s\x00%s\x00", src, cl.Field, cl.Driver, clJSON, in)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// sourcesHash covers what the evaluation is made of besides its inputs:
// the embedded CUE files and the CUE module's version.
var sourcesHash = sync.OnceValues(func() (string, error) {
	h := sha256.New()
	cueVersion := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "cuelang.org/go" {
				cueVersion = d.Version + " " + d.Sum
			}
		}
	}
	fmt.Fprintf(h, "cue %s\x00", cueVersion)
	for _, fsys := range []fs.FS{schema.FS, stacks.FS} {
		err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := fs.ReadFile(fsys, p)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "%s\x00%d\x00", p, len(b))
			h.Write(b)
			return nil
		})
		if err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
})
