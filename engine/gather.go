package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/secret"
	"hastack.dev/hastack/modules"
)

// Facts is what one node told us: the shared facts (with what the driver
// asked for) and each resource's own probe output.
type Facts struct {
	Node      string
	Shared    *modules.NodeFacts
	Resources map[string][]byte // resource ID → its own probe's output

	// probes are what was read for each resource (its Probe, as JSON): a
	// later render whose resource reads anything else is gathered again.
	probes map[string]string
}

// gatherNode runs n's fact script, one exec, and reads the driver's extra
// needs beside it.
func gatherNode(ctx context.Context, n NodeSpec, needs modules.Needs, h host.Host, sec secret.Secret) (*Facts, error) {
	// Kinds of facts that can be read over TCP from the node are, while the
	// script runs, when the connector can; else by the script.
	if d, ok := h.(host.Dialer); ok {
		direct, err := modules.DirectNeeds(n.Resources, needs)
		if err != nil {
			return nil, err
		}
		if len(direct) > 0 {
			dn := needs
			dn.Direct = true
			f, err := gatherWith(ctx, n, h, sec, dn, func() (*modules.NodeFacts, error) {
				return modules.ReadDirect(ctx, d, direct, sec)
			})
			if !errors.Is(err, modules.ErrNoForwarding) {
				return f, err
			}
		}
	}
	return gatherWith(ctx, n, h, sec, needs, nil)
}

// gatherWith runs n's fact script, asking also for extra, and alongside it
// read (when not nil), which completes the shared facts.
func gatherWith(ctx context.Context, n NodeSpec, h host.Host, sec secret.Secret, extra modules.Needs, read func() (*modules.NodeFacts, error)) (*Facts, error) {
	probes, err := probesOf(n.Resources)
	if err != nil {
		return nil, err
	}
	script, boundary, err := modules.FactScript(n.Resources, extra)
	if err != nil {
		return nil, err
	}
	var side *modules.NodeFacts
	readErr := make(chan error, 1)
	if read != nil {
		go func() {
			var err error
			side, err = read()
			readErr <- err
		}()
	} else {
		readErr <- nil
	}
	// On stdin: neither the password nor the script shows in a process list.
	res, err := h.Run(ctx, "sh -s", bytes.NewReader(secret.Fill([]byte(script), sec)))
	if rerr := <-readErr; rerr != nil {
		return nil, rerr
	}
	if err != nil {
		return nil, fmt.Errorf("reading facts: %w", err)
	}
	if res.Code != 0 {
		msg := modules.Mask(strings.TrimSpace(string(res.Stderr)), sec)
		return nil, fmt.Errorf("reading facts: the fact script exited %d: %s", res.Code, msg)
	}
	nf, own, err := modules.ParseFacts(res.Stdout, boundary, n.Resources)
	if err != nil {
		return nil, fmt.Errorf("reading facts: %w", err)
	}
	if side != nil {
		nf.Merge(side)
	}
	return &Facts{Node: n.Name, Shared: nf, Resources: own, probes: probes}, nil
}

// probesOf is what each resource reads, by ID.
func probesOf(rs []modules.Resource) (map[string]string, error) {
	out := make(map[string]string, len(rs))
	for i := range rs {
		m, err := modules.Lookup(rs[i].Kind)
		if err != nil {
			return nil, err
		}
		p, err := m.Probe(&rs[i])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", rs[i].ID, err)
		}
		out[rs[i].ID] = probeJSON(p)
	}
	return out, nil
}

// covers says whether f was read for everything n's resources read: a
// render for the live state may add a resource, or probe one otherwise,
// and a diff against a fact never read would be a lie.
func (f *Facts) covers(n NodeSpec) (bool, error) {
	want, err := probesOf(n.Resources)
	if err != nil {
		return false, err
	}
	for id, p := range want {
		if got, ok := f.probes[id]; (!ok || got != p) && p != readsNothing {
			return false, nil
		}
	}
	return true, nil
}

// readsNothing is the probe, as probesOf keeps it, of a resource that
// reads nothing on the node (a command with no guard): a render that adds
// one needs no gather.
const readsNothing = ""

func probeJSON(p modules.Probe) string {
	n := p.Needs
	if p.Script == "" && len(n.Files)+len(n.Dirs)+len(n.Units)+len(n.Shared) == 0 && !n.Iptables {
		return readsNothing // its preludes are for a script it has not
	}
	b, _ := json.Marshal(p)
	return string(b)
}
