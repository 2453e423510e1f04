package modules

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/secret"
)

// packageSpec is a set of distribution packages that must be installed
// (present) or not (absent). Versions are whatever the node's repositories
// offer: the plan shows the version a removal takes away.
type packageSpec struct {
	Names []string `json:"names"`
	State string   `json:"state,omitempty"` // "present" (the default) or "absent"
}

// packageName is Debian's rule for a package name (policy 5.6.1), with an
// optional architecture ("libc6:amd64"). RPM names are wider; they will
// get their own rule with the dnf manager.
var packageName = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?$`)

func decodePackage(r *Resource) (packageSpec, error) {
	var s packageSpec
	if err := decodeSpec(r, &s); err != nil {
		return s, err
	}
	if len(s.Names) == 0 {
		return s, fmt.Errorf("%s: names is empty", r.ID)
	}
	for _, n := range s.Names {
		if !packageName.MatchString(n) {
			return s, fmt.Errorf("%s: %q is not a package name (lower-case letters, digits, + . -, an optional :arch)", r.ID, n)
		}
	}
	switch s.State {
	case "":
		s.State = "present"
	case "present", "absent":
	default:
		return s, fmt.Errorf("%s: state %q: want present or absent", r.ID, s.State)
	}
	return s, nil
}

type packageModule struct{}

func init() {
	register("package", packageModule{})
	RegisterFact("packages", FactKind{Command: packagesCommand, Parse: parsePackages})
}

// packagesCommand detects the node's package manager and, on a dpkg node,
// asks dpkg-query about every package of the node at once. A name dpkg has
// never heard of is simply missing from the answer.
func packagesCommand(names []string) string {
	return "if command -v dpkg-query >/dev/null; then echo manager apt; " +
		"dpkg-query -W -f '${db:Status-Abbrev} ${binary:Package} ${Version}\\n' " + quoteAll(names) + "; " +
		"elif command -v rpm >/dev/null; then echo manager rpm; else echo manager none; fi\n"
}

// packages is a node's package manager and the asked packages that are
// installed, with their versions.
type packages struct {
	Manager   string            // "apt", "rpm" or "none"
	Installed map[string]string // by name, and by name:arch
}

func parsePackages(out []byte) (any, error) {
	p := packages{Installed: map[string]string{}}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) == 2 && f[0] == "manager":
			p.Manager = f[1]
		// "ii nginx 1.22.1-9": desired install, now installed. A package
		// whose triggers are pending (W, t) is installed too; one half
		// installed or only its config files left (U F H c n) is not.
		case len(f) == 3 && len(f[0]) >= 2 && strings.ContainsRune("iWt", rune(f[0][1])):
			p.Installed[f[1]] = f[2]
			if name, _, ok := strings.Cut(f[1], ":"); ok {
				p.Installed[name] = f[2]
			}
		}
	}
	if p.Manager == "" {
		return nil, fmt.Errorf("no package manager line")
	}
	return p, nil
}

func (packageModule) Probe(r *Resource) (Probe, error) {
	s, err := decodePackage(r)
	if err != nil {
		return Probe{}, err
	}
	return Probe{Needs: Needs{Shared: map[string][]string{"packages": s.Names}}}, nil
}

// The commands: one apt-get for everything the node's package resources of
// a phase install, one dpkg --remove for what they remove (it refuses to
// remove a package others depend on, where apt-get would remove those too,
// which the plan did not name). Nothing asks a question: no prompts, the
// node's changed config files kept.
func aptInstall(names []string) string {
	return "DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold " + quoteAll(names)
}

func dpkgRemove(names []string) string {
	return "DEBIAN_FRONTEND=noninteractive dpkg --remove " + quoteAll(names)
}

func (packageModule) Diff(r *Resource, f *Fact, env *Env) (*Change, error) {
	s, err := decodePackage(r)
	if err != nil {
		return nil, err
	}
	p, ok := f.Node.Shared("packages").(packages)
	if !ok {
		return nil, fmt.Errorf("%s: the node's packages were not read", r.ID)
	}
	if p.Manager != "apt" {
		return nil, fmt.Errorf("%s: the node's package manager is %s: hastack manages apt (dpkg) packages only so far", r.ID, p.Manager)
	}
	var todo, shown []string
	for _, n := range s.Names {
		v, installed := p.Installed[n]
		switch {
		case s.State == "present" && !installed:
			todo, shown = append(todo, n), append(shown, n)
		case s.State == "absent" && installed:
			todo, shown = append(todo, n), append(shown, n+" "+v)
		}
	}
	if len(todo) == 0 {
		return nil, nil
	}
	c := &Change{Action: Create, Summary: "install " + strings.Join(shown, ", ") + " (apt)"}
	key, command := fmt.Sprintf("apt install, phase %d", r.Phase), aptInstall
	if s.State == "absent" {
		c.Action, c.Summary = Delete, "remove "+strings.Join(shown, ", ")+" (dpkg)"
		key, command = fmt.Sprintf("dpkg remove, phase %d", r.Phase), dpkgRemove
	}
	f.Node.batch(key, command).join(r.ID, todo, c, func(ctx context.Context, h host.Host, cmd string) error {
		_, err := run(ctx, h, cmd, nil, secret.Secret{})
		return err
	})
	return c, nil
}
