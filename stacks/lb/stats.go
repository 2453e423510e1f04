package lb

import (
	"fmt"
	"strings"
)

// StatsSocket is #StatsSocket of lb.cue: HAProxy's stats socket on each
// load balancer.
const StatsSocket = "/run/haproxy/hastack-frontend.sock"

// ShowStatScript is a shell snippet printing HAProxy's `show stat` CSV
// from StatsSocket (with socat, or perl, which every Debian has).
func ShowStatScript() string {
	return fmt.Sprintf(`if command -v socat >/dev/null 2>&1; then
	echo 'show stat' | socat -t 2 stdio unix-connect:%[1]s 2>&1
else
	perl -MIO::Socket::UNIX -e '$s = IO::Socket::UNIX->new(Peer => $ARGV[0]) or die "$ARGV[0]: $!\n"; print $s "show stat\n"; print while <$s>;' %[1]s 2>&1
fi
`, StatsSocket)
}

// BackendStates reads `show stat` CSV: backend's servers and their status
// (UP, DOWN, ...), by server name.
func BackendStates(csv, backend string) map[string]string {
	out := map[string]string{}
	status := -1
	for _, line := range strings.Split(csv, "\n") {
		f := strings.Split(line, ",")
		if strings.HasPrefix(line, "# ") {
			f[0] = strings.TrimPrefix(f[0], "# ")
			for i, h := range f {
				if h == "status" {
					status = i
				}
			}
			continue
		}
		if status < 0 || len(f) <= status || f[0] != backend || f[1] == "FRONTEND" || f[1] == "BACKEND" {
			continue
		}
		out[f[1]] = f[status]
	}
	return out
}
