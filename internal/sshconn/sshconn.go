// Package sshconn is the SSH connector: one SSH connection per node per run,
// exec sessions for commands and one SFTP session for atomic file writes.
// *Conn implements host.Host.
package sshconn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"hastack.dev/hastack/internal/host"
)

// Target is one node to connect to.
type Target struct {
	Name string // node name for messages
	Host string
	Port int    // default 22
	User string // default root
	// Sudo wraps every command in "sudo -n". Callers set it; the usual
	// default is DefaultSudo(User).
	Sudo bool
}

// DefaultSudo is the usual value of Target.Sudo: needed unless we log in as root.
func DefaultSudo(user string) bool { return user != "" && user != "root" }

// SFTPSubsystem as Config.SFTPServer uses the server's "sftp" subsystem
// instead of starting sftp-server ourselves.
const SFTPSubsystem = "subsystem"

// Config is shared by every node of a run.
type Config struct {
	KnownHosts []string // known_hosts files; default ~/.ssh/known_hosts
	// AcceptNew adds unknown host keys to the first KnownHosts file, like
	// OpenSSH StrictHostKeyChecking=accept-new. A changed key is still refused.
	AcceptNew             bool
	InsecureIgnoreHostKey bool // explicit opt-in only
	// IdentityFiles are tried first (-i); then ssh_config's IdentityFile
	// lines; when neither names one, ~/.ssh/id_rsa, id_ecdsa, id_ed25519
	// if present (OpenSSH's order).
	IdentityFiles []string
	UseAgent      bool // use SSH_AUTH_SOCK when set, before the files
	// BatchMode never asks for a key's passphrase (as ssh -o BatchMode=yes):
	// a key that needs one and is not in the agent is skipped. Without it,
	// the passphrase is asked on the controlling terminal, if there is one.
	BatchMode      bool
	ConnectTimeout time.Duration
	// KeepAlive is the keepalive@openssh.com interval (default 15s, <0 off);
	// the connection is closed after 3 intervals without a reply.
	KeepAlive time.Duration
	// Dial opens the TCP connection; default net.Dialer. Tests pass a dialer
	// that reaches into a network namespace.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// MaxSessions bounds concurrent exec sessions per connection (default 8;
	// OpenSSH allows 10 and the SFTP session takes one more).
	MaxSessions int
	// SFTPServer is the sftp-server binary to start (under sudo when
	// Target.Sudo). Default: the first found of the usual paths (see
	// sftpServerPaths) and sshd's Subsystem sftp program, then, for a root
	// login, sshd's sftp subsystem itself. SFTPSubsystem uses that subsystem
	// only.
	SFTPServer string
	// OpenSFTP opens the SFTP session in Dial, so that a node that cannot
	// take file writes fails before anything changes (apply sets it; a
	// plan, which writes nothing, saves the round trips).
	OpenSFTP bool
	// Warnings receives one line per problem worth knowing that does not
	// stop the run (a skipped known_hosts line or identity file), once per
	// process. Default os.Stderr.
	Warnings io.Writer
	// ClientConfig is the user's OpenSSH client configuration (-F,
	// $HASTACK_SSH_CONFIG or ~/.ssh/config); nil reads none. What the
	// fields above say wins over it, as flags win over ssh_config for ssh.
	// Its jump-host connections are shared by every Dial with it.
	ClientConfig *ClientConfig
}

var warned sync.Map // lines already written to Config.Warnings

// warnOnce writes msg to c.Warnings unless it was written before: every
// node is dialled with the same Config, so one problem would repeat.
func (c Config) warnOnce(msg string) {
	if _, dup := warned.LoadOrStore(msg, true); dup {
		return
	}
	w := c.Warnings
	if w == nil {
		w = os.Stderr
	}
	fmt.Fprintf(w, "hastack: warning: %s\n", msg)
}

// timeouts fills the defaults of the settings ssh_config can also give.
func (c Config) timeouts() Config {
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = 15 * time.Second
	}
	return c
}

func (c Config) withDefaults() Config {
	if c.Dial == nil {
		c.Dial = (&net.Dialer{}).DialContext
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = 8
	}
	return c
}

var dials atomic.Int64

// Dials is the number of successful connections made by this process. The
// benchmarks use it to prove one connection per node.
func Dials() int64 { return dials.Load() }

// Conn is a connection to one node. It implements host.Host.
type Conn struct {
	name   string
	sudo   bool
	cfg    Config
	client *ssh.Client
	// release lets go of the jump host this connection goes through
	// (a no-op for a direct one); Close calls it.
	unjump func()
	sem    chan struct{} // bounds concurrent sessions
	done   chan struct{} // closed by Close
	once   sync.Once

	sftpMu  sync.Mutex
	sftp    *sftp.Client
	sftpSub bool // opened as the subsystem: temp files need pre-creating

	liveMu sync.Mutex
	live   map[*ssh.Session]*pidWriter // running commands, stopped by Close

	writeMu sync.Mutex
	closing bool           // set by Close: no new write starts
	writes  sync.WaitGroup // writes in progress, awaited by Close
}

// closeWait bounds how long Close waits for writes in progress. A write is
// one small file: far less than this unless the node is stuck.
const closeWait = 5 * time.Second

var (
	_ host.Host   = (*Conn)(nil)
	_ host.Dialer = (*Conn)(nil)
)

// DialTCP opens a TCP connection from the node over this connection
// (direct-tcpip): sshd connects, so the node's firewall sees the node.
func (c *Conn) DialTCP(ctx context.Context, addr string) (net.Conn, error) {
	return c.client.DialContext(ctx, "tcp", addr)
}

// Dial connects to t and authenticates. The handshake is bounded by ctx and
// the connect timeout. With a ClientConfig, t.Host is looked up in it as
// ssh looks up its destination (HostName, Port, User, keys, ProxyJump...);
// t.Port and t.User, when set, win over it, and an empty t.User also
// decides t.Sudo (DefaultSudo of the user found).
func Dial(ctx context.Context, t Target, c Config) (*Conn, error) {
	c = c.withDefaults()
	sudoFromUser := t.User == ""
	e, err := resolveTarget(t, c)
	if err != nil {
		return nil, err
	}
	if sudoFromUser {
		t.Sudo = DefaultSudo(e.user)
	}
	var via *ssh.Client
	release := func() {}
	if len(e.hops) > 0 {
		if via, release, err = c.ClientConfig.jumps.client(ctx, e.hops[len(e.hops)-1], c); err != nil {
			return nil, fmt.Errorf("%s: %w", t.Name, err)
		}
	}
	client, err := handshake(ctx, e, c, via)
	if err != nil {
		release()
		return nil, err
	}
	conn := &Conn{
		name: t.Name, sudo: t.Sudo, cfg: e.cfg,
		client: client,
		unjump: release,
		sem:    make(chan struct{}, c.MaxSessions),
		done:   make(chan struct{}),
	}
	if c.OpenSFTP {
		ctx, cancel := context.WithTimeout(ctx, e.cfg.ConnectTimeout)
		defer cancel()
		if _, err := conn.sftpClient(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("%s: SFTP, needed to write files: %w", t.Name, err)
		}
	}
	if e.cfg.KeepAlive > 0 {
		go keepAlive(client, e.cfg.KeepAlive, conn.done)
	}
	return conn, nil
}

// handshake opens an SSH connection to e: a TCP connection from here, or a
// channel through via (the last jump host) when via is not nil.
func handshake(ctx context.Context, e *endpoint, c Config, via *ssh.Client) (*ssh.Client, error) {
	cfg := e.cfg
	cc := &ssh.ClientConfig{User: e.user, Timeout: cfg.ConnectTimeout}
	if cfg.InsecureIgnoreHostKey {
		cc.HostKeyCallback = ssh.InsecureIgnoreHostKey()
	} else {
		hk, err := newHostKeys(e.name, e.addr, cfg)
		if err != nil {
			return nil, err
		}
		cc.HostKeyCallback = hk.check
		cc.HostKeyAlgorithms = hk.algorithms()
	}
	keys, closeAgent, err := signers(ctx, cfg, e.ids, e.identitiesOnly)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", e.name, err)
	}
	defer closeAgent()
	cc.Auth = []ssh.AuthMethod{ssh.PublicKeys(keys...)}

	ctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	var nc net.Conn
	if via != nil {
		nc, err = via.DialContext(ctx, "tcp", e.addr)
	} else {
		nc, err = c.Dial(ctx, "tcp", e.addr)
	}
	if err != nil {
		if via != nil {
			return nil, fmt.Errorf("%s: connect to %s through jump host %s: %w", e.name, e.addr, e.hops[len(e.hops)-1].alias, err)
		}
		return nil, fmt.Errorf("%s: connect to %s: %w", e.name, e.addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	// A cancelled ctx aborts the handshake by closing the socket.
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	sc, chans, reqs, err := ssh.NewClientConn(nc, e.addr, cc)
	if !stop() {
		if err == nil {
			sc.Close()
		}
		nc.Close()
		return nil, fmt.Errorf("%s: connect to %s: %w", e.name, e.addr, context.Cause(ctx))
	}
	if err != nil {
		nc.Close()
		return nil, handshakeError(e.name, e.addr, err)
	}
	nc.SetDeadline(time.Time{})
	dials.Add(1)
	return ssh.NewClient(sc, chans, reqs), nil
}

// handshakeError keeps a HostKeyError as is (it names the node) and labels
// anything else.
func handshakeError(node, addr string, err error) error {
	var he *HostKeyError
	if errors.As(err, &he) {
		return he
	}
	return fmt.Errorf("%s: SSH handshake with %s: %w", node, addr, err)
}

// Name is the node name.
func (c *Conn) Name() string { return c.name }

// Close ends the connection. Writes in progress finish first (up to
// closeWait), so none is left half-done with its temp file behind; commands
// still running get SIGTERM with their children (see interruptible). This is
// how a second Ctrl-C stops a hung command on the node.
func (c *Conn) Close() error {
	var err error
	c.once.Do(func() {
		c.writeMu.Lock()
		c.closing = true
		c.writeMu.Unlock()
		waitAtMost(&c.writes, closeWait)
		close(c.done)
		c.liveMu.Lock()
		live := maps.Clone(c.live)
		c.liveMu.Unlock()
		c.stop(live)
		c.sftpMu.Lock()
		if c.sftp != nil {
			c.sftp.Close()
		}
		c.sftpMu.Unlock()
		err = c.client.Close()
		c.unjump()
	})
	return err
}

// beginWrite registers a write with Close; false once Close has started.
func (c *Conn) beginWrite() bool {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if c.closing {
		return false
	}
	c.writes.Add(1)
	return true
}

func waitAtMost(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// keepAlive sends keepalive@openssh.com every interval and closes the
// connection when a reply takes longer than 3 intervals, so a dead node
// (or jump host) fails fast instead of hanging a run. It ends with done.
func keepAlive(client *ssh.Client, interval time.Duration, done <-chan struct{}) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		reply := make(chan error, 1)
		go func() {
			_, _, err := client.SendRequest("keepalive@openssh.com", true, nil)
			reply <- err
		}()
		timeout := time.NewTimer(3 * interval)
		select {
		case err := <-reply:
			timeout.Stop()
			if err != nil {
				return // connection already gone
			}
		case <-timeout.C:
			client.Close()
			return
		case <-done:
			timeout.Stop()
			return
		}
	}
}
