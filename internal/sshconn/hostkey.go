package sshconn

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// HostKeyError is a refused host key. The CLI tests for it with errors.As to
// explain what to do.
type HostKeyError struct {
	Node        string
	Addr        string // host:port as dialled
	Unknown     bool   // no entry for this host; otherwise the key CHANGED
	KeyType     string // the key the server offered
	Fingerprint string // its SHA256 fingerprint
	KnownHosts  string // file an accepted key would be added to
	Old         []KnownKey
}

// KnownKey is a known_hosts entry that did not match.
type KnownKey struct {
	KeyType, Fingerprint string
	File                 string
	Line                 int
}

func (e *HostKeyError) Error() string {
	if e.Unknown {
		return fmt.Sprintf("%s: unknown host key for %s: %s %s\n"+
			"  Check this fingerprint with the node's administrator, then run again with -accept-new-host-keys to add it to %s.",
			e.Node, e.Addr, e.KeyType, e.Fingerprint, e.KnownHosts)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: REFUSED: THE HOST KEY OF %s HAS CHANGED. Someone may be intercepting this connection.\n", e.Node, e.Addr)
	fmt.Fprintf(&b, "  offered now: %s %s\n", e.KeyType, e.Fingerprint)
	for _, o := range e.Old {
		fmt.Fprintf(&b, "  known:       %s %s (%s:%d)\n", o.KeyType, o.Fingerprint, o.File, o.Line)
	}
	b.WriteString("  If the node was really reinstalled, delete the old entry and connect again; -accept-new-host-keys does not replace changed keys.")
	return b.String()
}

// hostKeys checks server keys against known_hosts files.
type hostKeys struct {
	node, addr string
	files      []string // existing files; the first of the configured ones gets new keys
	addFile    string
	acceptNew  bool
	cb         ssh.HostKeyCallback
	rename     map[string]string // cleaned copy -> real file (see loadKnownHosts)
}

func newHostKeys(node, addr string, cfg Config) (*hostKeys, error) {
	h := &hostKeys{node: node, addr: addr, acceptNew: cfg.AcceptNew}
	if len(cfg.KnownHosts) > 0 {
		h.addFile = cfg.KnownHosts[0]
	}
	for _, f := range cfg.KnownHosts {
		if _, err := os.Stat(f); err == nil {
			h.files = append(h.files, f)
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: known_hosts: %w", node, err)
		}
	}
	if len(h.files) > 0 {
		cb, skipped, rename, err := loadKnownHosts(h.files)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", node, err)
		}
		for _, s := range skipped {
			cfg.warnOnce("known_hosts " + s + ": line skipped (ssh skips it too)")
		}
		h.cb, h.rename = cb, rename
	}
	return h, nil
}

// probeKey is a key no known_hosts holds: checking it lists every entry for a
// host, which is how we learn which key types to ask the server for.
var probeKey = sync.OnceValue(func() ssh.PublicKey {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	k, _ := ssh.NewPublicKey(pub)
	return k
})

// known lists the entries for addr.
func (h *hostKeys) known() []knownhosts.KnownKey {
	if h.cb == nil {
		return nil
	}
	var ke *knownhosts.KeyError
	if errors.As(h.cb(h.addr, fakeRemote, probeKey()), &ke) {
		return ke.Want
	}
	return nil
}

var fakeRemote = &net.TCPAddr{IP: net.IPv4zero}

// algorithms are the host key algorithms to offer, fastest first, limited to
// the key types known_hosts holds for this host. nil means "any" (no entry).
func (h *hostKeys) algorithms() []string {
	have := map[string]bool{}
	for _, k := range h.known() {
		have[k.Key.Type()] = true
	}
	if len(have) == 0 {
		return nil
	}
	var out []string
	for _, t := range []string{ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521} {
		if have[t] {
			out = append(out, t)
			delete(have, t)
		}
	}
	if have[ssh.KeyAlgoRSA] {
		out = append(out, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256)
		delete(have, ssh.KeyAlgoRSA)
	}
	for t := range have { // other types (e.g. security keys): offer as named
		out = append(out, t)
	}
	return out
}

// check is the ssh.HostKeyCallback.
func (h *hostKeys) check(_ string, _ net.Addr, key ssh.PublicKey) error {
	var err error = &knownhosts.KeyError{}
	if h.cb != nil {
		err = h.cb(h.addr, fakeRemote, key)
	}
	if err == nil {
		return nil
	}
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) {
		return fmt.Errorf("%s: host key of %s: %w", h.node, h.addr, err) // e.g. revoked
	}
	he := &HostKeyError{Node: h.node, Addr: h.addr, Unknown: len(ke.Want) == 0,
		KeyType: key.Type(), Fingerprint: ssh.FingerprintSHA256(key), KnownHosts: h.addFile}
	for _, w := range ke.Want {
		file := w.Filename
		if real, ok := h.rename[file]; ok {
			file = real
		}
		he.Old = append(he.Old, KnownKey{w.Key.Type(), ssh.FingerprintSHA256(w.Key), file, w.Line})
	}
	if he.Unknown && h.acceptNew && h.addFile != "" {
		if err := appendKnownHost(h.addFile, h.addr, key); err != nil {
			return fmt.Errorf("%s: add host key of %s to %s: %w", h.node, h.addr, h.addFile, err)
		}
		return nil
	}
	return he
}

var appendMu sync.Mutex // nodes are dialled in parallel and share the file

func appendKnownHost(file, addr string, key ssh.PublicKey) error {
	appendMu.Lock()
	defer appendMu.Unlock()
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	line := knownhosts.Line([]string{addr}, key) + "\n"
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		if b, err := os.ReadFile(file); err == nil && b[len(b)-1] != '\n' {
			line = "\n" + line
		}
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
