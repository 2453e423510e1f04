package modules

import (
	"fmt"
	"sort"
	"strings"
)

// A shared fact is a kind of fact that a module registers, pyinfra's way:
// the module says how to read it and how to parse what it read. Every
// resource of a node that asks for it (Needs.Shared[kind] = keys) is served
// by one command for the union of their keys: one dpkg-query per node for
// all of its packages, one sysctl for all of its keys.
type sharedFact struct {
	// command is read-only POSIX sh that reads keys (already checked by
	// the module's spec decoding; quote them with Quote all the same).
	command func(keys []string) string
	// parse turns the command's output into the value modules read with
	// NodeFacts.sharedFact.
	parse func(out []byte) (any, error)
}

var sharedFacts = map[string]sharedFact{}

func registerFact(kind string, f sharedFact) { sharedFacts[kind] = f }

// sharedPrefix starts the name of a shared fact's section in the script.
const sharedPrefix = "@shared:"

// writeShared adds one section per asked kind of shared fact, in a stable
// order.
func writeShared(b *strings.Builder, sec func(string), asked map[string][]string) error {
	kinds := make([]string, 0, len(asked))
	for k := range asked {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		f, ok := sharedFacts[k]
		if !ok {
			return fmt.Errorf("unknown kind of fact %q", k)
		}
		keys := uniq(asked[k])
		sort.Strings(keys)
		sec(sharedPrefix + k)
		fmt.Fprintf(b, "{\n%s} 2>/dev/null </dev/null\n", f.command(keys))
	}
	return nil
}

func (nf *NodeFacts) readShared(kind string, out []byte) error {
	f, ok := sharedFacts[kind]
	if !ok {
		return fmt.Errorf("the fact script answered an unknown kind of fact %q", kind)
	}
	v, err := f.parse(out)
	if err != nil {
		return fmt.Errorf("reading %s facts: %v", kind, err)
	}
	nf.setShared(kind, v)
	return nil
}

// setShared stores a parsed shared fact (ParseFacts, and tests that feed
// canned facts).
func (nf *NodeFacts) setShared(kind string, v any) {
	if nf.shared == nil {
		nf.shared = map[string]any{}
	}
	nf.shared[kind] = v
}

// sharedFact returns the parsed fact of a kind, or nil when the script did
// not read it (a resource that asked for it always has it).
func (nf *NodeFacts) sharedFact(kind string) any { return nf.shared[kind] }
