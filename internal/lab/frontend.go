package lab

import (
	"fmt"
	"strconv"
	"strings"
)

// A lab node can be a load balancer of the front end (issue 11): it runs
// Debian's keepalived (VRRP over the lab bridge, the virtual IP added to the
// node's eth0 in its own network namespace), HAProxy (the stand-ins' unit)
// and nginx with its stream module (the host unit of units.go). Nothing
// marks a node as one: a stack decides which nodes balance.
//
// keepalived.service comes from the host, as nginx's does, with a drop-in
// the systemctl stand-in can run: Debian's ExecStart= is
// "keepalived --dont-fork $DAEMON_ARGS" with DAEMON_ARGS from an
// EnvironmentFile=, neither of which the stand-in reads. The drop-in runs a
// wrapper (in the node's /run/lab) that reads /etc/default/keepalived as
// systemd would and execs keepalived in the foreground, its log on stdout
// (the unit's log), so keepalived is the unit's main pid and Debian's
// ExecReload= (kill -HUP $MAINPID) works. Each node's /run is its own, so
// two nodes' keepalived never share a pid file.
func init() {
	hostUnits = append(hostUnits, struct {
		unit, dropIn, wrapper, wrapperText string
		logDirs                            []string
	}{
		unit: "keepalived.service",
		dropIn: "# hastack lab: keepalived in the foreground for the systemctl stand-in.\n" +
			"[Service]\nExecStart=\nExecStart=/bin/sh /run/lab/keepalived-foreground\n",
		wrapper: "run/lab/keepalived-foreground",
		wrapperText: "# hastack lab (frontend.go): Debian's keepalived.service reads DAEMON_ARGS\n" +
			"# from /etc/default/keepalived (EnvironmentFile=-); the systemctl stand-in\n" +
			"# does not, so this does, and keepalived stays in the foreground.\n" +
			"DAEMON_ARGS=\n" +
			"[ -r /etc/default/keepalived ] && . /etc/default/keepalived\n" +
			"exec /usr/sbin/keepalived --dont-fork --log-console $DAEMON_ARGS\n",
	})
}

// MaxSpareIPs is how many addresses of the lab's /24 are neither the
// controller's (.1) nor a node's (.11 on): .2 to .10.
const MaxSpareIPs = 9

// SpareIP is the i-th (1 to MaxSpareIPs) address of the lab's network that
// no node and not the controller has: a virtual IP for a front end.
func (l *Lab) SpareIP(i int) (string, error) {
	if i < 1 || i > MaxSpareIPs {
		return "", fmt.Errorf("lab: spare address %d: want 1-%d", i, MaxSpareIPs)
	}
	dot := strings.LastIndexByte(l.ControllerIP, '.')
	if dot < 0 {
		return "", fmt.Errorf("lab: controller address %q is not IPv4", l.ControllerIP)
	}
	last, err := strconv.Atoi(l.ControllerIP[dot+1:])
	if err != nil || last+i >= 11 {
		return "", fmt.Errorf("lab: controller address %q: no spare address %d below the nodes' .11", l.ControllerIP, i)
	}
	return l.ControllerIP[:dot+1] + strconv.Itoa(last+i), nil
}
