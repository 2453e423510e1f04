package modules

import (
	"context"
	"fmt"
	"path"
	"strings"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/secret"
)

// firewallSpec restricts TCP ports to a list of source addresses. The
// seed's ACCEPT lines alone restrict nothing, so hastack keeps its rules in
// a chain of its own, ending in a REJECT for the same ports, jumped to from
// the top of INPUT. The chain is replaced as a whole with iptables-restore
// (atomic), and saved to Persist for reboots.
type firewallSpec struct {
	Chain   string   `json:"chain"`   // e.g. HASTACK
	Sources []string `json:"sources"` // the cluster's IPs
	Ports   []int    `json:"ports"`
	Persist string   `json:"persist,omitempty"` // iptables-save file, e.g. /etc/iptables/rules.v4
}

type firewallModule struct{}

func init() { register("firewall", firewallModule{}) }

// rules are the chain's rules as `iptables -S` prints them.
func (s firewallSpec) rules() []string {
	var out []string
	for _, p := range s.Ports {
		for _, src := range s.Sources {
			out = append(out, fmt.Sprintf("-A %s -s %s/32 -p tcp -m tcp --dport %d -j ACCEPT", s.Chain, src, p))
		}
		out = append(out, fmt.Sprintf("-A %s -p tcp -m tcp --dport %d -j REJECT --reject-with tcp-reset", s.Chain, p))
	}
	return out
}

func (firewallModule) Probe(r *Resource) (Probe, error) {
	var s firewallSpec
	if err := decodeSpec(r, &s); err != nil {
		return Probe{}, err
	}
	p := Probe{Needs: Needs{Iptables: true}}
	if s.Persist != "" {
		p.Files = []string{s.Persist}
	}
	return p, nil
}

func (firewallModule) Diff(r *Resource, f *Fact, env *Env) (*Change, error) {
	var s firewallSpec
	if err := decodeSpec(r, &s); err != nil {
		return nil, err
	}
	var input, chain, saved []string
	for _, l := range strings.Split(f.Node.Iptables, "\n") {
		switch {
		case strings.HasPrefix(l, "-A INPUT "):
			input = append(input, l)
		case strings.HasPrefix(l, "-A "+s.Chain+" "):
			chain = append(chain, l)
		}
	}
	if pf := f.Node.Files[s.Persist]; pf != nil {
		for _, l := range strings.Split(string(pf.Data), "\n") {
			if strings.HasPrefix(l, "-A INPUT ") || strings.HasPrefix(l, "-A "+s.Chain+" ") {
				saved = append(saved, l)
			}
		}
	}
	want := s.rules()
	jump := "-A INPUT -j " + s.Chain
	jumps := 0
	for _, l := range input {
		if l == jump {
			jumps++
		}
	}
	var notes []string
	chainOK := strings.Join(chain, "\n") == strings.Join(want, "\n")
	jumpOK := len(input) > 0 && input[0] == jump && jumps == 1
	if !chainOK {
		notes = append(notes, "chain "+s.Chain)
	}
	if !jumpOK {
		notes = append(notes, "jump from INPUT")
	}
	wantSaved := append([]string{jump}, want...)
	var gotSaved []string
	for _, l := range saved {
		if l == jump || strings.HasPrefix(l, "-A "+s.Chain+" ") {
			gotSaved = append(gotSaved, l)
		}
	}
	saveOK := s.Persist == "" || (strings.Join(gotSaved, "\n") == strings.Join(wantSaved, "\n") && len(saved) > 0 && saved[0] == jump)
	if !saveOK {
		notes = append(notes, "saved rules in "+s.Persist)
	}
	if len(notes) == 0 {
		return nil, nil
	}
	c := &Change{Action: Update, Summary: "firewall: " + strings.Join(notes, ", ")}
	if len(chain) == 0 && len(input) == 0 {
		c.Action = Create
	}
	c.Diff = UnifiedDiff("iptables "+s.Chain, lines(chain), lines(want))
	if chainOK {
		c.Diff = ""
	}
	script := s.script()
	c.Commands = []string{"iptables-restore --noflush (chain " + s.Chain + ")", "iptables -I INPUT 1 -j " + s.Chain}
	if s.Persist != "" {
		c.Commands = append(c.Commands, "iptables-save > "+s.Persist)
	}
	c.apply = func(ctx context.Context, h host.Host) error {
		_, err := run(ctx, h, script, nil, secret.Secret{})
		return err
	}
	return c, nil
}

// script replaces the chain atomically, puts one jump at the top of INPUT
// (the new jump is inserted before old ones are removed, so the ports are
// never open), and saves.
func (s firewallSpec) script() string {
	var b strings.Builder
	b.WriteString("set -e\n")
	fmt.Fprintf(&b, "iptables -N %s 2>/dev/null || true\n", s.Chain)
	b.WriteString("iptables-restore --noflush <<'EOF'\n*filter\n")
	fmt.Fprintf(&b, ":%s - [0:0]\n-F %s\n", s.Chain, s.Chain)
	for _, r := range s.rules() {
		b.WriteString(r + "\n")
	}
	b.WriteString("COMMIT\nEOF\n")
	fmt.Fprintf(&b, "iptables -I INPUT 1 -j %s\n", s.Chain)
	fmt.Fprintf(&b, "n=$(iptables -S INPUT | grep -c -x -- '-A INPUT -j %s')\n", s.Chain)
	fmt.Fprintf(&b, "while [ \"$n\" -gt 1 ]; do i=$(iptables -L INPUT --line-numbers -n | awk '$2==\"%s\"{print $1}' | tail -1); iptables -D INPUT \"$i\"; n=$((n-1)); done\n", s.Chain)
	if s.Persist != "" {
		// Through a temporary file root creates (random name, O_EXCL) in a
		// directory no other user can swap it in, renamed over the file
		// (mv -T: never into a directory of that name).
		d := path.Dir(s.Persist)
		b.WriteString(SafeDirFunc)
		fmt.Fprintf(&b, "mkdir -p %[1]s\nhastack_safe_dir %[1]s\numask 077\nt=$(mktemp %[2]s)\n", Quote(d), Quote(s.Persist+".XXXXXXXXXX"))
		fmt.Fprintf(&b, "iptables-save >\"$t\" && mv -fT \"$t\" %s || { rm -f \"$t\"; exit 1; }\n", Quote(s.Persist))
	}
	return b.String()
}

func lines(ls []string) string {
	if len(ls) == 0 {
		return ""
	}
	return strings.Join(ls, "\n") + "\n"
}
