// Package sshtest runs an in-process SSH server for fast unit tests of the SSH
// connector. It accepts one client key, runs "exec" requests with the real
// /bin/sh of this machine (tests use temporary directories), and serves the
// "sftp" subsystem with github.com/pkg/sftp's server (which, unlike OpenSSH,
// offers no fsync@openssh.com: clients must cope).
package sshtest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Options change the server. The zero value is a working server with a fresh
// ed25519 host key and a fresh ed25519 client key.
type Options struct {
	// HostKeys are the server's host keys; default one new ed25519 key.
	HostKeys []ssh.Signer
	// ClientKey is the only key accepted; default a new ed25519 key, written
	// to Server.IdentityFile.
	ClientKey ssh.Signer
	// NoSFTP refuses the sftp subsystem.
	NoSFTP bool
	// IgnoreKeepalives leaves keepalive@openssh.com requests unanswered, as a
	// dead peer would.
	IgnoreKeepalives bool
	// Forward accepts direct-tcpip channels (ssh -W, ProxyJump) and
	// connects them from this process, as a jump host's sshd does.
	Forward bool
}

// Server is a running test server. It stops when the test ends.
type Server struct {
	Addr         string // 127.0.0.1:port
	Host         string // 127.0.0.1
	Port         int
	HostKey      ssh.Signer // the first host key
	ClientSigner ssh.Signer // the accepted client key
	IdentityFile string     // ClientSigner as an OpenSSH private key file

	opts     Options
	ln       net.Listener
	wg       sync.WaitGroup
	mu       sync.Mutex
	netConns map[net.Conn]bool
	closed   bool

	conns atomic.Int64 // successful handshakes
	users []string     // the user of each handshake, in order (under mu)
}

// Start starts a server on 127.0.0.1:0 and stops it in t.Cleanup.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	if len(opts.HostKeys) == 0 {
		opts.HostKeys = []ssh.Signer{NewSigner(t)}
	}
	s := &Server{HostKey: opts.HostKeys[0], opts: opts, netConns: map[net.Conn]bool{}}
	s.ClientSigner = opts.ClientKey
	if s.ClientSigner == nil {
		priv := newEd25519(t)
		s.ClientSigner = mustSigner(t, priv)
		s.IdentityFile = writeIdentity(t, priv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("sshtest: listen: %v", err)
	}
	s.ln = ln
	s.Addr = ln.Addr().String()
	s.Host = "127.0.0.1"
	s.Port = ln.Addr().(*net.TCPAddr).Port
	s.wg.Add(1)
	go s.acceptLoop()
	t.Cleanup(s.Close)
	return s
}

// Close stops the server and every connection and command it runs.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.ln.Close()
	for c := range s.netConns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// Conns is the number of SSH connections that completed the handshake.
func (s *Server) Conns() int64 { return s.conns.Load() }

// Users are the users of the connections so far, in order.
func (s *Server) Users() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.users...)
}

// KnownHostsLine is a known_hosts line for every host key of this server.
func (s *Server) KnownHostsLine() string {
	var out string
	for _, k := range s.opts.HostKeys {
		out += knownhosts.Line([]string{s.Addr}, k.PublicKey()) + "\n"
	}
	return out
}

// WriteKnownHosts writes KnownHostsLine to a new file and returns its path.
func (s *Server) WriteKnownHosts(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(p, []byte(s.KnownHostsLine()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// NewSigner returns a fresh ed25519 signer, e.g. for a host key.
func NewSigner(t testing.TB) ssh.Signer {
	t.Helper()
	return mustSigner(t, newEd25519(t))
}

func newEd25519(t testing.TB) ed25519.PrivateKey {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func mustSigner(t testing.TB, priv ed25519.PrivateKey) ssh.Signer {
	sg, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return sg
}

func writeIdentity(t testing.TB, priv ed25519.PrivateKey) string {
	p := filepath.Join(t.TempDir(), "id_ed25519")
	writeKey(t, p, priv)
	return p
}

// writeKey writes priv as an OpenSSH private key file, mode 0600.
func writeKey(t testing.TB, path string, priv ed25519.PrivateKey) {
	blk, err := ssh.MarshalPrivateKey(priv, "sshtest")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (s *Server) config() *ssh.ServerConfig {
	want := string(s.ClientSigner.PublicKey().Marshal())
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if string(k.Marshal()) == want {
				return nil, nil
			}
			return nil, errUnknownKey
		},
	}
	for _, k := range s.opts.HostKeys {
		cfg.AddHostKey(k)
	}
	return cfg
}

type sshtestError string

func (e sshtestError) Error() string { return string(e) }

const errUnknownKey = sshtestError("sshtest: client key not accepted")

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	cfg := s.config()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return
		}
		s.netConns[nc] = true
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.serveConn(nc, cfg)
			s.mu.Lock()
			delete(s.netConns, nc)
			s.mu.Unlock()
		}()
	}
}

func (s *Server) serveConn(nc net.Conn, cfg *ssh.ServerConfig) {
	defer nc.Close()
	sc, chans, reqs, err := ssh.NewServerConn(nc, cfg)
	if err != nil {
		return
	}
	defer sc.Close()
	s.conns.Add(1)
	s.mu.Lock()
	s.users = append(s.users, sc.User())
	s.mu.Unlock()
	go s.globalRequests(reqs)
	var wg sync.WaitGroup
	defer wg.Wait()
	for nch := range chans {
		if nch.ChannelType() == "direct-tcpip" && s.opts.Forward {
			wg.Add(1)
			go func() {
				defer wg.Done()
				forward(nch)
			}()
			continue
		}
		if nch.ChannelType() != "session" {
			nch.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, creqs, err := nch.Accept()
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.session(ch, creqs)
		}()
	}
}

func (s *Server) globalRequests(reqs <-chan *ssh.Request) {
	for r := range reqs {
		if r.Type == "keepalive@openssh.com" && s.opts.IgnoreKeepalives {
			continue
		}
		if r.WantReply {
			r.Reply(r.Type == "keepalive@openssh.com", nil)
		}
	}
}

func exitStatus(code int) []byte {
	return ssh.Marshal(struct{ Status uint32 }{uint32(code)})
}

// forward connects a direct-tcpip channel to the address it names.
func forward(nch ssh.NewChannel) {
	var req struct {
		Host     string
		Port     uint32
		OrigHost string
		OrigPort uint32
	}
	if err := ssh.Unmarshal(nch.ExtraData(), &req); err != nil {
		nch.Reject(ssh.ConnectionFailed, "bad direct-tcpip request")
		return
	}
	nc, err := net.Dial("tcp", net.JoinHostPort(req.Host, strconv.Itoa(int(req.Port))))
	if err != nil {
		nch.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	defer nc.Close()
	ch, reqs, err := nch.Accept()
	if err != nil {
		return
	}
	defer ch.Close()
	go ssh.DiscardRequests(reqs)
	// Either side's end ends both: what goes through is an SSH
	// connection, which needs no half-close.
	done := make(chan struct{}, 2)
	go func() { io.Copy(ch, nc); done <- struct{}{} }()
	go func() { io.Copy(nc, ch); done <- struct{}{} }()
	<-done
	nc.Close()
	ch.Close()
	<-done
}
