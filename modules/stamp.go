package modules

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/secret"
)

// A command stamp records, on the node, a keyed hash of a command and its
// filled-in stdin after a successful run; the command runs again only when
// they change. The key is the node's own: 32 random bytes in StampKeyPath,
// root's alone. Keyed with the password instead, a stamp would let anyone
// who saw it (a command line, sudo's log) test password guesses offline.
// The fact script reads the key with the stamps (the tar of hastackDir), so
// stamps cost no round trip of their own; a stamp goes to the node through
// the host's atomic WriteFile (SFTP), never on a command line.

// StampKeyPath holds the node's stamp key.
const StampKeyPath = hastackDir + "/stamp.key"

const stampKeyLen = 32

// stampKey is a node's key as this run knows it.
type stampKey struct {
	key []byte
	mu  sync.Mutex
	new bool // not on the node yet: apply writes it before the first stamp
}

// stampKeyOf returns the node's stamp key: the one the facts read, when it
// is sound (a regular file of 32 bytes, root's, mode 0600), else a new
// random one, which no stamp on the node matches: the commands run, as on a
// new node.
func (nf *NodeFacts) stampKeyOf() *stampKey {
	if nf.stampKey != nil {
		return nf.stampKey
	}
	if f := nf.Files[StampKeyPath]; f != nil && len(f.Data) == stampKeyLen && f.Owner == "root" && f.Mode == 0o600 {
		nf.stampKey = &stampKey{key: f.Data}
		return nf.stampKey
	}
	k := make([]byte, stampKeyLen)
	if _, err := rand.Read(k); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	nf.stampKey = &stampKey{key: k, new: true}
	return nf.stampKey
}

// stampOf is the stamp of s on a node with key k. The password is part of
// what is hashed even when the stdin does not hold it: a command such as
// `askmscli -i -u USER` reads it from what an earlier command set, and must
// run again when it changes (a rotation).
func stampOf(s commandSpec, k *stampKey, sec secret.Secret) string {
	m := hmac.New(sha256.New, k.key)
	m.Write([]byte(s.Cmd + "\x00" + string(secret.Fill([]byte(s.Stdin), sec)) + "\x00" + sec.Value()))
	return hex.EncodeToString(m.Sum(nil))
}

// stampDirs makes the stamps' directories, root's alone. A stamped
// command's own exec runs it after the command (no round trip of its own).
var stampDirs = fmt.Sprintf("umask 077 && mkdir -p %s && chmod 700 %s %s", StampDir, hastackDir, StampDir)

// writeStamp records stamp for the command id once stampDirs ran: the
// node's key first if it is new, then the stamp, both over the host's
// atomic WriteFile.
func writeStamp(ctx context.Context, h host.Host, k *stampKey, id, stamp string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.new {
		if err := h.WriteFile(ctx, host.File{Path: StampKeyPath, Data: k.key, Mode: 0o600, UID: 0, GID: 0}); err != nil {
			return err
		}
		k.new = false
	}
	return h.WriteFile(ctx, host.File{Path: stampPath(id), Data: []byte(stamp + "\n"), Mode: 0o600, UID: 0, GID: 0})
}
