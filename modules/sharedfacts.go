package modules

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"sort"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/secret"
)

// A FactKind is a kind of fact that a module registers, pyinfra's way: the
// module says how to read it and how to parse what it read. Every resource
// of a node that asks for it (Needs.Shared[kind] = keys), and the driver,
// are served by one command for the union of their keys: one dpkg-query per
// node for all of its packages, one sysctl for all of its keys.
type FactKind struct {
	// Command is read-only POSIX sh that reads keys (already checked by
	// the module's spec decoding; quote them with Quote all the same).
	// With PerKey it reads one key.
	Command func(keys []string) string
	// Parse turns the command's output into the value modules read with
	// NodeFacts.Shared (or, with PerKey, NodeFacts.SharedKey).
	Parse func(out []byte) (any, error)
	// PerKey reads each key with its own command and section: a key names
	// a server to ask, not one line of a common answer. Its keys must be
	// single words of [A-Za-z0-9_.:/@%+=,-].
	PerKey bool
	// Prelude names a registered prelude (RegisterPrelude) that the fact
	// script runs first when it reads this kind.
	Prelude string
	// Direct, when set (PerKey only), reads one key over a TCP connection
	// it opens from the node (DialTCP) while the fact script runs, and
	// returns what Parse would: no process is started on the node. An
	// ErrNoForwarding from it makes the caller read the kind with the
	// script instead.
	Direct func(ctx context.Context, d host.Dialer, key string, sec secret.Secret) (any, error)
}

var factKinds = map[string]FactKind{}

// RegisterFact registers a kind of shared fact (from a module's init).
func RegisterFact(kind string, f FactKind) {
	if strings.ContainsAny(kind, ": '\n") || kind == "" {
		panic("hastack bug: bad fact kind name " + kind)
	}
	factKinds[kind] = f
}

// sharedPrefix starts the name of a shared fact's section in the script;
// a PerKey kind's section is sharedPrefix+kind+":"+key.
const sharedPrefix = "@shared:"

// keyWord is what a PerKey kind's key may be: it is part of a section name.
var keyWord = regexp.MustCompile(`^[A-Za-z0-9_.:/@%+=,-]+$`)

// sortedKinds returns the asked kinds in a stable order.
func sortedKinds(asked map[string][]string) []string {
	kinds := make([]string, 0, len(asked))
	for k := range asked {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	return kinds
}

var preludeTexts = map[string]string{}

// RegisterPrelude registers, by name, sh text that scripts which talk to a
// product's servers start with: its client functions, its tools' PATH, the
// password variables (SecretVar). A fact kind (FactKind.Prelude) or a
// command (commandSpec.Prelude) names it.
func RegisterPrelude(name, text string) { preludeTexts[name] = text }

// Prelude returns a registered prelude's text ("" when none is).
func Prelude(name string) string { return preludeTexts[name] }

// preludes returns the text of the preludes need names and its kinds of
// facts name, each once, by name.
func preludes(need Needs) (string, error) {
	names := append([]string(nil), need.Preludes...)
	for _, k := range sortedKinds(need.Shared) {
		f, ok := factKinds[k]
		if !ok {
			return "", fmt.Errorf("unknown kind of fact %q", k)
		}
		if f.Prelude != "" {
			names = append(names, f.Prelude)
		}
	}
	names = uniq(names)
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		t, ok := preludeTexts[n]
		if !ok {
			return "", fmt.Errorf("unknown prelude %q", n)
		}
		b.WriteString(t)
	}
	return b.String(), nil
}

// writeShared adds one section per asked kind of shared fact (per key of a
// PerKey kind), in a stable order.
func writeShared(b *strings.Builder, sec func(string), asked map[string][]string) error {
	for _, k := range sortedKinds(asked) {
		f, ok := factKinds[k]
		if !ok {
			return fmt.Errorf("unknown kind of fact %q", k)
		}
		keys := uniq(asked[k])
		sort.Strings(keys)
		if !f.PerKey {
			sec(sharedPrefix + k)
			fmt.Fprintf(b, "{\n%s} 2>/dev/null </dev/null\n", f.Command(keys))
			continue
		}
		for _, key := range keys {
			if !keyWord.MatchString(key) {
				return fmt.Errorf("fact %s: bad key %q", k, key)
			}
			sec(sharedPrefix + k + ":" + key)
			fmt.Fprintf(b, "{\n%s} 2>/dev/null </dev/null\n", f.Command([]string{key}))
		}
	}
	return nil
}

// readShared parses one shared section, named after sharedPrefix.
func (nf *NodeFacts) readShared(name string, out []byte) error {
	kind, key, perKey := strings.Cut(name, ":")
	f, ok := factKinds[kind]
	if !ok || f.PerKey != perKey {
		return fmt.Errorf("the fact script answered an unknown kind of fact %q", name)
	}
	v, err := f.Parse(out)
	if err != nil {
		return fmt.Errorf("reading %s facts: %v", name, err)
	}
	if perKey {
		nf.SetSharedKey(kind, key, v)
	} else {
		nf.SetShared(kind, v)
	}
	return nil
}

// SetShared stores a parsed shared fact (ParseFacts, and tests that feed
// canned facts).
func (nf *NodeFacts) SetShared(kind string, v any) {
	if nf.shared == nil {
		nf.shared = map[string]any{}
	}
	nf.shared[kind] = v
}

// SetSharedKey stores one key's parsed fact of a PerKey kind.
func (nf *NodeFacts) SetSharedKey(kind, key string, v any) {
	m, _ := nf.Shared(kind).(map[string]any)
	if m == nil {
		m = map[string]any{}
		nf.SetShared(kind, m)
	}
	m[key] = v
}

// Shared returns the parsed fact of a kind, or nil when the script did not
// read it (a resource that asked for it always has it). A PerKey kind's is
// a map[string]any by key.
func (nf *NodeFacts) Shared(kind string) any { return nf.shared[kind] }

// SharedKey returns one key's parsed fact of a PerKey kind, or nil.
func (nf *NodeFacts) SharedKey(kind, key string) any {
	m, _ := nf.Shared(kind).(map[string]any)
	return m[key]
}

// Merge copies the shared facts of o (read directly) into nf.
func (nf *NodeFacts) Merge(o *NodeFacts) {
	for kind, v := range o.shared {
		if m, ok := v.(map[string]any); ok {
			for key, kv := range m {
				nf.SetSharedKey(kind, key, kv)
			}
			continue
		}
		nf.SetShared(kind, v)
	}
}

// ErrNoForwarding says the node's sshd refused to open a TCP connection
// (AllowTcpForwarding no): ask through the fact script instead.
var ErrNoForwarding = errors.New("the SSH server refuses TCP forwarding")

// DialTCP opens a connection from the node to hostPort. Its error wraps
// ErrNoForwarding when the SSH server refuses forwarding at all; any other
// error is the server's (nothing listens there).
func DialTCP(ctx context.Context, d host.Dialer, hostPort string) (net.Conn, error) {
	conn, err := d.DialTCP(ctx, hostPort)
	var oc *ssh.OpenChannelError
	if errors.As(err, &oc) && oc.Reason != ssh.ConnectionFailed {
		return nil, fmt.Errorf("%w: %v", ErrNoForwarding, oc)
	}
	return conn, err
}

// DirectNeeds returns, of everything rs and extra read, the keys of the
// kinds that can be read directly (FactKind.Direct).
func DirectNeeds(rs []Resource, extra Needs) (map[string][]string, error) {
	need, _, err := allNeeds(rs, extra)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for kind, keys := range need.Shared {
		if f, ok := factKinds[kind]; ok && f.Direct != nil {
			out[kind] = uniq(keys)
		}
	}
	return out, nil
}

// ReadDirect reads the asked keys (DirectNeeds), all in parallel, over
// connections d opens from the node: no process starts there. Its error is
// ErrNoForwarding, or a kind's own.
func ReadDirect(ctx context.Context, d host.Dialer, asked map[string][]string, sec secret.Secret) (*NodeFacts, error) {
	nf := &NodeFacts{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var errs []error
	for kind, keys := range asked {
		f := factKinds[kind]
		for _, key := range keys {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v, err := f.Direct(ctx, d, key, sec)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				nf.SetSharedKey(kind, key, v)
			}()
		}
	}
	wg.Wait()
	return nf, errors.Join(errs...)
}
