package lab

import "path/filepath"

// Shared storage for the Shares/Console web tier (issue 12): every node
// sees the lab dir's shared/ at /mnt/shared (boot.sh bind-mounts it over a
// node-private tmpfs /mnt), as two servers see one NFS export. MariaDB's
// data, ACM's status file and the application's data live there, so only
// one mysqld may ever run on it (MariaDB's own lock refuses a second).
//
// The web tier's active/passive services come from the host as nginx's
// does (units.go): Debian's mariadb.service is Type=notify with a shell
// ExecStart= for Galera recovery and an ExecStartPost= of debian-start,
// none of which the systemctl stand-in runs; the drop-in starts mariadbd
// in the foreground as the unit's User=mysql, with /run/mysqld made as
// RuntimeDirectory=. cron.service reads $EXTRA_OPTS from an
// EnvironmentFile=, which the stand-in does not: the drop-in runs cron -f.
func init() {
	type hostUnit = struct {
		unit, dropIn, wrapper, wrapperText string
		logDirs                            []string
	}
	hostUnits = append(hostUnits,
		hostUnit{
			unit: "mariadb.service",
			dropIn: "# hastack lab: mariadbd in the foreground for the systemctl stand-in.\n" +
				"[Service]\nExecStart=\nExecStart=/bin/sh /run/lab/mariadb-foreground\nExecStartPost=\nRuntimeDirectory=mysqld\n",
			wrapper: "run/lab/mariadb-foreground",
			wrapperText: "# hastack lab (shared.go): Debian's mariadb.service without its Galera\n" +
				"# recovery shell and debian-start; my.cnf as the node has it.\n" +
				"exec /usr/sbin/mariadbd\n",
		},
		hostUnit{
			unit:        "cron.service",
			dropIn:      "# hastack lab: cron in the foreground for the systemctl stand-in.\n[Service]\nExecStart=\nExecStart=/bin/sh /run/lab/cron-foreground\n",
			wrapper:     "run/lab/cron-foreground",
			wrapperText: "# hastack lab (shared.go): Debian's cron.service without $EXTRA_OPTS.\nexec /usr/sbin/cron -f\n",
		},
	)
}

// SharedDir is the host path of the lab's shared storage, /mnt/shared in
// every node.
func (l *Lab) SharedDir() string { return filepath.Join(l.Dir, "shared") }
