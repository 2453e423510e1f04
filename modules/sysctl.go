package modules

import (
	"context"
	"fmt"
	"path"
	"regexp"
	"strings"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/secret"
)

// sysctlSpec is a kernel parameter: set now (sysctl -w) and at every boot
// (a file under /etc/sysctl.d/ that systemd-sysctl reads).
type sysctlSpec struct {
	Key   string `json:"key"`   // e.g. net.ipv4.ip_forward
	Value string `json:"value"` // several numbers: separated by spaces
	// File defaults to /etc/sysctl.d/90-hastack-KEY.conf: one file per
	// key, so that two resources never write the same file.
	File string `json:"file,omitempty"`
}

var (
	sysctlKey   = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[A-Za-z0-9_-]+)+$`)
	sysctlValue = regexp.MustCompile(`^[A-Za-z0-9_.:/+-]+( [A-Za-z0-9_.:/+-]+)*$`)
	sysctlFile  = regexp.MustCompile(`^/etc/sysctl\.d/[A-Za-z0-9_.-]+\.conf$`)
)

func decodeSysctl(r *Resource) (sysctlSpec, error) {
	var s sysctlSpec
	if err := decodeSpec(r, &s); err != nil {
		return s, err
	}
	s.Value = strings.Join(strings.Fields(s.Value), " ")
	if s.File == "" {
		s.File = "/etc/sysctl.d/90-hastack-" + s.Key + ".conf"
	}
	switch {
	case !sysctlKey.MatchString(s.Key):
		return s, fmt.Errorf("%s: %q is not a sysctl key (e.g. net.ipv4.ip_forward)", r.ID, s.Key)
	case !sysctlValue.MatchString(s.Value):
		return s, fmt.Errorf("%s: value %q: want words of letters, digits and _ . : / + -", r.ID, s.Value)
	case !sysctlFile.MatchString(s.File):
		return s, fmt.Errorf("%s: file %q: want /etc/sysctl.d/NAME.conf", r.ID, s.File)
	}
	return s, nil
}

type sysctlModule struct{}

func init() {
	register("sysctl", sysctlModule{})
	RegisterFact("sysctl", FactKind{Command: sysctlCommand, Parse: parseSysctl})
}

// sysctlCommand reads every key of the node with one sysctl; -e leaves out
// a key the kernel does not have.
func sysctlCommand(keys []string) string { return "sysctl -e -- " + quoteAll(keys) + "\n" }

// parseSysctl reads "key = value" lines; a value of several numbers comes
// with tabs, kept as single spaces.
func parseSysctl(out []byte) (any, error) {
	m := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, " = "); ok {
			m[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	return m, nil
}

func (sysctlModule) Probe(r *Resource) (Probe, error) {
	s, err := decodeSysctl(r)
	if err != nil {
		return Probe{}, err
	}
	return Probe{Needs: Needs{Files: []string{s.File}, Shared: map[string][]string{"sysctl": {s.Key}}}}, nil
}

func (sysctlModule) Diff(r *Resource, f *Fact, env *Env) (*Change, error) {
	s, err := decodeSysctl(r)
	if err != nil {
		return nil, err
	}
	live, ok := f.Node.Shared("sysctl").(map[string]string)
	if !ok {
		return nil, fmt.Errorf("%s: the node's sysctl keys were not read", r.ID)
	}
	have, known := live[s.Key]
	if !known {
		return nil, fmt.Errorf("%s: the node's kernel has no key %s", r.ID, s.Key)
	}
	if err := notRegular(f.Node, s.File); err != nil {
		return nil, err
	}
	want := s.Key + " = " + s.Value + "\n"
	var old string
	file := f.Node.Files[s.File]
	if file != nil {
		old = string(file.Data)
	}
	fileOK := file != nil && old == want && file.Mode == 0o644 && file.Owner == "root" && file.Group == "root"
	if have == s.Value && fileOK {
		return nil, nil
	}
	c := &Change{Action: Update, Summary: fmt.Sprintf("sysctl %s = %s", s.Key, s.Value), Live: true}
	var steps []func(context.Context, host.Host) error
	if have != s.Value {
		c.Summary += " (now " + have + ")"
		cmd := "sysctl -w " + Quote(s.Key+"="+s.Value)
		c.Commands = append(c.Commands, cmd)
		steps = append(steps, func(ctx context.Context, h host.Host) error {
			_, err := run(ctx, h, cmd, nil, secret.Secret{})
			return err
		})
	}
	if !fileOK {
		c.Diff = UnifiedDiff(s.File, old, want)
		c.Summary += ", persisted in " + s.File
		w := host.File{Path: s.File, Data: []byte(want), Mode: 0o644}
		steps = append(steps, func(ctx context.Context, h host.Host) error { return writeFile(ctx, h, w) })
	}
	if have == s.Value {
		c.Summary = fmt.Sprintf("persist sysctl %s = %s in %s", s.Key, s.Value, path.Base(s.File))
	}
	c.apply = func(ctx context.Context, h host.Host) error {
		for _, step := range steps {
			if err := step(ctx, h); err != nil {
				return err
			}
		}
		return nil
	}
	return c, nil
}
