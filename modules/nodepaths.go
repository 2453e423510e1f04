package modules

import (
	"context"
	"fmt"
	"io/fs"

	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/secret"
)

// hastack runs as root on a node whose other users it does not trust: a
// service user can write in the directory of its server's config files, and
// owns those files. Root therefore never reads
// or writes there through a name such a user can swap:
//
//   - it reads a file with tar, which lstat()s the name and opens a regular
//     file with O_NOFOLLOW|O_NONBLOCK (a link is archived as a link, a FIFO
//     is never opened), and refuses anything but a regular file;
//   - it writes a file through a temporary file it creates itself with a
//     random name and O_EXCL in the same directory, then renames it over
//     the name (rename replaces a link, it never follows one), and only in
//     a directory where no other user can rename or remove root's files
//     (SafeDirFunc);
//   - it changes owners with chown -h (never through a link).

// SafeDirFunc defines the sh function hastack_safe_dir DIR, which fails,
// saying why, unless DIR and every directory above it is a directory (not a
// symlink) owned by root, or by the user running the script, and writable
// by no other user unless it has the sticky bit. In such a directory a file
// root created cannot be renamed, removed or swapped for a link by anyone
// else (the sticky bit allows that only to a file's owner), so root may
// create a temporary file there and rename it over a name. The stack's
// rotation script carries the same text (a test keeps them equal).
const SafeDirFunc = `hastack_safe_dir() {
	_d=$1
	case "$_d" in /*) ;; *) echo "$_d: not an absolute path" >&2; return 1 ;; esac
	while :; do
		_s=$(stat -c '%u %a %F' -- "$_d") || return 1
		_u=${_s%% *} _m=${_s#* }
		_m=${_m%% *}
		case "$_s" in
		*" directory") ;;
		*) echo "$_d is not a directory (hastack follows no link as root)" >&2; return 1 ;;
		esac
		if [ "$_u" != 0 ] && [ "$_u" != "$(id -u)" ]; then
			echo "$_d is owned by uid $_u, not root: hastack does not write below it as root" >&2
			return 1
		fi
		if [ $((0$_m & 01000)) -eq 0 ] && [ $((0$_m & 022)) -ne 0 ]; then
			echo "$_d is writable by other users and not sticky: hastack does not write below it as root" >&2
			return 1
		fi
		[ "$_d" = / ] && return 0
		_d=$(dirname -- "$_d")
	done
}
`

// NotRegular refuses a path that the facts found to be something other
// than a regular file (for product modules).
func NotRegular(nf *NodeFacts, p string) error { return notRegular(nf, p) }

// notRegular refuses a path that the facts found to be something other
// than a regular file (or that is a directory where a file is wanted).
func notRegular(nf *NodeFacts, p string) error {
	kind, ok := nf.Irregular[p]
	if !ok && nf.Dirs[p] != nil {
		kind, ok = "a directory", true
	}
	if !ok {
		return nil
	}
	return fmt.Errorf("%q is %s, not a regular file: hastack reads and writes it as root only as a regular file (a user who can write in its directory could point a link anywhere); remove it and run again", p, kind)
}

// readNoFollow reads one file on the node as root without following a
// link, as the fact script does (one tar), and refuses anything but a
// regular file.
func readNoFollow(ctx context.Context, h host.Host, p string, sec secret.Secret) ([]byte, error) {
	res, err := run(ctx, h, "tar -cPf - --no-recursion --ignore-failed-read "+Quote(p)+" 2>/dev/null", nil, sec)
	if err != nil {
		return nil, err
	}
	nf := &NodeFacts{Files: map[string]*FileFact{}, Dirs: map[string]*FileFact{}, Irregular: map[string]string{},
		Stamps: map[string]string{}, Pending: map[string]bool{}}
	if err := nf.readTar(res.Stdout); err != nil {
		return nil, fmt.Errorf("%s: %v", p, err)
	}
	if err := notRegular(nf, p); err != nil {
		return nil, err
	}
	f := nf.Files[p]
	if f == nil {
		return nil, fmt.Errorf("%s: gone since the facts were read", p)
	}
	return f.Data, nil
}

// unixMode is m as chmod's octal number, with the sticky and set-id bits.
func unixMode(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&fs.ModeSetuid != 0 {
		u |= 0o4000
	}
	return u
}
