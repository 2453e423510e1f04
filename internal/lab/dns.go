package lab

// NSD, the name server of the Shares/Console web tier's type 2 (issue 12),
// comes from the host as nginx's does (units.go). Debian's nsd.service
// starts `nsd -d -P ""`: the empty pid file argument is a quoted word,
// and the systemctl stand-in splits ExecStart= on spaces without quotes,
// so nsd would get the two characters "" as its pid file. The drop-in
// runs it in the foreground with its pid file in its RuntimeDirectory=
// (/run/nsd, which the unit already names).
func init() {
	hostUnits = append(hostUnits, struct {
		unit, dropIn, wrapper, wrapperText string
		logDirs                            []string
	}{
		unit:        "nsd.service",
		dropIn:      "# hastack lab: nsd in the foreground for the systemctl stand-in.\n[Service]\nExecStart=\nExecStart=/bin/sh /run/lab/nsd-foreground\n",
		wrapper:     "run/lab/nsd-foreground",
		wrapperText: "# hastack lab (dns.go): Debian's nsd.service without its quoted -P \"\".\nexec /usr/sbin/nsd -d -P /run/nsd/nsd.pid\n",
	})
}
