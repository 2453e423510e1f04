package lock

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"
)

// LocalDir is where this user's local locks live: ~/.cache/hastack/locks
// (os.UserCacheDir).
func LocalDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache folder for the local lock: %w", err)
	}
	return filepath.Join(dir, "hastack", "locks"), nil
}

// LocalPath is the lock file of a cluster in dir: named by a hash of the
// cluster's name and its nodes' addresses, in any order, so two configs of
// the same cluster share it and no name from the config becomes a path.
func LocalPath(dir, cluster string, addrs []string) string {
	a := append([]string(nil), addrs...)
	sort.Strings(a)
	h := sha256.New()
	h.Write([]byte(cluster))
	for _, s := range a {
		h.Write([]byte{0})
		h.Write([]byte(s))
	}
	return filepath.Join(dir, hex.EncodeToString(h.Sum(nil)[:16]))
}

// Local is a lock held by this process on a file of this machine. The
// kernel drops it when the process ends, however it ends.
type Local struct {
	f *os.File
}

// TryLocal takes the lock at path without waiting. It fails with a
// *HeldError when another process holds it. The folder is made 0700 and
// must be this user's and not writable by others; the file is 0600.
func TryLocal(path string, h Holder) (*Local, error) {
	if err := privateDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("local lock: %w", err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, fmt.Errorf("local lock: %w", err)
	}
	// The holder takes the lock before it writes its details: a busy lock
	// whose file is still empty (or half written) is looked at again a
	// few times, and taken if it was let go meanwhile.
	for try := 0; ; try++ {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("local lock %s: %w", path, err)
		}
		b, _ := io.ReadAll(io.NewSectionReader(f, 0, 4<<10))
		if written(b) || try >= holderTries {
			f.Close()
			return nil, &HeldError{Where: "this machine (" + path + ")", Holder: parseHolder(string(b))}
		}
		holderWait()
	}
	// Ours now: say who holds it, for the next run that is refused.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(h.encode()), 0)
	}
	return &Local{f: f}, nil
}

// holderWait is the pause before a refused run looks again for the
// holder's details (a variable so a test can write them meanwhile).
var holderWait = func() { time.Sleep(50 * time.Millisecond) }

// written reports whether b is a whole holder file: encode ends it with a
// newline.
func written(b []byte) bool { return len(b) > 0 && b[len(b)-1] == '\n' }

// Release empties the file and drops the lock.
func (l *Local) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	l.f.Truncate(0)
	err := l.f.Close() // closing the last descriptor drops the flock
	l.f = nil
	return err
}

// privateDir makes dir (0700) and checks that no one else can change it:
// it is a real folder, this user's, writable by no group or other user.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("local lock: %w", err)
	}
	st, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("local lock: %w", err)
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	switch {
	case !st.IsDir():
		return fmt.Errorf("local lock: %s is not a folder", dir)
	case !ok || int(sys.Uid) != os.Geteuid():
		return fmt.Errorf("local lock: %s belongs to another user", dir)
	case st.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("local lock: %s is writable by other users (mode %04o): make it 0700", dir, st.Mode().Perm())
	}
	return nil
}
