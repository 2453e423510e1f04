package e2e

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"cuelang.org/go/cue"

	"hastack.dev/hastack/engine/config"
	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/internal/lab"
	"hastack.dev/hastack/stacks/lb"
	"hastack.dev/hastack/stacks/shares"
)

// sharesPowerOff is issue 12's failover with the node itself gone, a
// subtest of TestSharesType1 (its apply, its load balancers): node1, ACM's
// active node, is powered off (Lab.PowerOff: no shutdown, its addresses
// gone) while a client commits rows on the active node's MariaDB and a web
// client sends HTTPS through the VIP every 100 ms. Measured from the cut:
// node1 DOWN in HAProxy's own view (within inter × fall), node2 active in
// ACM's status, taking commits and serving; web requests failing only
// before HAProxy's DOWN; 0 committed rows lost. check and plan with node1
// down say so and fail; node1 booted (Lab.Boot: its enabled units start)
// comes back passive, UP again after rise, and the plan is empty for ACM's
// node2. The drill (check -failover) cannot do this: hastack cannot bring
// back a node it powered off.
func sharesPowerOff(t *testing.T, c *cluster, vip string) {
	l := c.lab
	ctx := t.Context()
	cfg, probs, err := config.Load(c.dir)
	if err != nil || len(probs) > 0 {
		t.Fatalf("loading the config: %v %v", err, probs)
	}
	tier, err := shares.Decode(cfg.Clusters[0])
	if err != nil {
		t.Fatal(err)
	}
	var hc struct {
		Inter int `json:"interMilliseconds"`
		Fall  int `json:"fall"`
		Rise  int `json:"rise"`
	}
	if err := cfg.Clusters[0].Value.LookupPath(cue.ParsePath("loadBalancer.healthCheck")).Decode(&hc); err != nil {
		t.Fatal(err)
	}
	inter := time.Duration(hc.Inter) * time.Millisecond
	detection := inter * time.Duration(hc.Fall)

	out := c.must(0, "check")
	if !regexp.MustCompile(`load balancer node4: .*HAProxy's view: node1, node2 UP`).MatchString(out) {
		t.Fatalf("check does not report HAProxy's view on node4 with both nodes UP:\n%s", out)
	}
	h1, h2 := labHost{l, "node1"}, labHost{l, "node2"}
	if _, err := shares.CreateTable(ctx, h1); err != nil {
		t.Fatal(err)
	}

	// The clients. The committer writes to node1 until the cut, then the
	// main loop below finds node2 taking commits.
	var mu sync.Mutex
	var committed []int
	seq := 0
	next := func() int { mu.Lock(); defer mu.Unlock(); seq++; return seq }
	record := func(n int) { mu.Lock(); committed = append(committed, n); mu.Unlock() }
	cctx, stopCommits := context.WithCancel(ctx)
	commitsDone := make(chan struct{})
	go func() {
		defer close(commitsDone)
		for cctx.Err() == nil {
			n := next()
			if shares.Commit(cctx, h1, n) == nil {
				record(n)
			} else {
				time.Sleep(50 * time.Millisecond)
			}
		}
	}()
	web := &webClient{l: l, vip: vip}
	wctx, stopWeb := context.WithCancel(ctx)
	webDone := make(chan struct{})
	go func() { defer close(webDone); web.run(wctx) }()
	defer func() { stopCommits(); stopWeb(); <-commitsDone; <-webDone }()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		mu.Lock()
		n := len(committed)
		mu.Unlock()
		if n >= 10 && web.count() >= 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("before the cut: %d rows committed, %d web requests, want 10 and 20", n, web.count())
		}
	}

	if err := l.PowerOff("node1"); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	stopCommits()
	<-commitsDone
	before := len(committed)

	// Detection and takeover, from the cut.
	var down, acm, mysql, serves time.Duration
	bound := time.Duration(tier.ExpiryS+2*tier.RefreshS)*time.Second + 90*time.Second // + MariaDB's crash recovery
	for deadline := cut.Add(bound); down == 0 || acm == 0 || mysql == 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("within %s of the cut: HAProxy DOWN %s, ACM %s, MariaDB %s (0: not yet)", bound, down, acm, mysql)
		}
		if down == 0 {
			if b, err := l.Exec(ctx, "node4", "sh", "-c", lb.ShowStatScript()); err == nil && lb.BackendStates(string(b), "https")["node1"] == "DOWN" {
				down = time.Since(cut)
			}
		}
		if acm == 0 {
			if b, err := l.Exec(ctx, "node2", "cat", tier.StatusFile()); err == nil {
				if st, err := shares.ParseStatus(b); err == nil && st.Active == "node2" {
					acm = time.Since(cut)
				}
			}
		}
		if acm > 0 && mysql == 0 {
			n := next()
			if shares.Commit(ctx, h2, n) == nil {
				mysql = time.Since(cut)
				record(n)
			}
		}
	}
	// The web client's requests after HAProxy's DOWN all reach node2.
	time.Sleep(2 * time.Second)
	stopWeb()
	<-webDone
	serves = max(acm, mysql)
	sent, failed, lastFail, slowest, afterDown := web.figures(cut, cut.Add(down))
	t.Logf("node1 powered off: DOWN in node4's HAProxy after %.1f s (inter %s × fall %d = %s); node2 active in ACM's status after %.1f s (expiry %d s, refresh %d s), its MariaDB took a commit after %.1f s; serves after %.1f s",
		down.Seconds(), inter, hc.Fall, detection, acm.Seconds(), tier.ExpiryS, tier.RefreshS, mysql.Seconds(), serves.Seconds())
	t.Logf("web through the VIP every 100 ms: %d requests from the cut, %d failed (the last %.1f s after the cut), slowest %.1f s; after DOWN %v",
		sent, failed, lastFail.Seconds(), slowest.Seconds(), afterDown)
	if down > detection+inter {
		t.Errorf("HAProxy took node1 out after %.1f s, want within inter × fall (%s, with one inter for the poll)", down.Seconds(), detection)
	}
	if afterDown["node1"] > 0 || afterDown["failed"] > 0 || afterDown["node2"] == 0 {
		t.Errorf("web requests through the VIP after node1 was DOWN: %v, want node2 only", afterDown)
	}
	if bound := time.Duration(tier.ExpiryS+2*tier.RefreshS)*time.Second + 30*time.Second; serves > bound {
		t.Errorf("node2 served %.1f s after the cut, want within ACM's expiry + a cycle + MariaDB's start (%s)", serves.Seconds(), bound)
	}

	for range 10 {
		n := next()
		if err := shares.Commit(ctx, h2, n); err != nil {
			t.Fatalf("row %d on node2: %v", n, err)
		}
		record(n)
	}
	found, err := shares.Rows(ctx, h2)
	if err != nil {
		t.Fatal(err)
	}
	lost, inDoubt := shares.LostRows(committed, found)
	t.Logf("rows committed %d (%d on node1 before the cut, %d on node2 after), found %d, lost %d, in doubt %d",
		len(committed), before, len(committed)-before, len(found), len(lost), len(inDoubt))
	if len(lost) > 0 || before < 10 || len(inDoubt) > 1 {
		t.Errorf("rows lost %v, in doubt %v (%d committed before the cut)", lost, inDoubt, before)
	}

	// node1 down: check reports the tier without it (a PartialChecker):
	// node1 not reached, DOWN in both HAProxies' view, node2 active; the
	// plan cannot read node1 and says so, changing nothing.
	code, out := runHastack(t, l.Dir, c.dir, map[string]string{"HASTACK_REDIS_PASSWORD": testPassword}, "check")
	for _, want := range []string{
		"FAIL node1: not reached: connect to " + l.Nodes[0].IP + ":22",
		"FAIL load balancer node4: HAProxy's view: node1 DOWN not UP in backend https",
		"FAIL load balancer node5: HAProxy's view: node1 DOWN not UP in backend https",
		"active node (ACM): node2",
		"node2 runs: nginx asperahttpd asperanoded mariadb cron stats-collector shares-background",
	} {
		if code != 1 || !strings.Contains(out, want) {
			t.Errorf("check with node1 powered off exited %d, want 1 and %q", code, want)
		}
	}
	if strings.Contains(out, "node1: nginx") {
		t.Error("check reports node1's units, not reached")
	}
	code, out = runHastack(t, l.Dir, c.dir, map[string]string{"HASTACK_REDIS_PASSWORD": testPassword}, "plan", "-detailed-exitcode")
	t.Logf("plan with node1 powered off: exit %d\n%s", code, out)
	if code != 1 || !strings.Contains(out, "node1") {
		t.Errorf("plan with node1 powered off exited %d, want 1 naming node1", code)
	}

	// node1 back: passive, UP again after rise, the plan empty.
	if err := l.Boot(ctx, "node1"); err != nil {
		t.Fatal(err)
	}
	booted := time.Now()
	var up time.Duration
	for deadline := booted.Add(time.Minute); up == 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("node1 not UP in node4's HAProxy within a minute of its boot")
		}
		if b, err := l.Exec(ctx, "node4", "sh", "-c", lb.ShowStatScript()); err == nil && lb.BackendStates(string(b), "https")["node1"] == "UP" {
			up = time.Since(booted)
		}
	}
	t.Logf("node1 booted: UP in node4's HAProxy after %.1f s (rise %d × inter %s, after its nginx starts)", up.Seconds(), hc.Rise, inter)
	out = c.must(0, "check", "-wait", "1m")
	if !strings.Contains(out, "active node (ACM): node2") {
		t.Errorf("check after node1's boot does not name node2 active:\n%s", out)
	}
	if got, want := sharesRunning(t, l, "node1"), slices.Sorted(slices.Values(sharesBoth)); !slices.Equal(got, want) {
		t.Errorf("node1 back runs %v, want %v (passive)", got, want)
	}
	if out := c.must(0, "plan", "-detailed-exitcode"); !strings.Contains(out, "active node2 (named by ACM)") {
		t.Error("the plan after node1's boot is not for ACM's node2")
	}
	if b, err := l.Exec(ctx, "node2", "mariadb", "-e", "DROP DATABASE "+shares.DrillDB); err != nil {
		t.Errorf("dropping the test's database: %v %s", err, b)
	}
}

// labHost runs commands on a lab node through Lab.Exec (not SSH), for
// the stack's exported drill steps. Output is combined, as Exec gives it.
type labHost struct {
	l    *lab.Lab
	node string
}

func (h labHost) Name() string { return h.node }
func (h labHost) Close() error { return nil }
func (h labHost) WriteFile(context.Context, host.File) error {
	return errors.New("labHost writes no files")
}
func (h labHost) Run(ctx context.Context, cmd string, _ io.Reader) (host.Result, error) {
	out, err := h.l.Exec(ctx, h.node, "sh", "-c", cmd)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return host.Result{Stderr: out, Code: ee.ExitCode()}, nil
	}
	return host.Result{Stdout: out}, err
}

// webClient sends HTTPS GETs through the VIP every 100 ms, each on a new
// connection with a 2 s timeout, and keeps what each did.
type webClient struct {
	l   *lab.Lab
	vip string

	mu   sync.Mutex
	reqs []webRequest
}

type webRequest struct {
	at   time.Time
	took time.Duration
	node string // "" when it failed
}

func (w *webClient) run(ctx context.Context) {
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext:       w.l.DialContext,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, // each node's certificate is self-signed
		DisableKeepAlives: true,
	}}
	for tick := time.NewTicker(100 * time.Millisecond); ctx.Err() == nil; <-tick.C {
		at := time.Now()
		node := ""
		req, _ := http.NewRequestWithContext(ctx, "GET", "https://"+net.JoinHostPort(w.vip, "443")+"/", nil)
		if resp, err := hc.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				node = resp.Header.Get("X-Node")
			}
		}
		if ctx.Err() != nil {
			return // stopped mid-request: not the system's failure
		}
		w.mu.Lock()
		w.reqs = append(w.reqs, webRequest{at: at, took: time.Since(at), node: node})
		w.mu.Unlock()
	}
}

func (w *webClient) count() int { w.mu.Lock(); defer w.mu.Unlock(); return len(w.reqs) }

// figures sums the requests not done before cut: how many, how many failed,
// when the last failure began, the slowest; and, of those sent after
// down, how many reached each node or failed.
func (w *webClient) figures(cut, down time.Time) (sent, failed int, lastFail, slowest time.Duration, afterDown map[string]int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	afterDown = map[string]int{}
	for _, r := range w.reqs {
		if r.at.Add(r.took).Before(cut) {
			continue // done before the cut; one in flight then counts
		}
		sent++
		slowest = max(slowest, r.took)
		if r.node == "" {
			failed++
			lastFail = r.at.Sub(cut)
		}
		if r.at.After(down) {
			afterDown[cmp.Or(r.node, "failed")]++
		}
	}
	return sent, failed, lastFail, slowest, afterDown
}
