package e2e

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"hastack.dev/hastack/internal/lab"
)

// clientScript is the workload client of issue 5's proofs. It runs inside
// a lab node (the cluster's firewall refuses the controller) and behaves as
// an HSTS client of seed 003: for every request it reads db_host/db_port
// from the node's aspera.conf, asks those Sentinels in order for the
// primary (in the HAProxy design of 002, db_host:db_port is the local
// HAProxy, used as it is), writes SET <prefix>:<n> <n> there and reads it
// back. It prints
// one line per event:
//
//	ack <n> <time> <primary ip>       the write was acknowledged
//	fail <n> <time> <what>: <answer>  the request failed (it is not retried)
//	readfail <n> <time> <ip>: <answer>
//	end <n>
//
// It knows one or two passwords (PW1, PW2: a client with both keystores
// during a rotation) and tries them in that order. It stops by itself when
// the stop file appears, after maxSeconds, or after maxRequests.
// Each request opens new connections (redis-cli), like asnodeadmin does.
const clientScript = `
set -u
stop=$1 prefix=$2 maxus=$(( $3 * 1000000 )) maxn=$4 pset=$5
conf=/opt/aspera/etc/aspera.conf
pws=("$PW1")
[ -n "${PW2:-}" ] && pws+=("$PW2")
now() { local t=${EPOCHREALTIME/./}; echo $(( 10#$t )); }
# cli HOST PORT ARGS...: redis-cli with the first password that opens.
cli() {
	local out pw
	for pw in "${pws[@]}"; do
		out=$(REDISCLI_AUTH=$pw timeout 2 redis-cli --no-auth-warning -h "$1" -p "$2" "${@:3}" 2>&1 </dev/null)
		case $out in *NOAUTH*|*WRONGPASS*|*"AUTH failed"*) continue ;; esac
		break
	done
	out=${out//$'\n'/ }
	printf '%s' "${out:0:120}"
}
start=$(now)
n=0
while [ ! -e "$stop" ] && (( n < maxn )); do
	t=$(now)
	(( t - start > maxus )) && break
	n=$((n + 1))
	c=$(<"$conf")
	hosts="" ports=""
	[[ $c =~ \<db_host\>([^<]*)\< ]] && hosts=${BASH_REMATCH[1]}
	[[ $c =~ \<db_port\>([^<]*)\< ]] && ports=${BASH_REMATCH[1]}
	IFS=, read -ra H <<<"$hosts"
	IFS=, read -ra P <<<"$ports"
	ip="" port="" why="no db_host in aspera.conf"
	# 002's HAProxy design: db_host:db_port is the local HAProxy, which
	# routes to the primary; no Sentinel lookup (db_type is not ha_redis).
	if [[ ! $c =~ \<db_type\>ha_redis\< && -n $hosts ]]; then ip=${H[0]} port=${P[0]}; H=(); fi
	for i in "${!H[@]}"; do
		out=$(cli "${H[i]}" "${P[i]:-${P[0]}}" SENTINEL get-master-addr-by-name "$pset")
		read -r a b _ <<<"$out"
		if [[ $a =~ ^[0-9.]+$ && $b =~ ^[0-9]+$ ]]; then ip=$a port=$b; break; fi
		why="sentinel ${H[i]}: $out"
	done
	if [ -z "$ip" ]; then echo "fail $n $t $why"; continue; fi
	out=$(cli "$ip" "$port" SET "$prefix:$n" "$n")
	if [ "$out" != OK ]; then echo "fail $n $t set on $ip: $out"; continue; fi
	echo "ack $n $(now) $ip"
	out=$(cli "$ip" "$port" GET "$prefix:$n")
	[ "$out" = "$n" ] || echo "readfail $n $(now) $ip: $out"
done
echo "end $n"
`

// workload is a running clientScript.
type workload struct {
	t      *testing.T
	lab    *lab.Lab
	node   string
	prefix string
	stop   string
	pws    []string
	start  time.Time
	done   chan struct{}
	out    []byte
	err    error
}

// Client limits: every operation of the suite ends well within them.
const (
	clientMaxSeconds  = 240
	clientMaxRequests = 50000
)

// startWorkload starts the client on node with the passwords it knows.
// It waits for the first acknowledged write, so the operation that follows
// runs against a client that works.
func startWorkload(t *testing.T, l *lab.Lab, node string, pws ...string) *workload {
	t.Helper()
	w := &workload{t: t, lab: l, node: node, pws: pws, start: time.Now(), done: make(chan struct{}),
		prefix: fmt.Sprintf("life:%d", time.Now().UnixNano()),
		stop:   fmt.Sprintf("/tmp/hastack-life-%d.stop", time.Now().UnixNano())}
	env := []string{"env", "PW1=" + pws[0]}
	if len(pws) > 1 {
		env = append(env, "PW2="+pws[1])
	}
	argv := append(env, "bash", "-c", clientScript, "client", w.stop, w.prefix,
		strconv.Itoa(clientMaxSeconds), strconv.Itoa(clientMaxRequests), "myprimary")
	go func() {
		defer close(w.done)
		ctx, cancel := context.WithTimeout(context.Background(), (clientMaxSeconds+30)*time.Second)
		defer cancel()
		w.out, w.err = l.Exec(ctx, node, argv...)
	}()
	t.Cleanup(func() { w.halt() })
	// The client only reports at the end; a probe of the keys shows it works.
	self, _ := l.Node(node)
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _ := lifeRedisCLI(t.Context(), l, node, pws, "-h", self.IP, "-p", "41415", "SENTINEL", "get-master-addr-by-name", "myprimary")
		if f := strings.Fields(out); len(f) == 2 {
			k, _ := lifeRedisCLI(t.Context(), l, node, pws, "-h", f[0], "-p", f[1], "EXISTS", w.prefix+":1")
			if strings.TrimSpace(k) == "1" {
				return w
			}
		}
		select {
		case <-w.done:
			t.Fatalf("the workload client ended at once: %v\n%s", w.err, w.out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the workload client made no write within 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// halt asks the client to stop and waits for it.
func (w *workload) halt() {
	select {
	case <-w.done:
		return
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := w.lab.Exec(ctx, w.node, "touch", w.stop); err != nil {
		w.t.Logf("stopping the client: %v", err)
	}
	<-w.done
}

// clientReport is what the client saw during one operation.
type clientReport struct {
	Requests, Acked, Failed, ReadFails int
	Lost                               int           // acknowledged writes missing on the primary afterwards
	LongestGap                         time.Duration // longest time between acknowledged writes: the client's time without a primary
	LongestGapEnd                      time.Duration // when, after the first acknowledged write, that gap ended
	MedianGap                          time.Duration // the usual time between acknowledged writes
	Duration                           time.Duration
	Failures                           []string // the first few failed requests
	LostKeys                           []int    // the first few lost writes
}

func (r clientReport) String() string {
	s := fmt.Sprintf("client: %d requests in %.1fs, %d acknowledged, %d failed, %d read-backs wrong, %d acknowledged writes lost; longest time without an acknowledged write %s, ending %.1fs after the first write (usual %s)",
		r.Requests, r.Duration.Seconds(), r.Acked, r.Failed, r.ReadFails, r.Lost,
		r.LongestGap.Round(time.Millisecond), r.LongestGapEnd.Seconds(), r.MedianGap.Round(time.Millisecond))
	for _, f := range r.Failures {
		s += "\n  failed: " + f
	}
	if len(r.LostKeys) > 0 {
		s += fmt.Sprintf("\n  lost writes (first few): %v", r.LostKeys)
	}
	return s
}

// finish stops the client, reads every key back from the primary the
// Sentinels name now (asked from inside node via), and reports.
func (w *workload) finish(via string, pw string) clientReport {
	w.t.Helper()
	w.halt()
	r := clientReport{Duration: time.Since(w.start)}
	if w.err != nil {
		w.t.Fatalf("the workload client failed: %v\n%s", w.err, w.out)
	}
	acked := map[int]bool{}
	var ackTimes []int64
	ended := false
	for _, line := range strings.Split(string(w.out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.Atoi(f[1])
		switch f[0] {
		case "ack":
			r.Acked++
			acked[n] = true
			us, _ := strconv.ParseInt(f[2], 10, 64)
			ackTimes = append(ackTimes, us)
		case "fail":
			r.Failed++
			if len(r.Failures) < 5 {
				r.Failures = append(r.Failures, strings.Join(f[1:], " "))
			}
		case "readfail":
			r.ReadFails++
			if len(r.Failures) < 5 {
				r.Failures = append(r.Failures, "read-back "+strings.Join(f[1:], " "))
			}
		case "end":
			r.Requests, ended = n, true
		}
	}
	if !ended {
		w.t.Fatalf("the workload client did not finish its run:\n%s", w.out)
	}
	if len(ackTimes) == 0 {
		w.t.Fatalf("the workload client had no write acknowledged:\n%s", w.out)
	}
	var gaps []time.Duration
	for i := 1; i < len(ackTimes); i++ {
		g := time.Duration(ackTimes[i]-ackTimes[i-1]) * time.Microsecond
		if g > r.LongestGap {
			r.LongestGap, r.LongestGapEnd = g, time.Duration(ackTimes[i]-ackTimes[0])*time.Microsecond
		}
		gaps = append(gaps, g)
	}
	if len(gaps) > 0 {
		slices.Sort(gaps)
		r.MedianGap = gaps[len(gaps)/2]
	}

	// Read back from the primary the Sentinels name now.
	have := w.keysOnPrimary(via, pw)
	for n := range acked {
		if !have[n] {
			r.Lost++
			r.LostKeys = append(r.LostKeys, n)
		}
	}
	slices.Sort(r.LostKeys)
	if len(r.LostKeys) > 10 {
		r.LostKeys = r.LostKeys[:10]
	}
	return r
}

// keysOnPrimary lists the numbers n of this client's keys on the primary.
func (w *workload) keysOnPrimary(via, pw string) map[int]bool {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, _ := w.lab.Node(via)
	pws := []string{pw}
	out, err := lifeRedisCLI(ctx, w.lab, via, pws, "-h", n.IP, "-p", "41415", "SENTINEL", "get-master-addr-by-name", "myprimary")
	f := strings.Fields(out)
	if err != nil || len(f) != 2 {
		w.t.Fatalf("%s's Sentinel does not name a primary: %v %s", via, err, out)
	}
	out, err = lifeRedisCLI(ctx, w.lab, via, pws, "-h", f[0], "-p", f[1], "--scan", "--pattern", w.prefix+":*")
	if err != nil {
		w.t.Fatalf("reading the keys back from %s: %v", f[0], err)
	}
	have := map[int]bool{}
	for _, k := range strings.Fields(out) {
		if n, err := strconv.Atoi(strings.TrimPrefix(k, w.prefix+":")); err == nil {
			have[n] = true
		}
	}
	return have
}

// labRedis runs redis-cli inside node with the first of pws that the
// server accepts.
func lifeRedisCLI(ctx context.Context, l *lab.Lab, node string, pws []string, args ...string) (string, error) {
	var out []byte
	var err error
	for _, pw := range pws {
		out, err = l.Exec(ctx, node, append([]string{"env", "REDISCLI_AUTH=" + pw, "redis-cli", "--no-auth-warning"}, args...)...)
		if s := string(out); !strings.Contains(s, "NOAUTH") && !strings.Contains(s, "WRONGPASS") && !strings.Contains(s, "AUTH failed") {
			break
		}
	}
	return strings.TrimSpace(string(out)), err
}
