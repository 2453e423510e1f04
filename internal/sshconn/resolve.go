package sshconn

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// endpoint is one SSH server to log in to, a node or a jump host, with
// everything decided: the run's Config (flags, environment) first, then
// what the hastack config says (Target), then ssh_config, then defaults.
type endpoint struct {
	name  string // for messages: the node, or "jump host ALIAS"
	alias string // the name looked up in ssh_config
	host  string
	port  int
	user  string
	addr  string // host:port, as dialled and as looked up in known_hosts
	cfg   Config // per host: KnownHosts, AcceptNew, InsecureIgnoreHostKey, timeouts, BatchMode
	ids   []identity
	// identitiesOnly keeps only the agent's keys that are one of ids
	// (IdentitiesOnly yes).
	identitiesOnly bool
	hops           []*endpoint // the jump hosts to go through, first hop first
}

// identity is a private key file to try; must: its absence or a parse
// error is an error (given with -i), not a file skipped (a default path).
type identity struct {
	path string
	must bool
}

// key names the endpoint in the jump pool: the same login at the same
// address through the same hops is one connection.
func (e *endpoint) key() string {
	var b strings.Builder
	for _, h := range e.hops {
		b.WriteString(h.user + "@" + h.addr + ">")
	}
	b.WriteString(e.user + "@" + e.addr)
	return b.String()
}

// maxHops bounds a chain of jump hosts (a ProxyJump loop in the config).
const maxHops = 8

// resolveTarget decides how to reach node t.
func resolveTarget(t Target, c Config) (*endpoint, error) {
	e, err := resolve(c, t.Name, t.Host, t.Port, t.User, "root", 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.Name, err)
	}
	return e, nil
}

// resolve builds the endpoint for alias. port and user are the hastack
// config's (0, "": not said); defUser is the user when nobody says one.
// depth counts the jump hosts above this one.
func resolve(c Config, name, alias string, port int, user, defUser string, depth int) (*endpoint, error) {
	s, err := c.ClientConfig.lookup(alias)
	if err != nil {
		return nil, err
	}
	e := &endpoint{name: name, alias: alias, host: alias, port: port, user: user}
	if s.HostName != "" {
		e.host = s.HostName
	}
	if e.port == 0 {
		e.port = s.Port
	}
	if e.port == 0 {
		e.port = 22
	}
	if e.user == "" {
		e.user = s.User
	}
	if e.user == "" {
		e.user = defUser
	}
	e.addr = net.JoinHostPort(e.host, strconv.Itoa(e.port))
	tokens := map[byte]string{'h': e.host, 'n': alias, 'p': strconv.Itoa(e.port), 'r': e.user}

	cfg := c
	home, _ := os.UserHomeDir()
	// Host keys: the run's files (-known-hosts, $HASTACK_KNOWN_HOSTS, a
	// lab's), else UserKnownHostsFile, else ~/.ssh/known_hosts.
	if len(cfg.KnownHosts) == 0 {
		for _, f := range s.KnownHosts {
			p, err := expandPath(f, tokens)
			if err != nil {
				return nil, fmt.Errorf("ssh config %s: UserKnownHostsFile %s: %v", c.ClientConfig.Path, f, err)
			}
			cfg.KnownHosts = append(cfg.KnownHosts, p)
		}
	}
	if len(cfg.KnownHosts) == 0 {
		cfg.KnownHosts = []string{filepath.Join(home, ".ssh", "known_hosts")}
	}
	// StrictHostKeyChecking, unless a flag said more: yes and ask refuse
	// an unknown key (hastack cannot ask), accept-new records it, no
	// checks nothing. A changed key is refused but with no.
	if !cfg.InsecureIgnoreHostKey && !cfg.AcceptNew {
		switch s.StrictHostKey {
		case "accept-new":
			cfg.AcceptNew = true
		case "no":
			cfg.InsecureIgnoreHostKey = true
			cfg.warnOnce(fmt.Sprintf("ssh config %s: StrictHostKeyChecking no for %s: its host key is not checked", c.ClientConfig.Path, alias))
		}
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = s.ConnectTimeout
	}
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = s.KeepAlive
	}
	cfg.BatchMode = cfg.BatchMode || s.BatchMode
	cfg = cfg.timeouts()

	// Keys: the run's files first (-i, $HASTACK_IDENTITY), then the
	// config's IdentityFile lines; the default files only when neither
	// names one, as ssh does.
	for _, f := range c.IdentityFiles {
		e.ids = append(e.ids, identity{path: f, must: true})
	}
	for _, f := range s.IdentityFiles {
		p, err := expandPath(f, tokens)
		if err != nil {
			return nil, fmt.Errorf("ssh config %s: IdentityFile %s: %v", c.ClientConfig.Path, f, err)
		}
		e.ids = append(e.ids, identity{path: p}) // ssh skips a missing one too
	}
	if len(e.ids) == 0 {
		for _, n := range defaultIdentities {
			e.ids = append(e.ids, identity{path: filepath.Join(home, ".ssh", n)})
		}
	}
	e.identitiesOnly = s.IdentitiesOnly
	e.cfg = cfg

	// ProxyJump a,b: reach a (through a's own ProxyJump, as ssh does),
	// then b through a, then this host through b.
	for i, j := range s.ProxyJump {
		if depth+len(e.hops) >= maxHops {
			return nil, fmt.Errorf("more than %d jump hosts to reach %s: is there a ProxyJump loop in %s?", maxHops, alias, c.ClientConfig.Path)
		}
		hop, err := resolve(c, "jump host "+j.Host, j.Host, j.Port, j.User, localUser(), depth+len(e.hops)+1)
		if err != nil {
			return nil, fmt.Errorf("jump host %s: %w", j, err)
		}
		if i == 0 {
			e.hops = append(e.hops, hop.hops...)
		}
		hop.hops = append([]*endpoint(nil), e.hops...)
		e.hops = append(e.hops, hop)
	}
	return e, nil
}
