// Package keepalived is hastack's keepalived know-how: the fact that says
// whether a node holds a virtual IP now (the VRRP master adds it to its
// interface). The VIP's holder is live state: a driver reads it before
// planning and renders nothing from it.
package keepalived

import (
	"bufio"
	"bytes"
	"net"
	"strings"

	"hastack.dev/hastack/modules"
)

// VIPFact is the kind of fact: keys are IPv4 addresses; the value is a
// map[string]bool, address → the node has it on an interface now.
const VIPFact = "keepalived-vip"

func init() {
	modules.RegisterFact(VIPFact, modules.FactKind{
		// Every IPv4 address of the node, one "ip -o" line each.
		Command: func([]string) string { return "ip -4 -o addr show\n" },
		Parse:   parseAddrs,
	})
}

// parseAddrs reads `ip -4 -o addr show`: "2: eth0    inet 10.0.0.2/24 ...".
func parseAddrs(out []byte) (any, error) {
	have := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "inet" {
				if ip, _, err := net.ParseCIDR(f[i+1]); err == nil {
					have[ip.String()] = true
				}
			}
		}
	}
	return have, sc.Err()
}

// Needs asks for the node's addresses, to learn whether it holds vip.
func Needs(vip string) map[string][]string { return map[string][]string{VIPFact: {vip}} }

// Holds says whether the node whose facts are nf holds vip; ok is false
// when the node was not asked or its answer could not be read.
func Holds(nf *modules.NodeFacts, vip string) (holds, ok bool) {
	if nf == nil {
		return false, false
	}
	m, ok := nf.Shared(VIPFact).(map[string]bool)
	if !ok {
		return false, false
	}
	return m[vip], true
}
