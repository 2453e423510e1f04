package modules

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
)

// Probe is what a resource reads of its node: shared facts (Needs), which
// the fact script gathers once for all resources, and an optional snippet
// of its own (read-only POSIX sh; guards of commands).
type Probe struct {
	Script string
	Needs
}

// Needs are the shared facts a resource reads. Each kind is gathered with
// one command per node, however many resources ask: process starts are most
// of what a plan costs on a node.
type Needs struct {
	Files    []string // whole files, with mode and owner (one tar)
	Dirs     []string // directories' mode and owner (the same tar)
	Units    []string // systemd units (one systemctl show)
	Iptables bool     // the filter table (one iptables-save)
	// Shared asks facts of a kind a module registered (RegisterFact), by
	// kind: the keys of all resources are read with one command.
	Shared map[string][]string
	// Preludes name registered preludes (RegisterPrelude) the fact script
	// runs first: a guard that talks to a product's server uses them.
	Preludes []string
	// Direct leaves the kinds that can be read directly (FactKind.Direct)
	// out of the fact script: the caller reads them with ReadDirect, from
	// the node, while the script runs.
	Direct bool
}

// NodeFacts is what a node told about the shared facts.
type NodeFacts struct {
	Files    map[string]*FileFact // asked paths; missing ones are absent
	Dirs     map[string]*FileFact // asked directories (no Data); likewise
	Users    map[string]int       // from /etc/passwd
	Groups   map[string]int       // from /etc/group
	Units    map[string]UnitState // by unit name as asked
	Iptables string
	Stamps   map[string]string // command stamps by file name
	Pending  map[string]bool   // restarts owed, by unit

	stampKey *stampKey // the node's command stamp key (stamp.go)

	// Links holds the asked paths that are symlinks, with their targets.
	Links map[string]string
	// shared holds the registered kinds of facts, parsed (sharedfacts.go).
	shared map[string]any
	// batches collect the work of several resources of the node that one
	// command does (batch.go).
	batches *batches

	// Irregular names the asked paths that are there but are neither a
	// regular file nor a directory ("a symlink to /etc/shadow", "a FIFO"):
	// the tar that reads them never follows a link, and modules refuse to
	// manage such a path rather than act through it.
	Irregular map[string]string
}

// FileFact is one file as it is on the node.
type FileFact struct {
	Data         []byte
	Mode         fs.FileMode
	Owner, Group string
}

// UnitState is systemd's view of a unit.
type UnitState struct{ Active, Enabled string }

// Fact is one resource's view of its node.
type Fact struct {
	Out  []byte // its own snippet's output
	Node *NodeFacts
}

// hastackDir is read whole with the files: it holds stamps and restart
// markers.
const hastackDir = "/var/lib/hastack"

// allNeeds is the union of what rs and extra read, and each resource's own
// probe script.
func allNeeds(rs []Resource, extra Needs) (Needs, []string, error) {
	need := extra
	need.Preludes = append([]string(nil), extra.Preludes...)
	need.Shared = map[string][]string{}
	for kind, keys := range extra.Shared {
		need.Shared[kind] = append([]string(nil), keys...)
	}
	own := make([]string, len(rs))
	for i := range rs {
		m, err := Lookup(rs[i].Kind)
		if err != nil {
			return Needs{}, nil, err
		}
		p, err := m.Probe(&rs[i])
		if err != nil {
			return Needs{}, nil, err
		}
		own[i] = p.Script
		need.Files = append(need.Files, p.Files...)
		need.Dirs = append(need.Dirs, p.Dirs...)
		need.Units = append(need.Units, p.Units...)
		need.Iptables = need.Iptables || p.Iptables
		need.Preludes = append(need.Preludes, p.Preludes...)
		for kind, keys := range p.Shared {
			need.Shared[kind] = append(need.Shared[kind], keys...)
		}
	}
	return need, own, nil
}

// FactScript builds the one read-only script that gathers every fact of a
// node. It starts with the preludes of the kinds of facts it reads (a
// password comes in by secret.Fill: send the script on stdin). Sections
// are separated by boundary lines.
func FactScript(rs []Resource, extra Needs) (script, boundary string, err error) {
	var rb [12]byte
	rand.Read(rb[:])
	boundary = "@@hastack-fact-" + hex.EncodeToString(rb[:])
	need, own, err := allNeeds(rs, extra)
	if err != nil {
		return "", "", err
	}
	// The preludes of the kinds read directly too: a guard may use them.
	pre, err := preludes(need)
	if err != nil {
		return "", "", err
	}
	if need.Direct {
		for kind := range need.Shared {
			if factKinds[kind].Direct != nil {
				delete(need.Shared, kind)
			}
		}
	}
	var b strings.Builder
	b.WriteString("PATH=" + NodePATH + "\n")
	b.WriteString(pre)
	sec := func(name string) { fmt.Fprintf(&b, "echo '%s %s'\n", boundary, name) }
	sec("@files")
	// hastackDir is read whole. GNU tar's --no-recursion holds for the
	// names after it: every other name is read as what it is, a
	// directory's own entry without its contents (so a directory swapped in
	// where a file is asked for is not read through), a link as a link.
	q := []string{hastackDir, "--no-recursion"}
	for _, f := range append(uniq(need.Files), "/etc/passwd", "/etc/group") {
		q = append(q, Quote(f))
	}
	for _, d := range uniq(need.Dirs) {
		q = append(q, Quote(d))
	}
	// The archive goes out as it is: the section boundary is random, so
	// binary data cannot end the section early (no base64 process).
	fmt.Fprintf(&b, "tar -cPf - --ignore-failed-read %s 2>/dev/null; echo\n", strings.Join(q, " "))
	if units := uniq(need.Units); len(units) > 0 {
		sec("@units")
		fmt.Fprintf(&b, "systemctl show -p Id -p ActiveState -p UnitFileState %s 2>/dev/null </dev/null\n", strings.Join(units, " "))
	}
	if need.Iptables {
		sec("@iptables")
		b.WriteString("iptables-save -t filter 2>/dev/null\n")
	}
	if err := writeShared(&b, sec, need.Shared); err != nil {
		return "", "", err
	}
	for i, r := range rs {
		sec(r.ID)
		if own[i] != "" {
			fmt.Fprintf(&b, "{\n%s} 2>/dev/null </dev/null\n", own[i])
		}
	}
	sec("@end")
	return b.String(), boundary, nil
}

// Section is one part of a script's output: what followed a
// "<boundary> NAME" line, up to the next one.
type Section struct {
	Name string
	Body []byte
}

// Sections splits a script's output at its "<boundary> NAME" lines, in
// order. The boundary is random per run, so no output a node prints can
// start a section of its own. Fact scripts and stacks' check scripts share
// this one format.
func Sections(out []byte, boundary string) []Section {
	var secs []Section
	for _, part := range bytes.Split(out, []byte(boundary+" "))[1:] {
		name, body, _ := bytes.Cut(part, []byte("\n"))
		secs = append(secs, Section{Name: string(name), Body: body})
	}
	return secs
}

// ParseFacts splits a fact script's output into the shared facts and each
// resource's own output.
func ParseFacts(out []byte, boundary string, rs []Resource) (*NodeFacts, map[string][]byte, error) {
	nf := &NodeFacts{Files: map[string]*FileFact{}, Dirs: map[string]*FileFact{}, Irregular: map[string]string{}, Users: map[string]int{}, Groups: map[string]int{},
		Units: map[string]UnitState{}, Stamps: map[string]string{}, Pending: map[string]bool{}}
	own := map[string][]byte{}
	ended := false
	for _, sec := range Sections(out, boundary) {
		name, body := sec.Name, sec.Body
		switch name {
		case "@files":
			if err := nf.readTar(body); err != nil {
				return nil, nil, err
			}
		case "@units":
			nf.readUnits(string(body))
		case "@iptables":
			nf.Iptables = string(body)
		case "@end":
			ended = true
		default:
			if shared, ok := strings.CutPrefix(name, sharedPrefix); ok {
				if err := nf.readShared(shared, body); err != nil {
					return nil, nil, err
				}
				continue
			}
			own[name] = body
		}
	}
	if !ended || len(own) != len(rs) {
		return nil, nil, errors.New("the fact script's output was cut short")
	}
	return nf, own, nil
}

// readTar reads the archive; what follows its end (the echo's newline) is
// ignored by the tar reader.
func (nf *NodeFacts) readTar(raw []byte) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil // tar wrote nothing
	}
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading files: %v", err)
		}
		if h.Typeflag == tar.TypeDir {
			name := "/" + strings.Trim(h.Name, "/")
			// A directory's mode keeps its sticky and set-id bits.
			nf.Dirs[name] = &FileFact{Mode: h.FileInfo().Mode() & dirModeBits, Owner: h.Uname, Group: h.Gname}
			continue
		}
		if h.Typeflag == tar.TypeSymlink {
			if nf.Links == nil {
				nf.Links = map[string]string{}
			}
			nf.Links["/"+strings.TrimPrefix(h.Name, "/")] = h.Linkname
		}
		if h.Typeflag != tar.TypeReg {
			nf.Irregular["/"+strings.TrimPrefix(h.Name, "/")] = entryKind(h)
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return fmt.Errorf("reading files: %v", err)
		}
		name := "/" + strings.TrimPrefix(h.Name, "/")
		switch {
		case name == "/etc/passwd":
			nf.Users = idTable(data)
		case name == "/etc/group":
			nf.Groups = idTable(data)
		case strings.HasPrefix(name, StampDir+"/"):
			nf.Stamps[strings.TrimPrefix(name, StampDir+"/")] = strings.TrimSpace(string(data))
		case strings.HasPrefix(name, PendingDir+"/"):
			nf.Pending[strings.TrimPrefix(name, PendingDir+"/")] = true
		}
		nf.Files[name] = &FileFact{Data: data, Mode: fs.FileMode(h.Mode).Perm(), Owner: h.Uname, Group: h.Gname}
	}
	return nil
}

// dirModeBits are the bits of a directory's mode that Dirs keeps.
const dirModeBits = fs.ModePerm | fs.ModeSticky | fs.ModeSetgid | fs.ModeSetuid

// entryKind says what a tar entry that is not a regular file or directory
// is, for a message.
func entryKind(h *tar.Header) string {
	switch h.Typeflag {
	case tar.TypeSymlink:
		return "a symlink to " + strconv.Quote(h.Linkname)
	case tar.TypeLink:
		return "a hard link to " + strconv.Quote("/"+strings.TrimPrefix(h.Linkname, "/"))
	case tar.TypeFifo:
		return "a FIFO"
	case tar.TypeChar, tar.TypeBlock:
		return "a device file"
	}
	return fmt.Sprintf("not a regular file (tar type %q)", h.Typeflag)
}

// idTable reads name:x:id: lines (passwd, group).
func idTable(b []byte) map[string]int {
	m := map[string]int{}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Split(l, ":")
		if len(f) >= 3 {
			if id, err := strconv.Atoi(f[2]); err == nil {
				if _, dup := m[f[0]]; !dup {
					m[f[0]] = id
				}
			}
		}
	}
	return m
}

// readUnits reads `systemctl show` blocks: Id=, ActiveState=, UnitFileState=.
func (nf *NodeFacts) readUnits(s string) {
	var id string
	var st UnitState
	flush := func() {
		if id != "" {
			nf.Units[strings.TrimSuffix(id, ".service")] = st
		}
		id, st = "", UnitState{}
	}
	for _, l := range strings.Split(s, "\n") {
		k, v, _ := strings.Cut(l, "=")
		switch k {
		case "Id":
			flush()
			id = v
		case "ActiveState":
			st.Active = v
		case "UnitFileState":
			st.Enabled = v
		}
	}
	flush()
}

func uniq(xs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
