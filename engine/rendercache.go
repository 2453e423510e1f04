package engine

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"sync"

	"cuelang.org/go/cue"

	"hastack.dev/hastack/engine/config"
	"hastack.dev/hastack/schema"
	"hastack.dev/hastack/stacks"
)

// RenderCache keeps the stack's output on disk, keyed by everything the
// evaluation reads: the embedded schema and stack sources, the CUE
// evaluator's version, the cluster as the user's files define it, the live
// primary, the nodes whose Redis runs, and the live and rotating flags.
// Evaluating the stack is most of a plan's CPU (about 60 ms for 31 nodes);
// a scheduled drift check plans the same cluster again and again. What is
// kept is the stack's JSON, decoded and checked by the same code as a fresh
// render, and it holds no secret (the password is a placeholder until a
// command runs). A nil *RenderCache renders every time.
type RenderCache struct {
	Dir  string
	Keep int // entries kept (the newest); 0 means 32
}

// DefaultRenderCache is the user's cache directory, or nil when there is
// none or HASTACK_RENDER_CACHE=off.
func DefaultRenderCache() *RenderCache {
	if os.Getenv("HASTACK_RENDER_CACHE") == "off" {
		return nil
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return nil
	}
	return &RenderCache{Dir: filepath.Join(dir, "hastack", "render")}
}

// Render is Render, from the cache when it holds these inputs. hit says
// which.
func (c *RenderCache) Render(ctx *cue.Context, cl *config.Cluster, primary string, redisUp map[string]bool, live bool) (r *Rendered, hit bool, err error) {
	if c == nil {
		r, err = Render(ctx, cl, primary, redisUp, live)
		return r, false, err
	}
	key, kerr := renderKey(cl, primary, redisUp, live)
	path := filepath.Join(c.Dir, key+".json")
	if kerr == nil {
		if b, err := os.ReadFile(path); err == nil {
			var out rendered
			if json.Unmarshal(b, &out) == nil && out.Phases != nil && out.Nodes != nil {
				if r, err := decodeRendered(cl, primary, &out); err == nil {
					return r, true, nil
				}
			}
		}
	}
	out, err := renderJSON(ctx, cl, primary, redisUp, live)
	if err != nil {
		return nil, false, err
	}
	if r, err = decodeRendered(cl, primary, out); err != nil {
		return nil, false, err
	}
	if kerr == nil {
		c.put(path, out) // a cache that cannot be written only costs time
	}
	return r, false, nil
}

// put writes an entry atomically (0600, in a 0700 directory) and keeps
// only the newest entries.
func (c *RenderCache) put(path string, out *rendered) {
	// Not json.Marshal: it would HTML-escape the specs' "&&" and "<",
	// and the entry should hold the very bytes a fresh render decodes.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if enc.Encode(out) != nil || os.MkdirAll(c.Dir, 0o700) != nil {
		return
	}
	b := buf.Bytes()
	tmp, err := os.CreateTemp(c.Dir, ".tmp-*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(b)
	if cerr := tmp.Close(); werr != nil || cerr != nil || os.Rename(tmp.Name(), path) != nil {
		os.Remove(tmp.Name())
		return
	}
	keep := c.Keep
	if keep == 0 {
		keep = 32
	}
	ents, err := os.ReadDir(c.Dir)
	if err != nil || len(ents) <= keep {
		return
	}
	type entry struct {
		name string
		info fs.FileInfo
	}
	var es []entry
	for _, e := range ents {
		if info, err := e.Info(); err == nil && filepath.Ext(e.Name()) == ".json" {
			es = append(es, entry{e.Name(), info})
		}
	}
	sort.Slice(es, func(i, j int) bool { return es[i].info.ModTime().After(es[j].info.ModTime()) })
	for _, e := range es[min(keep, len(es)):] {
		os.Remove(filepath.Join(c.Dir, e.name))
	}
}

// renderKey hashes a render's inputs.
func renderKey(cl *config.Cluster, primary string, redisUp map[string]bool, live bool) (string, error) {
	src, err := sourcesHash()
	if err != nil {
		return "", err
	}
	clJSON, err := cl.Value.MarshalJSON()
	if err != nil {
		return "", err
	}
	up := make([]string, 0, len(redisUp))
	for n, ok := range redisUp {
		if ok {
			up = append(up, n)
		}
	}
	sort.Strings(up)
	h := sha256.New()
	fmt.Fprintf(h, "hastack render v1\x00%s\x00%s\x00%s\x00%q\x00%t\x00%t\x00", src, clJSON, primary, up, live, cl.PreviousSecret != nil)
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
