package sshconn

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/kevinburke/ssh_config"
)

// ClientConfig is an OpenSSH client configuration file (ssh_config(5)): the
// user's ~/.ssh/config, or the file -F or $HASTACK_SSH_CONFIG names. The
// parsing (Host and Match blocks, patterns, Include, first value wins) is
// github.com/kevinburke/ssh_config's; this file maps the keywords hastack
// uses onto a Config, and nothing it reads is ever run: ProxyCommand and
// Match exec are refused. See docs/ssh.md.
type ClientConfig struct {
	Path  string
	cfg   *ssh_config.Config
	jumps *jumpPool // jump-host connections shared by the nodes of a run
}

// NoClientConfig, as a path, reads no ssh_config (as ssh -F none).
const NoClientConfig = "none"

// LoadClientConfig parses the file at path. A missing file is an error:
// callers that only look for ~/.ssh/config check that it exists.
func LoadClientConfig(path string) (*ClientConfig, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ssh config: %w", err)
	}
	defer f.Close()
	cfg, err := ssh_config.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("ssh config %s: %w", path, err)
	}
	return &ClientConfig{Path: path, cfg: cfg, jumps: newJumpPool()}, nil
}

// ParseClientConfig parses text as a config file named path (for messages).
func ParseClientConfig(path, text string) (*ClientConfig, error) {
	cfg, err := ssh_config.DecodeBytes([]byte(text))
	if err != nil {
		return nil, fmt.Errorf("ssh config %s: %w", path, err)
	}
	return &ClientConfig{Path: path, cfg: cfg, jumps: newJumpPool()}, nil
}

// hostSettings is what the config says for one host alias; zero values
// are "not said".
type hostSettings struct {
	HostName       string
	Port           int
	User           string
	IdentityFiles  []string
	IdentitiesOnly bool
	ProxyJump      []jumpSpec // nil: connect directly
	KnownHosts     []string   // UserKnownHostsFile
	StrictHostKey  string     // StrictHostKeyChecking: yes, ask, accept-new, no (lower case)
	ConnectTimeout time.Duration
	KeepAlive      time.Duration // ServerAliveInterval; <0: said 0 (off)
	BatchMode      bool
}

// jumpSpec is one hop of ProxyJump: [user@]host[:port].
type jumpSpec struct {
	User string
	Host string // an alias, looked up in the config itself
	Port int
}

func (j jumpSpec) String() string {
	s := j.Host
	if j.Port != 0 {
		s = net.JoinHostPort(j.Host, strconv.Itoa(j.Port))
	}
	if j.User != "" {
		s = j.User + "@" + s
	}
	return s
}

// lookup returns the settings for alias. A nil c says nothing.
func (c *ClientConfig) lookup(alias string) (hostSettings, error) {
	var s hostSettings
	if c == nil {
		return s, nil
	}
	get := func(key string) string {
		v, _ := c.cfg.Get(alias, key) // errors only for unknown node types
		return strings.TrimSpace(v)
	}
	fail := func(key, v, why string) (hostSettings, error) {
		return hostSettings{}, fmt.Errorf("ssh config %s: Host %s: %s %s: %s", c.Path, alias, key, v, why)
	}
	if v := get("ProxyCommand"); v != "" && !strings.EqualFold(v, "none") {
		return fail("ProxyCommand", v, "not supported: hastack never runs a command to connect; use ProxyJump")
	}
	if v := get("HostName"); v != "" {
		h, err := expandTokens(v, map[byte]string{'h': alias})
		if err != nil {
			return fail("HostName", v, err.Error())
		}
		if err := checkHost(h); err != nil {
			return fail("HostName", v, err.Error())
		}
		s.HostName = h
	}
	if v := get("Port"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 || p > 65535 {
			return fail("Port", v, "want 1-65535")
		}
		s.Port = p
	}
	if v := get("User"); v != "" {
		if err := checkUser(v); err != nil {
			return fail("User", v, err.Error())
		}
		s.User = v
	}
	ids, _ := c.cfg.GetAll(alias, "IdentityFile")
	for _, v := range ids {
		if strings.EqualFold(strings.TrimSpace(v), "none") {
			continue
		}
		s.IdentityFiles = append(s.IdentityFiles, strings.TrimSpace(v))
	}
	var err error
	if s.IdentitiesOnly, err = yesNo(get("IdentitiesOnly")); err != nil {
		return fail("IdentitiesOnly", get("IdentitiesOnly"), err.Error())
	}
	if s.BatchMode, err = yesNo(get("BatchMode")); err != nil {
		return fail("BatchMode", get("BatchMode"), err.Error())
	}
	if v := get("ProxyJump"); v != "" && !strings.EqualFold(v, "none") {
		if s.ProxyJump, err = parseProxyJump(v); err != nil {
			return fail("ProxyJump", v, err.Error())
		}
	}
	if v := get("UserKnownHostsFile"); v != "" && !strings.EqualFold(v, "none") {
		s.KnownHosts = strings.Fields(v)
	}
	switch v := strings.ToLower(get("StrictHostKeyChecking")); v {
	case "", "yes", "ask", "accept-new", "no":
		s.StrictHostKey = v
	case "off":
		s.StrictHostKey = "no"
	default:
		return fail("StrictHostKeyChecking", v, "want yes, ask, accept-new or no")
	}
	if v := get("ConnectTimeout"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fail("ConnectTimeout", v, "want a number of seconds")
		}
		s.ConnectTimeout = time.Duration(n) * time.Second
	}
	if v := get("ServerAliveInterval"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fail("ServerAliveInterval", v, "want a number of seconds")
		}
		s.KeepAlive = time.Duration(n) * time.Second
		if n == 0 {
			s.KeepAlive = -1
		}
	}
	return s, nil
}

func yesNo(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "", "no":
		return false, nil
	case "yes":
		return true, nil
	}
	return false, errors.New("want yes or no")
}

// parseProxyJump reads ProxyJump's comma-separated hops, each
// [user@]host[:port] or ssh://[user@]host[:port].
func parseProxyJump(v string) ([]jumpSpec, error) {
	var out []jumpSpec
	for _, hop := range strings.Split(v, ",") {
		hop = strings.TrimSpace(hop)
		hop = strings.TrimPrefix(hop, "ssh://")
		var j jumpSpec
		if i := strings.LastIndex(hop, "@"); i >= 0 {
			j.User, hop = hop[:i], hop[i+1:]
			if err := checkUser(j.User); err != nil {
				return nil, fmt.Errorf("hop %q: %v", hop, err)
			}
		}
		j.Host = hop
		if h, p, err := net.SplitHostPort(hop); err == nil {
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 || n > 65535 {
				return nil, fmt.Errorf("hop %q: port %q: want 1-65535", hop, p)
			}
			j.Host, j.Port = h, n
		} else if strings.HasPrefix(hop, "[") && strings.HasSuffix(hop, "]") {
			j.Host = hop[1 : len(hop)-1]
		}
		if err := checkHost(j.Host); err != nil {
			return nil, fmt.Errorf("hop %q: %v", hop, err)
		}
		out = append(out, j)
	}
	return out, nil
}

// checkHost refuses what cannot be a host name or address: such a value
// only ever goes to a dialer and into messages, but a space, a control
// character or a leading '-' is a mistake worth naming.
func checkHost(h string) error {
	if h == "" {
		return errors.New("empty host")
	}
	if strings.HasPrefix(h, "-") {
		return errors.New("a host cannot start with '-'")
	}
	for _, r := range h {
		if r <= ' ' || r == 0x7f || strings.ContainsRune(`"'\/@,`, r) {
			return fmt.Errorf("character %q not allowed in a host", r)
		}
	}
	return nil
}

func checkUser(u string) error {
	if u == "" {
		return errors.New("empty user")
	}
	for _, r := range u {
		if r <= ' ' || r == 0x7f {
			return fmt.Errorf("character %q not allowed in a user name", r)
		}
	}
	return nil
}

// expandTokens expands ssh_config's % tokens that hastack knows (%% and
// those in vals) and a leading ~; any other token is an error, rather
// than a path with a '%' in it that ssh would read differently.
func expandTokens(v string, vals map[byte]string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] != '%' {
			b.WriteByte(v[i])
			continue
		}
		if i+1 == len(v) {
			return "", errors.New("a '%' at the end")
		}
		i++
		if v[i] == '%' {
			b.WriteByte('%')
			continue
		}
		s, ok := vals[v[i]]
		if !ok {
			return "", fmt.Errorf("token %%%c not supported here", v[i])
		}
		b.WriteString(s)
	}
	return b.String(), nil
}

// expandPath expands a file name of the config: ~, %d (home), %u (local
// user), %h (host name), %n (alias), %p (port), %r (remote user).
func expandPath(v string, vals map[byte]string) (string, error) {
	home, _ := os.UserHomeDir()
	if v == "~" || strings.HasPrefix(v, "~/") {
		v = home + v[1:]
	}
	all := map[byte]string{'d': home, 'u': localUser()}
	for k, s := range vals {
		all[k] = s
	}
	return expandTokens(v, all) // a relative name stays relative to the working directory, as for ssh
}

// localUser is the user running hastack: ssh's default user, which hastack
// uses for jump hosts (nodes default to root).
func localUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return os.Getenv("USER")
}
