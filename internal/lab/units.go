package lab

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// hostUnits are Debian units a lab node takes from the host, so that a
// stack can install-and-run the real package there (examples/web: nginx).
// A node's /lib/systemd/system is its own directory (boot.sh), holding the
// stand-ins' units: each of these is copied into it when the host has it.
//
// dropIn is what the systemctl stand-in cannot read of the host's unit:
// nginx's is Type=forking with a quoted -g argument, and the stand-in runs
// ExecStart split on spaces in the foreground. The drop-in (in the node's
// /etc/systemd/system/UNIT.d/, where systemd reads it too) starts the same
// binary on the same config in the foreground, through a main-context
// wrapper file, so its master is the unit's main pid; the host's
// ExecReload= (nginx -s reload: HUP to the pid in /run/nginx.pid) is kept.
// dirs are made in the node's private /var/log, which starts empty.
var hostUnits = []struct {
	unit, dropIn, wrapper, wrapperText string
	logDirs                            []string
}{{
	unit: "nginx.service",
	dropIn: "# hastack lab: nginx in the foreground for the systemctl stand-in.\n" +
		"[Service]\nExecStart=\nExecStart=/usr/sbin/nginx -c /run/lab/nginx-foreground.conf\n",
	wrapper:     "run/lab/nginx-foreground.conf",
	wrapperText: "# hastack lab (units.go): Debian's nginx.conf, not daemonized.\ndaemon off;\ninclude /etc/nginx/nginx.conf;\n",
	logDirs:     []string{"nginx"},
}}

// installHostUnits copies the host's units of hostUnits into node n.
func installHostUnits(n *Node) error {
	for _, u := range hostUnits {
		b, err := os.ReadFile(filepath.Join("/lib/systemd/system", u.unit))
		if errors.Is(err, fs.ErrNotExist) {
			continue // the package is not on the host: the node has no such unit either
		}
		if err != nil {
			return err
		}
		files := []struct {
			path string
			text []byte
		}{
			{filepath.Join(n.Dir, "units", u.unit), b},
			{filepath.Join(n.Dir, "etc-units", u.unit+".d", "lab.conf"), []byte(u.dropIn)},
			{filepath.Join(n.Dir, u.wrapper), []byte(u.wrapperText)},
		}
		for _, f := range files {
			if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(f.path, f.text, 0o644); err != nil {
				return err
			}
		}
		for _, d := range u.logDirs {
			if err := os.MkdirAll(filepath.Join(n.Dir, "log", d), 0o755); err != nil {
				return err
			}
		}
	}
	return nil
}
