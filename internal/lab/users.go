package lab

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Users are the accounts a node has on top of the host's: what an HSTS
// install (aspadmins, asperadaemon) and the admin (transfer users) add.
// The host's own files are never changed: each node gets copies.
type Users struct {
	AspadminsGID int `json:"aspadmins_gid"`
	DaemonUID    int `json:"asperadaemon_uid"`
	XferUID      int `json:"xfer_uid"`
	Xfer2UID     int `json:"xfer2_uid"`
}

// usedIDs returns the ids in field 3 of a passwd/group style file.
func usedIDs(path string) (map[int]bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	used := map[int]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fs := strings.Split(sc.Text(), ":"); len(fs) > 3 {
			if id, err := strconv.Atoi(fs[2]); err == nil {
				used[id] = true
			}
		}
	}
	return used, sc.Err()
}

// pickIDs finds four consecutive ids from 2000 on free as both uid and gid
// on the host, so the nodes' users never alias a host account.
func pickIDs() (Users, error) {
	pw, err := usedIDs("/etc/passwd")
	if err != nil {
		return Users{}, err
	}
	gr, err := usedIDs("/etc/group")
	if err != nil {
		return Users{}, err
	}
	for base := 2000; base < 60000; base += 4 {
		free := true
		for id := base; id < base+4; id++ {
			free = free && !pw[id] && !gr[id]
		}
		if free {
			return Users{AspadminsGID: base, DaemonUID: base + 1, XferUID: base + 2, Xfer2UID: base + 3}, nil
		}
	}
	return Users{}, fmt.Errorf("lab: no free uid/gid range")
}

// writeUserFiles writes the node's passwd, group and shadow into its /etc
// overlay: the host's content plus the lab's accounts. Homes are created
// under the node's private /home.
func (l *Lab) writeUserFiles(n *Node) error {
	u := l.Users
	type acct struct {
		name string
		uid  int
	}
	accts := []acct{{"asperadaemon", u.DaemonUID}, {"xfer", u.XferUID}, {"xfer2", u.Xfer2UID}}
	var pw, gr, sh strings.Builder
	fmt.Fprintf(&gr, "aspadmins:x:%d:asperadaemon\n", u.AspadminsGID)
	for _, a := range accts {
		gid := a.uid // a personal group, as useradd makes
		if a.name == "asperadaemon" {
			gid = u.AspadminsGID
		} else {
			fmt.Fprintf(&gr, "%s:x:%d:\n", a.name, gid)
		}
		fmt.Fprintf(&pw, "%s:x:%d:%d::/home/%s:/bin/bash\n", a.name, a.uid, gid, a.name)
		fmt.Fprintf(&sh, "%s:*:20000:0:99999:7:::\n", a.name) // '*': no password, key login allowed
		home := filepath.Join(n.Dir, "home", a.name)
		if err := os.MkdirAll(home, 0o750); err != nil {
			return err
		}
		if err := os.Chown(home, a.uid, gid); err != nil {
			return err
		}
	}
	for _, f := range []struct{ name, extra string }{{"passwd", pw.String()}, {"group", gr.String()}, {"shadow", sh.String()}} {
		if err := appendCopy("/etc/"+f.name, filepath.Join(n.Dir, "etc.upper", f.name), f.extra); err != nil {
			return err
		}
	}
	return nil
}

// appendCopy writes src's content plus extra to dst with src's mode and owner.
func appendCopy(src, dst, extra string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		b = append(b, '\n')
	}
	if err := os.WriteFile(dst, append(b, extra...), st.Mode().Perm()); err != nil {
		return err
	}
	if err := os.Chmod(dst, st.Mode().Perm()); err != nil {
		return err
	}
	sys := st.Sys().(*syscall.Stat_t)
	return os.Chown(dst, int(sys.Uid), int(sys.Gid))
}
