package engine

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"hastack.dev/hastack/engine/config"
)

// The render cache holds commands that run as root on every node: an
// entry anyone but the user could have written or changed is never used.

// cacheFixture is a render cache holding one entry for the three-node
// example, and the fresh render the entry must equal.
type cacheFixture struct {
	t     *testing.T
	cfg   *config.Config
	c     *RenderCache
	fresh *Rendered
}

// echoInputs are what the fixture renders for.
var echoInputs = map[string]any{"text": "cached"}

// threeNode is a three-node echo system and its fresh render, made once.
var threeNode struct {
	once  sync.Once
	cfg   *config.Config
	fresh *Rendered
	err   error
}

func newCacheFixture(t *testing.T) *cacheFixture {
	t.Helper()
	threeNode.once.Do(func() {
		cfg, cl := echoCluster(t, 3)
		threeNode.cfg = cfg
		threeNode.fresh, threeNode.err = Render(cfg.Context, cl, echoSystem{plain{cl}, "/tmp/x"}, echoInputs)
	})
	if threeNode.err != nil {
		t.Fatal(threeNode.err)
	}
	f := &cacheFixture{t: t, cfg: threeNode.cfg, c: &RenderCache{Dir: filepath.Join(t.TempDir(), "render")}, fresh: threeNode.fresh}
	if _, hit := f.render(); hit {
		t.Fatal("an empty cache hit")
	}
	if _, hit := f.render(); !hit {
		t.Fatal("the same inputs missed")
	}
	return f
}

// render renders through the cache and checks the result is the fresh
// render, whether it came from the cache or not.
func (f *cacheFixture) render() (*Rendered, bool) {
	f.t.Helper()
	cl := f.cfg.Clusters[0]
	r, hit, err := f.c.Render(f.cfg.Context, cl, echoSystem{plain{cl}, "/tmp/x"}, echoInputs)
	if err != nil {
		f.t.Fatal(err)
	}
	want, got := *f.fresh, *r
	want.Cluster, got.Cluster = nil, nil
	if reflect.DeepEqual(want, got) {
		return r, hit // cmp.Diff is slow: only for the message
	}
	if d := cmp.Diff(f.fresh, r, cmpopts.IgnoreFields(Rendered{}, "Cluster")); d != "" {
		f.t.Fatalf("render (hit %t) differs from a fresh one (-fresh +got):\n%s", hit, d)
	}
	return r, hit
}

// entry is the path of the one entry.
func (f *cacheFixture) entry() string {
	f.t.Helper()
	m, _ := filepath.Glob(filepath.Join(f.c.Dir, "*.json"))
	if len(m) != 1 {
		f.t.Fatalf("%d entries, want 1", len(m))
	}
	return m[0]
}

// wantMissThenHit: a bad entry is a miss, and it is replaced by a good
// one (the next render hits).
func (f *cacheFixture) wantMissThenHit() {
	f.t.Helper()
	if _, hit := f.render(); hit {
		f.t.Fatal("a bad entry was used")
	}
	if _, hit := f.render(); !hit {
		f.t.Fatal("the bad entry was not replaced")
	}
	info, err := os.Lstat(f.entry())
	if err != nil || !info.Mode().IsRegular() || info.Mode().Perm() != 0o600 {
		f.t.Fatalf("the replaced entry: %v %v, want a regular 0600 file", info.Mode(), err)
	}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// An entry whose content was edited (its MAC line kept) is a miss.
func TestRenderCacheEditedEntry(t *testing.T) {
	f := newCacheFixture(t)
	p := f.entry()
	b, err := os.ReadFile(p)
	mustDo(t, err)
	const cmd = `"content":"cached `
	if !bytes.Contains(b, []byte(cmd)) {
		t.Fatalf("no %s in the entry to edit", cmd)
	}
	b = bytes.Replace(b, []byte(cmd), []byte(`"content":"pwned `), 1)
	mustDo(t, os.WriteFile(p, b, 0o600))
	f.wantMissThenHit() // render compares with the fresh render: no "pwned"
}

// An entry moved to another entry's name (a right MAC, for other inputs)
// is a miss.
func TestRenderCacheSwappedEntry(t *testing.T) {
	f := newCacheFixture(t)
	p := f.entry()
	cl := f.cfg.Clusters[0]
	if _, _, err := f.c.Render(f.cfg.Context, cl, echoSystem{plain{cl}, "/tmp/x"}, map[string]any{"text": "other"}); err != nil {
		t.Fatal(err)
	}
	m, _ := filepath.Glob(filepath.Join(f.c.Dir, "*.json"))
	if len(m) != 2 {
		t.Fatalf("%d entries, want 2", len(m))
	}
	other := m[0]
	if other == p {
		other = m[1]
	}
	mustDo(t, os.Rename(other, p))
	f.wantMissThenHit()
}

// An entry that is damaged, in the wrong place or not the user's alone
// is a miss, and is replaced.
func TestRenderCacheBadEntry(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(t *testing.T, p string)
	}{
		{"truncated", func(t *testing.T, p string) {
			info, _ := os.Stat(p)
			mustDo(t, os.Truncate(p, info.Size()/2))
		}},
		{"mode 0644", func(t *testing.T, p string) { mustDo(t, os.Chmod(p, 0o644)) }},
		{"too big", func(t *testing.T, p string) { mustDo(t, os.Truncate(p, maxEntry+1)) }},
		{"a symlink to a good entry", func(t *testing.T, p string) {
			target := filepath.Join(t.TempDir(), "entry.json")
			mustDo(t, os.Rename(p, target))
			mustDo(t, os.Symlink(target, p))
		}},
		{"a FIFO", func(t *testing.T, p string) {
			mustDo(t, os.Remove(p))
			mustDo(t, syscall.Mkfifo(p, 0o600))
		}},
		{"owned by nobody", func(t *testing.T, p string) {
			if os.Geteuid() != 0 {
				t.Skip("chown needs root")
			}
			mustDo(t, os.Chown(p, 65534, 65534))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newCacheFixture(t)
			tc.spoil(t, f.entry())
			f.wantMissThenHit()
		})
	}
}

// A directory others can write, or one that is not the user's, is no
// cache: every render is fresh and nothing is written there.
func TestRenderCacheUnsafeDir(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(t *testing.T, dir string)
	}{
		{"mode 0777", func(t *testing.T, dir string) { mustDo(t, os.Chmod(dir, 0o777)) }},
		{"mode 0770", func(t *testing.T, dir string) { mustDo(t, os.Chmod(dir, 0o770)) }},
		{"owned by nobody", func(t *testing.T, dir string) {
			if os.Geteuid() != 0 {
				t.Skip("chown needs root")
			}
			mustDo(t, os.Chown(dir, 65534, 65534))
		}},
		{"a symlink", func(t *testing.T, dir string) {
			real := filepath.Join(filepath.Dir(dir), "real")
			mustDo(t, os.Rename(dir, real))
			mustDo(t, os.Symlink(real, dir))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newCacheFixture(t)
			tc.spoil(t, f.c.Dir)
			os.Remove(filepath.Join(f.c.Dir, "key")) // would a new one be written?
			for range 2 {
				if _, hit := f.render(); hit {
					t.Fatal("an entry in an unsafe directory was used")
				}
			}
			if _, err := os.Lstat(filepath.Join(f.c.Dir, "key")); err == nil {
				t.Error("a key was written into an unsafe directory")
			}
		})
	}
}

// A key file that is not the user's alone is replaced, and the entries
// made with it are misses.
func TestRenderCacheBadKey(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(t *testing.T, key string)
	}{
		{"mode 0644", func(t *testing.T, key string) { mustDo(t, os.Chmod(key, 0o644)) }},
		{"owned by nobody", func(t *testing.T, key string) {
			if os.Geteuid() != 0 {
				t.Skip("chown needs root")
			}
			mustDo(t, os.Chown(key, 65534, 65534))
		}},
		{"a symlink to the key", func(t *testing.T, key string) {
			target := filepath.Join(t.TempDir(), "key")
			mustDo(t, os.Rename(key, target))
			mustDo(t, os.Symlink(target, key))
		}},
		{"too long", func(t *testing.T, key string) {
			mustDo(t, os.WriteFile(key, bytes.Repeat([]byte{1}, 33), 0o600))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newCacheFixture(t)
			key := filepath.Join(f.c.Dir, "key")
			old, err := os.ReadFile(key)
			mustDo(t, err)
			tc.spoil(t, key)
			f.wantMissThenHit()
			info, err := os.Lstat(key)
			if err != nil || !info.Mode().IsRegular() || info.Mode().Perm() != 0o600 {
				t.Fatalf("the key after: %v %v, want a regular 0600 file", info.Mode(), err)
			}
			if now, _ := os.ReadFile(key); bytes.Equal(now, old) {
				t.Error("the key was kept")
			}
		})
	}
}

// Runs that make the key at once agree on one key.
func TestRenderCacheKeyRace(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "render")
	keys := make([][]byte, 8)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			k, err := (&RenderCache{Dir: dir}).macKey()
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		})
	}
	wg.Wait()
	disk, err := os.ReadFile(filepath.Join(dir, "key"))
	mustDo(t, err)
	for i, k := range keys {
		if !bytes.Equal(k, disk) {
			t.Errorf("run %d holds a key that is not the key file's", i)
		}
	}
}

// The default cache checks its directories before the run: an unsafe one
// turns the cache off with the reason, and the plan goes on.
func TestDefaultRenderCacheUnsafe(t *testing.T) {
	for _, tc := range []struct {
		name, dir string // dir under $XDG_CACHE_HOME
		mode      os.FileMode
		want      string
	}{
		{"render dir 0777", "hastack/render", 0o777, "hastack/render is writable by group or others (mode 0777)"},
		{"hastack dir 0777", "hastack", 0o777, "hastack is writable by group or others (mode 0777)"},
		{"hastack dir 0775", "hastack", 0o775, "hastack is writable by group or others (mode 0775)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			t.Setenv("XDG_CACHE_HOME", base)
			t.Setenv("HASTACK_RENDER_CACHE", "")
			c, err := DefaultRenderCache()
			if c == nil || err != nil {
				t.Fatalf("a new cache: %v, %v", c, err)
			}
			mustDo(t, os.Chmod(filepath.Join(base, tc.dir), tc.mode))
			c, err = DefaultRenderCache()
			if c != nil || err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %v, %v; want no cache and one line with %q", c, err, tc.want)
			}
		})
	}
	t.Run("a symlinked hastack dir", func(t *testing.T) {
		base := t.TempDir()
		t.Setenv("XDG_CACHE_HOME", base)
		mustDo(t, os.MkdirAll(filepath.Join(base, "elsewhere", "render"), 0o700))
		mustDo(t, os.Symlink(filepath.Join(base, "elsewhere"), filepath.Join(base, "hastack")))
		if c, err := DefaultRenderCache(); c != nil || err == nil || !strings.Contains(err.Error(), "is a symlink") {
			t.Fatalf("got %v, %v; want no cache: a symlink", c, err)
		}
	})
	t.Run("off", func(t *testing.T) {
		t.Setenv("HASTACK_RENDER_CACHE", "off")
		if c, err := DefaultRenderCache(); c != nil || err != nil {
			t.Fatalf("got %v, %v; want no cache, no warning", c, err)
		}
	})
}
