package check

import (
	"cmp"
	"context"
	"crypto/sha256"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"hastack.dev/hastack/internal/secret"
	"hastack.dev/hastack/modules"
	"hastack.dev/hastack/stacks/hsts"
	"hastack.dev/hastack/stacks/lb"
)

// Frontend checks what a front end needs (docs/frontend.md): behind one
// address every HSTS node must be interchangeable, so the transfer users
// have the config's uid and gid on every node and aspera.conf's <server>
// and <default> sections are the same on every node, and the docroot is one
// storage (docroot.go); and exactly one load balancer holds
// the VIP, with keepalived, HAProxy (and nginx) running on each. Nothing
// without a front end.
func (c *Checker) Frontend(ctx context.Context) Report {
	f := c.Cluster.Frontend
	if f == nil {
		return nil
	}
	type answer struct {
		node string
		lb   bool
		secs map[string]section
		err  error
	}
	var nodes []answer
	for _, n := range c.Cluster.Nodes {
		nodes = append(nodes, answer{node: n.Name})
	}
	for _, b := range f.LoadBalancers {
		nodes = append(nodes, answer{node: b.Name, lb: true})
	}
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := &nodes[i]
			b := newBoundary()
			script := c.idsScript(b)
			if a.lb {
				script = c.lbScript(b)
			}
			out, err := c.run(ctx, a.node, script)
			a.secs, a.err = parseSections(out, b), err
			if err == nil && !a.secs["end"].seen {
				a.err = fmt.Errorf("the check script did not finish")
			}
		}()
	}
	wg.Wait()

	var r Report
	add := func(node, check string, ok bool, format string, args ...any) {
		r = append(r, Result{Node: node, Check: check, OK: ok, Detail: fmt.Sprintf(format, args...)})
	}
	confs := map[string][]string{} // aspera.conf <server> section → nodes
	keys := c.transferKeys()
	prints := map[string][]string{} // transfer host key fingerprint → nodes
	var holders, answered []string
	for _, a := range nodes {
		if a.err != nil {
			add(a.node, "frontend", false, "cannot read: %v", a.err)
			continue
		}
		if a.lb {
			ip := a.secs["addrs"].body
			if strings.Contains(ip, " "+f.VIP+"/") {
				holders = append(holders, a.node)
			}
			st := strings.Fields(a.secs["active"].body)
			units := lbUnits(f.Balancer)
			ok := len(st) == len(units)
			for _, s := range st {
				ok = ok && s == "active"
			}
			add(a.node, "lb-services", ok, "%s: %s", strings.Join(units, ", "), strings.Join(st, ", "))
			states := lb.BackendStates(a.secs["backends"].body, "nodeapi")
			var up, notUp []string
			for _, n := range c.Cluster.Nodes {
				if states[n.Name] == "UP" {
					up = append(up, n.Name)
				} else {
					notUp = append(notUp, fmt.Sprintf("%s %s", n.Name, strings.ToLower(cmp.Or(states[n.Name], "unknown"))))
				}
			}
			if len(notUp) == 0 {
				add(a.node, "lb-backends", true, "HAProxy has every node's Node API up: %s", strings.Join(up, ", "))
			} else {
				add(a.node, "lb-backends", false, "HAProxy's Node API servers not up: %s", strings.Join(notUp, ", "))
			}
			continue
		}
		answered = append(answered, a.node)
		var bad []string
		for i, u := range c.Cluster.Users.Transfer {
			id, ok := f.TransferIDs[u]
			if !ok {
				continue
			}
			want := fmt.Sprintf("%s:%d:%d", u, id[0], id[1])
			if got := strings.TrimSpace(a.secs[fmt.Sprintf("user%d", i)].body); got != want {
				bad = append(bad, fmt.Sprintf("%s is %q, want uid:gid %d:%d", u, got, id[0], id[1]))
			}
		}
		if len(bad) == 0 {
			add(a.node, "transfer-ids", true, "%d transfer users with the config's uid and gid", len(c.Cluster.Users.Transfer))
		} else {
			add(a.node, "transfer-ids", false, "%s", strings.Join(bad, "; "))
		}
		conf := a.secs["server"].body + a.secs["default"].body
		confs[conf] = append(confs[conf], a.node)
		if fp, ok := keys.hostKeyResult(a.node, a.secs, add); ok {
			prints[fp] = append(prints[fp], a.node)
		}
		keys.tokenKeyResult(a.node, a.secs["default"].body, add)
	}
	switch len(holders) {
	case 1:
		add("", "vip", true, "VIP %s on %s", f.VIP, holders[0])
	case 0:
		add("", "vip", false, "no load balancer holds the VIP %s", f.VIP)
	default:
		add("", "vip", false, "the VIP %s is on %s at once: the load balancers do not hear each other", f.VIP, strings.Join(holders, " and "))
	}
	keys.hostKeysResult(prints, len(c.Cluster.Nodes), add)
	r = append(r, c.Docroot(ctx, answered)...) // docroot.go
	if len(confs) == 1 {
		add("", "aspera.conf", true, "the <server> and <default> sections of aspera.conf are the same on the %d nodes", len(c.Cluster.Nodes))
	} else if len(confs) > 1 {
		var groups []string
		for _, ns := range confs {
			groups = append(groups, strings.Join(ns, ", "))
		}
		sort.Strings(groups)
		add("", "aspera.conf", false, "the <server> or <default> section of aspera.conf differs between nodes: %s", strings.Join(groups, " | "))
	}
	return r
}

func lbUnits(balancer string) []string {
	if balancer == "nginx" {
		return []string{"keepalived", "haproxy", "nginx"}
	}
	return []string{"keepalived", "haproxy"}
}

// idsScript prints each transfer user's "name:uid:gid" and aspera.conf's
// <server> and <default> sections.
func (c *Checker) idsScript(b string) string {
	var s strings.Builder
	for i, u := range c.Cluster.Users.Transfer {
		fmt.Fprintf(&s, "echo '%s user%d'\ngetent passwd %s | cut -d: -f1,3,4\n", b, i, modules.Quote(u))
	}
	if name, _ := c.Cluster.TransferSecrets(); name != "" {
		// The public key derived from the private one (ssh-keygen -lf of
		// the key file would read a KEY.pub beside it instead, which sshd
		// never reads), then its fingerprint.
		fmt.Fprintf(&s, "echo '%s hostkey'\nif k=$(ssh-keygen -y -f %s 2>&1); then printf '%%s\\n' \"$k\" | ssh-keygen -lf - 2>&1; else printf '%%s\\n' \"$k\"; fi\n", b, hsts.TransferHostKeyFile)
	}
	fmt.Fprintf(&s, "echo '%s server'\nsed -n '/<server>/,/<\\/server>/p' /opt/aspera/etc/aspera.conf 2>&1\n", b)
	fmt.Fprintf(&s, "echo '%s default'\nsed -n '/<default>/,/<\\/default>/p' /opt/aspera/etc/aspera.conf 2>&1\n", b)
	fmt.Fprintf(&s, "echo '%s end'\n", b)
	return s.String()
}

// lbScript prints the load balancer's addresses, its units' states and
// HAProxy's `show stat`.
func (c *Checker) lbScript(b string) string {
	return fmt.Sprintf(`echo '%[1]s addrs'
ip -4 -o addr show 2>&1
echo '%[1]s active'
systemctl is-active %[2]s 2>&1
echo '%[1]s backends'
%[3]secho '%[1]s end'
`, b, strings.Join(lbUnits(c.Cluster.Frontend.Balancer), " "), lb.ShowStatScript())
}

// FrontendWait runs Frontend until it passes or wait is over (a VIP is
// taken some seconds after keepalived starts).
func (c *Checker) FrontendWait(ctx context.Context, wait time.Duration) Report {
	deadline := time.Now().Add(wait)
	for {
		r := c.Frontend(ctx)
		if r == nil || r.OK() || time.Now().After(deadline) || ctx.Err() != nil {
			return r
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// transferKeys is what the check compares each node's transfer host key
// and token key with: the fingerprint and the hash of the configured
// secrets, computed here. Neither key is ever printed.
type transferKeys struct {
	hostName, tokenName string
	fingerprint         string // "SHA256:...", "" when the secret is unusable
	hostErr             string // why it is unusable
	tokenHash           [32]byte
	tokenErr            string
}

func (c *Checker) transferKeys() transferKeys {
	var k transferKeys
	k.hostName, k.tokenName = c.Cluster.TransferSecrets()
	if k.hostName != "" {
		k.fingerprint, k.hostErr = fingerprintOf(c.Secret, k.hostName)
	}
	if k.tokenName != "" {
		if v, ok := c.Secret.Named(k.tokenName); ok {
			k.tokenHash = sha256.Sum256([]byte(xmlEscape(v.Value())))
		} else {
			k.tokenErr = "the secret " + k.tokenName + " was not read"
		}
	}
	return k
}

// fingerprintOf is the SHA256 fingerprint of the named secret's private
// key, as ssh-keygen -l prints it.
func fingerprintOf(sec secret.Secret, name string) (string, string) {
	v, ok := sec.Named(name)
	if !ok {
		return "", "the secret " + name + " was not read"
	}
	signer, err := ssh.ParsePrivateKey([]byte(v.Value() + "\n"))
	if err != nil {
		// The parser's error is not printed: it might quote the key.
		return "", "the secret " + name + " is not an unencrypted OpenSSH private key"
	}
	return ssh.FingerprintSHA256(signer.PublicKey()), ""
}

// hostKeyResult adds node's host-key result and returns its fingerprint.
func (k transferKeys) hostKeyResult(node string, secs map[string]section, add func(node, check string, ok bool, format string, args ...any)) (string, bool) {
	if k.hostName == "" {
		return "", false
	}
	out := strings.TrimSpace(secs["hostkey"].body)
	f := strings.Fields(out)
	if len(f) < 2 || !strings.HasPrefix(f[1], "SHA256:") {
		add(node, "host-key", false, "%s: no transfer host key: %s", hsts.TransferHostKeyFile, keyLine(out))
		return "", false
	}
	fp := f[1]
	switch {
	case k.fingerprint == "":
		add(node, "host-key", false, "%s is %s; %s", hsts.TransferHostKeyFile, fp, k.hostErr)
	case fp != k.fingerprint:
		add(node, "host-key", false, "%s is %s, not the secret %s's %s: clients behind the VIP see another key on this node", hsts.TransferHostKeyFile, fp, k.hostName, k.fingerprint)
	default:
		add(node, "host-key", true, "the transfer host key is the secret %s's: %s", k.hostName, fp)
	}
	return fp, true
}

// hostKeysResult adds the cluster-wide host-keys result: one fingerprint
// on every node.
func (k transferKeys) hostKeysResult(prints map[string][]string, nodes int, add func(node, check string, ok bool, format string, args ...any)) {
	if k.hostName == "" || len(prints) == 0 {
		return
	}
	if len(prints) == 1 {
		for fp, ns := range prints {
			add("", "host-keys", len(ns) == nodes, "one transfer host key on %d of %d nodes: %s", len(ns), nodes, fp)
		}
		return
	}
	var groups []string
	for fp, ns := range prints {
		groups = append(groups, strings.Join(ns, ", ")+" "+fp)
	}
	sort.Strings(groups)
	add("", "host-keys", false, "the nodes serve different transfer host keys: %s", strings.Join(groups, " | "))
}

// tokenKeyResult compares the token_encryption_key of node's <default>
// section (set_node_data writes it as authorization/token/encryption_key)
// with the secret's, by hash.
func (k transferKeys) tokenKeyResult(node, def string, add func(node, check string, ok bool, format string, args ...any)) {
	if k.tokenName == "" {
		return
	}
	m := tokenKeyRE.FindStringSubmatch(def)
	switch {
	case k.tokenErr != "":
		add(node, "token-key", false, "%s", k.tokenErr)
	case m == nil:
		add(node, "token-key", false, "aspera.conf has no token_encryption_key")
	case sha256.Sum256([]byte(strings.TrimSpace(m[1]))) != k.tokenHash:
		add(node, "token-key", false, "token_encryption_key is not the secret %s's: a token made on another node does not decrypt here", k.tokenName)
	default:
		add(node, "token-key", true, "token_encryption_key is the secret %s's", k.tokenName)
	}
}

var tokenKeyRE = regexp.MustCompile(`(?s)<authorization>.*?<token>.*?<encryption_key>(.*?)</encryption_key>`)

// xmlEscape is how asconfigurator writes a value into aspera.conf.
func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func keyLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return cmp.Or(l, "(nothing)")
}
