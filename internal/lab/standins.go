package lab

import (
	"embed"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// standins holds the stand-ins for the proprietary HSTS commands and the
// files an HSTS install ships; see standins/README.md.
//
//go:embed standins
var standins embed.FS

// installDest maps a folder of standins/ to where it goes in the node dir.
var installDest = map[string]string{
	"bin":       "opt/aspera/bin",
	"sbin":      "opt/aspera/sbin",
	"etc":       "opt/aspera/etc",
	"etc/redis": "opt/aspera/etc/redis",
	"units":     "units",             // the node's /lib/systemd/system
	"massstore": "opt/massstore/bin", // MassStore's processes (stacks/massstore)
	".":         ".",                 // systemctl: bind-mounted over /usr/bin/systemctl by boot.sh
}

// installStandins lays out a fresh HSTS install in the node's /opt and
// /lib/systemd/system, owned as the installer would own it.
func (l *Lab) installStandins(n *Node) error {
	for _, d := range []string{"opt/aspera/var/run", "opt/aspera/etc/askms", "opt/aspera/etc/redis", "opt/aspera/var/log"} {
		if err := os.MkdirAll(filepath.Join(n.Dir, d), 0o755); err != nil {
			return err
		}
	}
	err := fs.WalkDir(standins, "standins", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, ".md") {
			return err
		}
		rel := strings.TrimPrefix(p, "standins/")
		dest, ok := installDest[path.Dir(rel)]
		if !ok {
			return nil
		}
		b, err := standins.ReadFile(p)
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if bytes := string(b); strings.HasPrefix(bytes, "#!") {
			mode = 0o755
		}
		target := filepath.Join(n.Dir, dest, path.Base(rel))
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(target, b, mode); err != nil {
			return err
		}
		return os.Chmod(target, mode)
	})
	if err != nil {
		return err
	}
	// asperadaemon runs Redis and Sentinel, which write their data, pid
	// files and (CONFIG REWRITE) their configs: a temp file in the dir.
	u := l.Users
	for _, p := range []string{"opt/aspera/var", "opt/aspera/var/run", "opt/aspera/var/log", "opt/aspera/etc/redis", "opt/aspera/etc/redis/aspera_31415.conf"} {
		if err := os.Chown(filepath.Join(n.Dir, p), u.DaemonUID, u.AspadminsGID); err != nil {
			return err
		}
	}
	if err := os.Chmod(filepath.Join(n.Dir, "opt/aspera/etc/redis/aspera_31415.conf"), 0o640); err != nil {
		return err
	}
	if err := os.Chmod(filepath.Join(n.Dir, "opt/aspera/etc/askms"), 0o700); err != nil {
		return err
	}
	return l.installNodeAPI(n) // nodeapi.go
}
