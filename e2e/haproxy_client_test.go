package e2e

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// proxyClientScript writes through the node's HAProxy until the stop file
// appears or $2 seconds pass: per request a new connection (like
// asnodeadmin) that sends SET <prefix>:<n> and INFO server, so the answer
// names the Redis that took the write. One line per request:
//
//	ack <n> <ms> <run_id> | readonly <n> <ms> <run_id> | fail <n> <ms>
const proxyClientScript = `
set -u
stop=$1 maxms=$(( $2 * 1000 )) prefix=$3
now() { local t=${EPOCHREALTIME/./}; echo $(( 10#$t / 1000 )); }
start=$(now) n=0
while [ ! -e "$stop" ] && (( $(now) - start < maxms )); do
	n=$((n + 1))
	out=$(printf 'SET %s:%d %d\nINFO server\n' "$prefix" "$n" "$n" |
		timeout 2 redis-cli --no-auth-warning -h 127.0.0.1 -p ` + haproxyPort + ` 2>&1)
	t=$(( $(now) - start ))
	rid=$(sed -n 's/^run_id:\([0-9a-f]*\).*/\1/p' <<<"$out")
	case ${out%%$'\n'*} in
	OK) echo "ack $n $t $rid" ;;
	*READONLY*) echo "readonly $n $t $rid" ;;
	*) echo "fail $n $t" ;;
	esac
	sleep 0.01
done
`

// proxyClient is a running proxyClientScript.
type proxyClient struct {
	c            *cluster
	node, prefix string
	stop         string
	done         chan struct{}
	out          []byte
	err          error
}

// proxyReport is what the client saw.
type proxyReport struct {
	requests, acked, readonly, failed int
	byNode                            map[string]int // acknowledged writes per node that took them
	longestGap                        time.Duration  // longest time between acknowledged writes
	lost                              []int          // acknowledged writes missing on the primary afterwards
}

func (r proxyReport) String() string {
	return fmt.Sprintf("%d requests: %d acknowledged %v, %d READONLY, %d refused/closed, %d acknowledged writes lost; longest time without an acknowledged write %s",
		r.requests, r.acked, r.byNode, r.readonly, r.failed, len(r.lost), r.longestGap)
}

// startProxyClient starts the client on node (for 120 s at most).
func (c *cluster) startProxyClient(node string) *proxyClient {
	id := time.Now().UnixNano()
	p := &proxyClient{c: c, node: node, done: make(chan struct{}),
		prefix: fmt.Sprintf("hastack:haproxy:%d", id), stop: fmt.Sprintf("/tmp/hastack-haproxy-%d.stop", id)}
	go func() {
		defer close(p.done)
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
		defer cancel()
		p.out, p.err = c.lab.Exec(ctx, node, "env", "REDISCLI_AUTH="+testPassword, "bash", "-c", proxyClientScript, "client", p.stop, "120", p.prefix)
	}()
	c.t.Cleanup(p.halt)
	return p
}

// halt stops the client and waits for it.
func (p *proxyClient) halt() {
	select {
	case <-p.done:
		return
	default:
	}
	if _, err := p.c.exec(p.node, "touch", p.stop); err != nil {
		p.c.t.Logf("stopping the HAProxy client: %v", err)
	}
	<-p.done
}

// finish stops the client and compares its acknowledged writes with the
// keys on primary.
func (p *proxyClient) finish(primary string) proxyReport {
	t := p.c.t
	t.Helper()
	p.halt()
	if p.err != nil {
		t.Fatalf("HAProxy client: %v\n%s", p.err, p.out)
	}
	names := map[string]string{}
	for name, id := range p.c.runIDs() {
		names[id] = name
	}
	r := proxyReport{byNode: map[string]int{}}
	acked := map[int]bool{}
	last := -1
	for _, l := range strings.Split(strings.TrimSpace(string(p.out)), "\n") {
		f := strings.Fields(l)
		if len(f) < 3 {
			continue
		}
		n, _ := strconv.Atoi(f[1])
		ms, _ := strconv.Atoi(f[2])
		r.requests++
		switch f[0] {
		case "ack":
			r.acked++
			acked[n] = true
			if len(f) > 3 {
				r.byNode[names[f[3]]]++
			}
			if last >= 0 {
				r.longestGap = max(r.longestGap, time.Duration(ms-last)*time.Millisecond)
			}
			last = ms
		case "readonly":
			r.readonly++
		default:
			r.failed++
		}
	}
	keys := p.c.redisCLI(primary, "-h", p.c.ip(primary), "-p", "31415", "--scan", "--pattern", p.prefix+":*")
	have := map[int]bool{}
	for _, k := range strings.Fields(keys) {
		n, _ := strconv.Atoi(strings.TrimPrefix(k, p.prefix+":"))
		have[n] = true
	}
	for _, n := range slices.Sorted(maps.Keys(acked)) {
		if !have[n] {
			r.lost = append(r.lost, n)
		}
	}
	return r
}
