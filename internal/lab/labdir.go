package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// The lab dir is /tmp/hastack-lab-NAME: a name anyone on the machine can
// guess and create first. Root removes it, kills processes and runs
// commands from what is in it, so it is used only when root made it: a
// real directory (not a symlink) owned by the user running hastack (root),
// that no one else can write, in a parent where no one else can replace it.

// maxLabJSON bounds lab.json: 200 nodes take about 40 KiB.
const maxLabJSON = 1 << 20

// makeLabDir creates the lab dir, mode 0700. It fails if the dir exists:
// Clean has removed ours, so an existing one is someone else's.
func makeLabDir(dir string) error {
	if err := checkParent(dir); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("lab: %w (not using a dir this run did not create)", err)
	}
	d, err := openLabDir(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Chmod(0o700) // Mkdir's mode is masked by the umask
}

// openLabDir opens dir if it is a lab dir that only root can write, and
// says why not otherwise. Checks are made on the open directory, so the
// path cannot be swapped between check and use. A missing dir is
// os.ErrNotExist.
func openLabDir(dir string) (*os.File, error) {
	if err := checkParent(dir); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.ENOTDIR) {
		// With O_DIRECTORY, a symlink fails as "not a directory".
		if st, lerr := os.Lstat(dir); lerr == nil && st.Mode()&fs.ModeSymlink != 0 {
			return nil, fmt.Errorf("lab: %s is a symbolic link, not a lab dir: not using it (remove it by hand if it is yours)", dir)
		}
		return nil, fmt.Errorf("lab: %s is not a directory: not using it", dir)
	}
	if err != nil {
		return nil, err
	}
	if err := checkOwned(f, dir, true); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// checkOwned fails unless the open file f (named path) is owned by the
// user running hastack and writable by no one else.
func checkOwned(f *os.File, path string, isDir bool) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	kind, ok := "regular file", st.Mode().IsRegular()
	if isDir {
		kind, ok = "directory", st.IsDir()
	}
	if !ok {
		return fmt.Errorf("lab: %s is not a %s: not using it", path, kind)
	}
	uid := st.Sys().(*syscall.Stat_t).Uid
	if int(uid) != os.Geteuid() {
		return fmt.Errorf("lab: %s is owned by uid %d, not by uid %d (root): someone else made it; not using it (remove it by hand, or pick another lab name)", path, uid, os.Geteuid())
	}
	if st.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("lab: %s is writable by group or others (mode %04o): not using it", path, st.Mode().Perm())
	}
	return nil
}

// checkParent makes sure that no one but root can rename or replace dir in
// its parent (/tmp): root-owned, and sticky if others can write it.
func checkParent(dir string) error {
	parent := filepath.Dir(dir)
	st, err := os.Stat(parent)
	if err != nil {
		return err
	}
	sys := st.Sys().(*syscall.Stat_t)
	if sys.Uid != 0 || (st.Mode().Perm()&0o022 != 0 && st.Mode()&fs.ModeSticky == 0) {
		return fmt.Errorf("lab: %s must be owned by root and, if others can write it, sticky", parent)
	}
	return nil
}

// readLabJSON reads lab.json from the open lab dir d: not through a
// symlink, a regular file of ours of at most maxLabJSON bytes. A missing
// file is os.ErrNotExist.
func readLabJSON(d *os.File) (*Lab, error) {
	path := filepath.Join(d.Name(), "lab.json")
	fd, err := unix.Openat(int(d.Fd()), "lab.json", unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if err == unix.ENOENT {
			return nil, os.ErrNotExist
		}
		return nil, fmt.Errorf("lab: %s: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	if err := checkOwned(f, path, false); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, maxLabJSON+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxLabJSON {
		return nil, fmt.Errorf("lab: %s is larger than %d bytes: not a lab.json", path, maxLabJSON)
	}
	l := new(Lab)
	if err := json.Unmarshal(b, l); err != nil {
		return nil, fmt.Errorf("lab: %s: %w", path, err)
	}
	return l, nil
}

// matches fails unless the saved lab s is what the name derives: the same
// dir, namespaces, addresses and files. lab.json never says where to look.
func (s *Lab) matches(name string) error {
	n := len(s.Nodes)
	if n < 1 || n > MaxNodes {
		return fmt.Errorf("lab %s: lab.json lists %d nodes: want 1-%d", name, n, MaxNodes)
	}
	want := newLab(name, n)
	type field struct{ what, got, want string }
	fields := []field{
		{"name", s.Name, want.Name},
		{"dir", s.Dir, want.Dir},
		{"controller", s.Controller, want.Controller},
		{"controller_ip", s.ControllerIP, want.ControllerIP},
		{"prefix", fmt.Sprint(s.Prefix), fmt.Sprint(want.Prefix)},
		{"known_hosts", s.KnownHosts, want.KnownHosts},
		{"identity", s.Identity, want.Identity},
	}
	for i, wn := range want.Nodes {
		sn := s.Nodes[i]
		p := fmt.Sprintf("nodes[%d].", i)
		fields = append(fields,
			field{p + "name", sn.Name, wn.Name}, field{p + "ip", sn.IP, wn.IP},
			field{p + "netns", sn.Netns, wn.Netns}, field{p + "dir", sn.Dir, wn.Dir})
	}
	for _, f := range fields {
		if f.got != f.want {
			return fmt.Errorf("lab %s: lab.json in %s says %s %q, but the lab's is %q: not trusting it (remove %s by hand if it is yours)",
				name, want.Dir, f.what, f.got, f.want, want.Dir)
		}
	}
	return nil
}
