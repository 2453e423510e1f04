package sshconn

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"hastack.dev/hastack/internal/sshtest"
)

func clientConfig(t *testing.T, text string) *ClientConfig {
	t.Helper()
	cc, err := ParseClientConfig("test_config", text)
	if err != nil {
		t.Fatal(err)
	}
	return cc
}

// The keywords hastack reads, for patterns, negation and first-value-wins,
// and what the hastack config and the flags say over them.
func TestClientConfigMapping(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	cc := clientConfig(t, `
Host db? !db9
  HostName %h.internal
  User deploy
  Port 2200
  IdentityFile ~/.ssh/db_%r
  IdentitiesOnly yes
  ConnectTimeout 3
  ServerAliveInterval 0

Host web*
  HostName 192.0.2.10
  StrictHostKeyChecking accept-new
  UserKnownHostsFile /etc/hastack/known_hosts %d/extra_hosts
  ServerAliveInterval 30

Host *
  User ignored-for-db
  Port 2222
  IdentityFile %d/.ssh/common
  BatchMode yes
`)
	base := Config{ClientConfig: cc, Warnings: &strings.Builder{}}
	cases := []struct {
		name      string
		t         Target
		cfg       Config
		host      string
		port      int
		user      string
		ids       []string
		idsOnly   bool
		known     []string
		acceptNew bool
		connect   time.Duration
		keepAlive time.Duration
	}{
		{name: "pattern: first value wins", t: Target{Host: "db1"},
			host: "db1.internal", port: 2200, user: "deploy",
			ids:     []string{home + "/.ssh/db_deploy", home + "/.ssh/common"},
			idsOnly: true, known: []string{home + "/.ssh/known_hosts"},
			connect: 3 * time.Second, keepAlive: -1},
		{name: "negated pattern skips the block", t: Target{Host: "db9"},
			host: "db9", port: 2222, user: "ignored-for-db", ids: []string{home + "/.ssh/common"},
			known: []string{home + "/.ssh/known_hosts"}, connect: 10 * time.Second, keepAlive: 15 * time.Second},
		{name: "the hastack config's port and user win", t: Target{Host: "db1", Port: 22, User: "root"},
			host: "db1.internal", port: 22, user: "root",
			ids:     []string{home + "/.ssh/db_root", home + "/.ssh/common"},
			idsOnly: true, known: []string{home + "/.ssh/known_hosts"}, connect: 3 * time.Second, keepAlive: -1},
		{name: "StrictHostKeyChecking accept-new, UserKnownHostsFile", t: Target{Host: "web1"},
			host: "192.0.2.10", port: 2222, user: "ignored-for-db", ids: []string{home + "/.ssh/common"},
			known: []string{"/etc/hastack/known_hosts", home + "/extra_hosts"}, acceptNew: true,
			connect: 10 * time.Second, keepAlive: 30 * time.Second},
		{name: "flags win: -i, -known-hosts, a timeout", t: Target{Host: "web1"},
			cfg:  Config{IdentityFiles: []string{"/k/flag"}, KnownHosts: []string{"/k/known"}, ConnectTimeout: time.Second},
			host: "192.0.2.10", port: 2222, user: "ignored-for-db", ids: []string{"/k/flag", home + "/.ssh/common"},
			known: []string{"/k/known"}, acceptNew: true, connect: time.Second, keepAlive: 30 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.ClientConfig, cfg.Warnings = base.ClientConfig, base.Warnings
			e, err := resolveTarget(tc.t, cfg)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, id := range e.ids {
				ids = append(ids, id.path)
			}
			if e.host != tc.host || e.port != tc.port || e.user != tc.user || !slices.Equal(ids, tc.ids) ||
				e.identitiesOnly != tc.idsOnly || !slices.Equal(e.cfg.KnownHosts, tc.known) ||
				e.cfg.AcceptNew != tc.acceptNew || e.cfg.ConnectTimeout != tc.connect ||
				e.cfg.KeepAlive != tc.keepAlive || !e.cfg.BatchMode || len(e.hops) != 0 {
				t.Errorf("got host=%s port=%d user=%s ids=%v only=%v known=%v acceptNew=%v connect=%v keepAlive=%v batch=%v hops=%d",
					e.host, e.port, e.user, ids, e.identitiesOnly, e.cfg.KnownHosts, e.cfg.AcceptNew,
					e.cfg.ConnectTimeout, e.cfg.KeepAlive, e.cfg.BatchMode, len(e.hops))
			}
		})
	}
}

// Without a config, or for a host it does not name, a node is reached as
// before: its address, port 22, root, the default keys.
func TestNoClientConfig(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	for _, cc := range []*ClientConfig{nil, clientConfig(t, "Host other\n  Port 1\n")} {
		e, err := resolveTarget(Target{Name: "n", Host: "10.0.0.1"}, Config{ClientConfig: cc})
		if err != nil {
			t.Fatal(err)
		}
		if e.addr != "10.0.0.1:22" || e.user != "root" || len(e.ids) != len(defaultIdentities) || e.ids[0].must ||
			e.cfg.AcceptNew || e.cfg.InsecureIgnoreHostKey || len(e.hops) != 0 {
			t.Errorf("got %+v", e)
		}
	}
}

// StrictHostKeyChecking maps onto hastack's options; a flag wins.
func TestStrictHostKeyChecking(t *testing.T) {
	for _, tc := range []struct {
		value            string
		flags            Config
		acceptNew, noChk bool
	}{
		{value: "yes"}, {value: "ask"}, {value: ""},
		{value: "accept-new", acceptNew: true},
		{value: "no", noChk: true}, {value: "off", noChk: true},
		{value: "no", flags: Config{AcceptNew: true}, acceptNew: true},
	} {
		text := "Host *\n"
		if tc.value != "" {
			text += "  StrictHostKeyChecking " + tc.value + "\n"
		}
		cfg := tc.flags
		cfg.ClientConfig, cfg.Warnings = clientConfig(t, text), &strings.Builder{}
		e, err := resolveTarget(Target{Host: "h"}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if e.cfg.AcceptNew != tc.acceptNew || e.cfg.InsecureIgnoreHostKey != tc.noChk {
			t.Errorf("%q %+v: acceptNew=%v insecure=%v", tc.value, tc.flags, e.cfg.AcceptNew, e.cfg.InsecureIgnoreHostKey)
		}
	}
	cfg := Config{ClientConfig: clientConfig(t, "Host *\n  StrictHostKeyChecking maybe\n")}
	if _, err := resolveTarget(Target{Host: "h"}, cfg); err == nil || !strings.Contains(err.Error(), "StrictHostKeyChecking") {
		t.Errorf("a bad value: %v", err)
	}
}

// Include reads other files (globs, in order) as if they were written in
// its place: an earlier value still wins.
func TestClientConfigInclude(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "10-a.conf"), "Host app\n  HostName 192.0.2.1\n  Port 2201\n")
	writeFile(t, filepath.Join(dir, "20-b.conf"), "Host app\n  HostName 192.0.2.2\n  User fromb\n")
	main := filepath.Join(dir, "config")
	writeFile(t, main, "Host app\n  Port 2200\nInclude "+dir+"/*.conf\nHost *\n  User last\n")
	cc, err := LoadClientConfig(main)
	if err != nil {
		t.Fatal(err)
	}
	e, err := resolveTarget(Target{Host: "app"}, Config{ClientConfig: cc})
	if err != nil {
		t.Fatal(err)
	}
	if e.host != "192.0.2.1" || e.port != 2200 || e.user != "fromb" {
		t.Errorf("got %s:%d as %s, want 192.0.2.1:2200 as fromb", e.host, e.port, e.user)
	}
	if _, err := LoadClientConfig(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing -F file is not an error")
	}
	// Nothing in the file is ever run: Match exec is refused when read.
	writeFile(t, main, "Match exec \"touch "+dir+"/ran\"\n  Port 1\n")
	if _, err := LoadClientConfig(main); err == nil || !strings.Contains(err.Error(), "Match Exec is not supported") {
		t.Errorf("Match exec: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
		t.Error("Match exec ran its command")
	}
}

func TestParseProxyJump(t *testing.T) {
	got, err := parseProxyJump("bastion, ops@jump2:2200,ssh://me@[2001:db8::1]:22,[2001:db8::2]")
	if err != nil {
		t.Fatal(err)
	}
	want := []jumpSpec{{Host: "bastion"}, {User: "ops", Host: "jump2", Port: 2200},
		{User: "me", Host: "2001:db8::1", Port: 22}, {Host: "2001:db8::2"}}
	if !slices.Equal(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	for _, bad := range []string{"a,,b", "host:0", "host:x", "-oProxyCommand=x", "@host", "a b"} {
		if _, err := parseProxyJump(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// ProxyJump chains: a first hop's own ProxyJump comes before it (as ssh),
// a later hop's is not followed, and a loop is an error.
func TestProxyJumpChain(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	cc := clientConfig(t, `
Host inner
  HostName 10.1.0.5
  ProxyJump outer
Host outer
  HostName 192.0.2.7
  User jumper
  Port 2022
Host second
  ProxyJump nowhere
Host node
  ProxyJump inner,admin@second:23
Host loop1
  ProxyJump loop2
Host loop2
  ProxyJump loop1
Host pc
  ProxyCommand nc %h %p
Host viapc
  ProxyJump pc
`)
	e, err := resolveTarget(Target{Name: "n", Host: "node"}, Config{ClientConfig: cc})
	if err != nil {
		t.Fatal(err)
	}
	var chain []string
	for _, h := range e.hops {
		chain = append(chain, h.key())
	}
	want := []string{"jumper@192.0.2.7:2022", "jumper@192.0.2.7:2022>" + localUser() + "@10.1.0.5:22",
		"jumper@192.0.2.7:2022>" + localUser() + "@10.1.0.5:22>admin@second:23"}
	if !slices.Equal(chain, want) {
		t.Errorf("chain:\n%s\nwant:\n%s", strings.Join(chain, "\n"), strings.Join(want, "\n"))
	}
	if _, err := resolveTarget(Target{Name: "n", Host: "loop1"}, Config{ClientConfig: cc}); err == nil || !strings.Contains(err.Error(), "loop") {
		t.Errorf("a ProxyJump loop: %v", err)
	}
	for _, h := range []string{"pc", "viapc"} {
		_, err := resolveTarget(Target{Name: "n", Host: h}, Config{ClientConfig: cc})
		if err == nil || !strings.Contains(err.Error(), "ProxyCommand") || !strings.Contains(err.Error(), "not supported") {
			t.Errorf("%s: ProxyCommand: %v", h, err)
		}
	}
}

// jumpLab is a jump host and nodes behind it, all in-process, with an
// ssh_config naming them and a known_hosts with all their keys.
type jumpLab struct {
	servers map[string]*sshtest.Server
	known   string
	key     string
}

func newJumpLab(t *testing.T, names ...string) *jumpLab {
	t.Helper()
	client, key := newKeyFile(t)
	l := &jumpLab{servers: map[string]*sshtest.Server{}, key: key}
	var known strings.Builder
	for _, n := range names {
		s := sshtest.Start(t, sshtest.Options{ClientKey: client, Forward: true})
		l.servers[n] = s
		known.WriteString(s.KnownHostsLine())
	}
	l.known = filepath.Join(t.TempDir(), "known_hosts")
	writeFile(t, l.known, known.String())
	return l
}

// host is an ssh_config block for server n.
func (l *jumpLab) host(n, extra string) string {
	s := l.servers[n]
	return "Host " + n + "\n  HostName " + s.Host + "\n  Port " + itoa(s.Port) + "\n" + extra
}

func (l *jumpLab) common() string {
	return "Host *\n  IdentityFile " + l.key + "\n  UserKnownHostsFile " + l.known + "\n"
}

// Nodes behind a jump host share one connection to it, one connection
// each through it; a chain shares its first hop with shorter ones; the
// jump connection ends with the last node's.
func TestDialThroughJumpHosts(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	l := newJumpLab(t, "bastion", "inner", "n1", "n2", "n3", "n4")
	cc := clientConfig(t, l.host("bastion", "")+l.host("inner", "  ProxyJump bastion\n")+
		l.host("n1", "  ProxyJump bastion\n  User deploy\n")+l.host("n2", "  ProxyJump bastion\n")+
		l.host("n3", "  ProxyJump bastion,inner\n")+l.host("n4", "  ProxyJump inner\n")+l.common())
	cfg := Config{ClientConfig: cc, KeepAlive: -1}
	before := Dials()
	var mu sync.Mutex
	conns := map[string]*Conn{}
	var wg sync.WaitGroup
	for _, n := range []string{"n1", "n2", "n3", "n4"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := Dial(context.Background(), Target{Name: n, Host: n}, cfg)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			conns[n] = c
			mu.Unlock()
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for n, c := range conns {
		if c.sudo {
			continue // n1 (deploy) would run sudo, which this machine may not have
		}
		res, err := c.Run(context.Background(), "echo "+n, nil)
		if err != nil || string(res.Stdout) != n+"\n" {
			t.Errorf("%s: %q %v", n, res.Stdout, err)
		}
	}
	for n, want := range map[string]int64{"bastion": 1, "inner": 1, "n1": 1, "n2": 1, "n3": 1, "n4": 1} {
		if got := l.servers[n].Conns(); got != want {
			t.Errorf("%s saw %d SSH connections, want %d", n, got, want)
		}
	}
	if got := Dials() - before; got != 6 {
		t.Errorf("Dials() grew by %d, want 6 (2 jump hosts, 4 nodes)", got)
	}
	if got := l.servers["n1"].Users(); !slices.Equal(got, []string{"deploy"}) || !conns["n1"].sudo || conns["n2"].sudo {
		t.Errorf("n1 logged in as %v (sudo %v), n2 sudo %v: want deploy with sudo, root without", got, conns["n1"].sudo, conns["n2"].sudo)
	}
	if got := l.servers["bastion"].Users(); !slices.Equal(got, []string{localUser()}) {
		t.Errorf("the jump host saw %v, want the local user %s (as ssh)", got, localUser())
	}
	// Closing every node ends the jump connections; the next Dial logs in
	// to the bastion again.
	for _, c := range conns {
		c.Close()
	}
	c := dial(t, Target{Name: "n2", Host: "n2"}, cfg)
	if got := l.servers["bastion"].Conns(); got != 2 {
		t.Errorf("after every node closed, a new Dial made the bastion's connection %d, want 2", got)
	}
	c.Close()
}

// Each hop's host key is checked: a changed key of the bastion refuses
// every node behind it, which is never reached.
func TestJumpHostKeyChecked(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	l := newJumpLab(t, "bastion", "n1", "n2")
	changed := strings.Replace(readFile(t, l.known), strings.Fields(l.servers["bastion"].KnownHostsLine())[2],
		strings.Fields(sshtest.Start(t, sshtest.Options{}).KnownHostsLine())[2], 1)
	writeFile(t, l.known, changed)
	cc := clientConfig(t, l.host("bastion", "")+l.host("n1", "  ProxyJump bastion\n")+
		l.host("n2", "  ProxyJump bastion\n")+l.common())
	for _, n := range []string{"n1", "n2"} {
		err := dialErr(Target{Name: n, Host: n}, Config{ClientConfig: cc})
		he := hostKeyErr(t, err)
		if he.Unknown || he.Node != "jump host bastion" || he.Addr != l.servers["bastion"].Addr {
			t.Errorf("%s: %+v", n, he)
		}
		if !strings.HasPrefix(err.Error(), n+": jump host bastion: REFUSED") {
			t.Errorf("the error does not name the node and its jump host: %v", err)
		}
	}
	for _, n := range []string{"n1", "n2"} {
		if got := l.servers[n].Conns(); got != 0 {
			t.Errorf("%s was reached (%d connections) through a refused jump host", n, got)
		}
	}
	// And a node's own key is checked through the jump host: accept-new
	// records an unknown one under its own address.
	l2 := newJumpLab(t, "bastion", "n1")
	writeFile(t, l2.known, l2.servers["bastion"].KnownHostsLine())
	cc = clientConfig(t, l2.host("bastion", "")+l2.host("n1", "  ProxyJump bastion\n")+l2.common())
	if err := dialErr(Target{Name: "n1", Host: "n1"}, Config{ClientConfig: cc}); !hostKeyErr(t, err).Unknown {
		t.Errorf("n1's unknown key: %v", err)
	}
	cc = clientConfig(t, l2.host("bastion", "")+l2.host("n1", "  ProxyJump bastion\n  StrictHostKeyChecking accept-new\n")+l2.common())
	if err := dialErr(Target{Name: "n1", Host: "n1"}, Config{ClientConfig: cc}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(readFile(t, l2.known), strings.TrimSpace(l2.servers["n1"].KnownHostsLine())) {
		t.Errorf("accept-new did not record n1's key under %s:\n%s", l2.servers["n1"].Addr, readFile(t, l2.known))
	}
}

// IdentitiesOnly yes: the agent's other keys are not offered.
func TestIdentitiesOnly(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	s := sshtest.Start(t, sshtest.Options{})
	serveAgent(t, s.IdentityFile)
	_, other := newKeyFile(t)
	text := "Host n\n  HostName " + s.Host + "\n  Port " + itoa(s.Port) + "\n  IdentityFile " + other + "\n  UserKnownHostsFile " + s.WriteKnownHosts(t) + "\n"
	cfg := Config{UseAgent: true, ClientConfig: clientConfig(t, text)}
	if err := dialErr(Target{Name: "n", Host: "n"}, cfg); err != nil {
		t.Fatalf("without IdentitiesOnly the agent's key is offered: %v", err)
	}
	cfg.ClientConfig = clientConfig(t, text+"  IdentitiesOnly yes\n")
	if err := dialErr(Target{Name: "n", Host: "n"}, cfg); err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Fatalf("with IdentitiesOnly yes the agent's other key was offered: %v", err)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func itoa(n int) string { return strconv.Itoa(n) }

// newKeyFile makes an ed25519 key and writes it as an OpenSSH key file.
func newKeyFile(t *testing.T) (ssh.Signer, string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "id_ed25519")
	writeFile(t, p, string(pem.EncodeToMemory(blk)))
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s, p
}

// An encrypted IdentityFile of the ssh config in BatchMode: skipped with a
// warning naming it, and the next key is used.
func TestClientConfigEncryptedKeyBatchMode(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	s := sshtest.Start(t, sshtest.Options{})
	enc := filepath.Join(t.TempDir(), "enc")
	writeEncryptedKey(t, enc)
	var warn strings.Builder
	cc := clientConfig(t, "Host n\n  HostName "+s.Host+"\n  Port "+itoa(s.Port)+"\n  BatchMode yes\n  IdentityFile "+enc+
		"\n  IdentityFile "+s.IdentityFile+"\n  UserKnownHostsFile "+s.WriteKnownHosts(t)+"\n")
	if err := dialErr(Target{Name: "n", Host: "n"}, Config{ClientConfig: cc, Warnings: &warn}); err != nil {
		t.Fatal(err)
	}
	if w := warn.String(); !strings.Contains(w, enc) || !strings.Contains(w, "batch mode") {
		t.Errorf("want a warning naming %s and batch mode, got %q", enc, w)
	}
}
