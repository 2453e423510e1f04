package shares

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"hastack.dev/hastack/engine"
	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/modules"
)

// Drills are this stack's drills, by -drill name.
var Drills = []string{"failover"}

// DrillDB is the drill's own database on the tier's MariaDB: created at
// the start (dropped first, if an interrupted drill left it), dropped at
// the end. The application's databases are never written.
const DrillDB = "hastack_drill"

// FailoverFigures are what the failover drill measured, from the moment
// the kill began.
type FailoverFigures struct {
	Old, New  string
	Kill      time.Duration // how long the kill command took
	ACM       time.Duration // the new node named active in ACM's status
	MySQL     time.Duration // the new node's MariaDB took a commit
	Web       time.Duration // the new node answered an HTTPS GET
	Serves    time.Duration // all three
	Committed []int         // rows the client saw committed, before and after
	Before    int           // of which on the old node, before the kill
	Found     []int         // rows in the table after the failover
	Lost      []int         // committed, not found
	InDoubt   []int         // found, but their commit's answer was lost (the kill)
	Passive   bool          // the old node back, passive
	VIP       *VIPFigures   // web requests through the VIP, with load balancers
}

// VIPFigures are the drill's web client's through the VIP: an HTTPS GET
// every 100 ms from a load balancer's connection, from the kill on.
type VIPFigures struct {
	From      string        // the load balancer the client ran on
	Detection time.Duration // the health check's inter × fall
	Sent      int
	Failed    int
	LastFail  time.Duration // when the last failed request began
	Late      int           // failed requests begun after Detection: the drill fails on any
}

// LostRows compares the rows a client saw committed with the rows found
// afterwards: lost are committed and missing (the drill fails on any),
// inDoubt are found but not seen committed (the answer of a commit in
// flight at the kill was lost; the row may rightly exist).
func LostRows(committed, found []int) (lost, inDoubt []int) {
	for _, r := range committed {
		if !slices.Contains(found, r) {
			lost = append(lost, r)
		}
	}
	for _, r := range found {
		if !slices.Contains(committed, r) {
			inDoubt = append(inDoubt, r)
		}
	}
	return lost, inDoubt
}

// Problems are the drill's failures from its figures.
func (f *FailoverFigures) Problems() []string {
	var p []string
	if len(f.Lost) > 0 {
		p = append(p, f.lostProblem())
	}
	if len(f.Committed) == 0 || f.Before == 0 || f.Before == len(f.Committed) {
		p = append(p, fmt.Sprintf("drill failover: the client committed %d rows, %d before the kill: the row check needs rows on both sides", len(f.Committed), f.Before))
	}
	if f.VIP != nil && f.VIP.Late > 0 {
		p = append(p, fmt.Sprintf("drill failover: %d web requests through the VIP failed after the health check's detection window (inter × fall %s), the last begun %s after the kill", f.VIP.Late, secs(f.VIP.Detection), secs(f.VIP.LastFail)))
	}
	if f.VIP != nil && f.VIP.Sent == 0 {
		p = append(p, "drill failover: no web request through the VIP was sent")
	}
	if !f.Passive {
		p = append(p, fmt.Sprintf("drill failover: %s, back, is not passive", f.Old))
	}
	return p
}

func (f *FailoverFigures) lostProblem() string {
	return fmt.Sprintf("drill failover: %d committed rows lost (seq %s)", len(f.Lost), ints(f.Lost))
}

func ints(a []int) string {
	s := make([]string, len(a))
	for i, v := range a {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, " ")
}

func secs(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + " s" }

// Write prints the figures.
func (f *FailoverFigures) Write(b io.Writer, t *Tier) {
	fmt.Fprintf(b, "drill failover: %s killed (ACM and mariadbd SIGKILL, its units stopped) in %s\n", f.Old, secs(f.Kill))
	fmt.Fprintf(b, "drill failover: %s active in ACM's status after %s (ACM: expiry %d s, refresh %d s)\n", f.New, secs(f.ACM), t.ExpiryS, t.RefreshS)
	fmt.Fprintf(b, "drill failover: %s's MariaDB took a commit after %s\n", f.New, secs(f.MySQL))
	fmt.Fprintf(b, "drill failover: %s answered HTTPS after %s\n", f.New, secs(f.Web))
	fmt.Fprintf(b, "drill failover: %s serves after %s\n", f.New, secs(f.Serves))
	fmt.Fprintf(b, "drill failover: rows committed %d (%d on %s before the kill, %d on %s after), found %d, lost %d, in doubt %d\n",
		len(f.Committed), f.Before, f.Old, len(f.Committed)-f.Before, f.New, len(f.Found), len(f.Lost), len(f.InDoubt))
	if v := f.VIP; v != nil {
		last := ""
		if v.Failed > 0 {
			last = ", the last begun " + secs(v.LastFail) + " after the kill"
		}
		fmt.Fprintf(b, "drill failover: web through the VIP from %s: %d requests from the kill, %d failed%s (detection window inter × fall %s)\n", v.From, v.Sent, v.Failed, last, secs(v.Detection))
	}
}

// vipClient sends an HTTPS GET through the VIP every 100 ms, each on a
// new connection (HAProxy balances connections) with a 2 s timeout, and
// keeps when each began and whether it was answered 200.
type vipClient struct {
	mu   sync.Mutex
	reqs []vipRequest
}

type vipRequest struct {
	at time.Time
	ok bool
}

func (v *vipClient) run(ctx context.Context, d host.Dialer, addr, hostname, path string) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for ; ctx.Err() == nil; <-tick.C {
		at := time.Now()
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		c, err := d.DialTCP(rctx, addr)
		if err == nil {
			_, err = HTTPSGet(rctx, c, hostname, path)
			c.Close()
		}
		cancel()
		if ctx.Err() != nil {
			return // stopped mid-request: not the tier's failure
		}
		v.mu.Lock()
		v.reqs = append(v.reqs, vipRequest{at: at, ok: err == nil})
		v.mu.Unlock()
	}
}

// figures sums the requests begun from start on into f.
func (v *vipClient) figures(start time.Time, f *VIPFigures) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, r := range v.reqs {
		if r.at.Before(start) {
			continue
		}
		f.Sent++
		if !r.ok {
			f.Failed++
			f.LastFail = r.at.Sub(start)
			if f.LastFail > f.Detection {
				f.Late++
			}
		}
	}
}

// sqlOn runs statements with the mariadb client on h, as root over the
// server's socket (no password on a command line), batch output.
func sqlOn(ctx context.Context, h host.Host, stmts string) (string, error) {
	res, err := h.Run(ctx, "mariadb -N -B -e "+modules.Quote(stmts), nil)
	if err != nil {
		return "", err
	}
	if res.Code != 0 {
		return "", fmt.Errorf("mariadb: exit %d: %s", res.Code, strings.TrimSpace(string(res.Stderr)))
	}
	return string(res.Stdout), nil
}

// Commit inserts row seq, autocommitted: the client counts it committed
// once the statement returned success. Exported, with CreateTable and
// Rows, for e2e's power cut, a failure hastack cannot make.
func Commit(ctx context.Context, h host.Host, seq int) error {
	_, err := sqlOn(ctx, h, fmt.Sprintf("INSERT INTO %s.commits (seq, server) VALUES (%d, @@hostname)", DrillDB, seq))
	return err
}

// CreateTable (re)creates the drill's table on h and returns
// innodb_flush_log_at_trx_commit.
func CreateTable(ctx context.Context, h host.Host) (string, error) {
	v, err := sqlOn(ctx, h, fmt.Sprintf("DROP DATABASE IF EXISTS %[1]s; CREATE DATABASE %[1]s; CREATE TABLE %[1]s.commits (seq INT PRIMARY KEY, server VARCHAR(255) NOT NULL, at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB; SELECT @@innodb_flush_log_at_trx_commit", DrillDB))
	return strings.TrimSpace(v), err
}

// Rows reads the seq of every row in the drill's table on h.
func Rows(ctx context.Context, h host.Host) ([]int, error) {
	rows, err := sqlOn(ctx, h, "SELECT seq FROM "+DrillDB+".commits ORDER BY seq")
	if err != nil {
		return nil, err
	}
	var found []int
	for _, l := range strings.Fields(rows) {
		n, err := strconv.Atoi(l)
		if err != nil {
			return nil, fmt.Errorf("%q", l)
		}
		found = append(found, n)
	}
	return found, nil
}

// KillCommand kills a node's part of the tier as its death would, with
// what hastack can do as root over SSH: ACM and mariadbd get SIGKILL (no
// handover, no clean shutdown: committed rows survive by InnoDB's redo
// log alone), then every unit of the tier is stopped, so neither systemd
// (mariadb.service's Restart=on-abort) nor anything else brings one back
// while the node plays dead.
func KillCommand() string {
	units := append(append([]string{"acm"}, ActiveOnly...), BothNodes...)
	return "pkill -KILL -x acm; pkill -KILL -x mariadbd; pkill -KILL -x mysqld; systemctl stop " + strings.Join(units, " ")
}

// drillFailover kills ACM's active node, measures how long until the
// passive one is active in ACM's status, takes commits on its MariaDB and
// answers HTTPS, while a client commits rows before and after and checks
// none is lost; then the old node returns (its units started) and must
// stay passive. It needs the tier healthy (Check runs it only then).
func (s *system) drillFailover(ctx context.Context, req engine.CheckRequest, active string) (_ *FailoverFigures, err error) {
	t := s.t
	stopped := false // the old node's units, between the kill and their start
	defer func() {
		if err != nil && stopped {
			err = fmt.Errorf("%v; the old active node's units are left stopped: hastack check shows the tier, hastack apply starts what ACM's active node needs (the next drill drops %s)", err, DrillDB)
		}
	}()
	var oldN, newN = t.App[0], t.App[1]
	if active == newN.Name {
		oldN, newN = newN, oldN
	}
	oldH, newH := req.Hosts[oldN.Name], req.Hosts[newN.Name]
	f := &FailoverFigures{Old: oldN.Name, New: newN.Name}
	out := func(format string, a ...any) {
		fmt.Fprintf(req.Out, "drill failover: "+format+"\n", a...)
	}

	v, err := CreateTable(ctx, oldH)
	if err != nil {
		return nil, fmt.Errorf("creating the drill's table on %s: %v", oldN.Name, err)
	}
	out("table %s.commits on %s (innodb_flush_log_at_trx_commit=%s)", DrillDB, oldN.Name, v)

	// The client: commits on the old node until the kill, then on the new
	// one once it takes them.
	var mu sync.Mutex
	seq := 0
	next := func() int { mu.Lock(); defer mu.Unlock(); seq++; return seq }
	record := func(n int) { mu.Lock(); f.Committed = append(f.Committed, n); mu.Unlock() }
	wctx, stopWriter := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for wctx.Err() == nil {
			n := next()
			if Commit(wctx, oldH, n) == nil {
				record(n)
			} else {
				time.Sleep(50 * time.Millisecond)
			}
		}
	}()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		mu.Lock()
		enough := len(f.Committed) >= 10
		mu.Unlock()
		if enough {
			break
		}
		if time.Now().After(deadline) {
			stopWriter()
			<-done
			return f, fmt.Errorf("the client committed %d rows on %s in 10 s, want 10 before the kill", len(f.Committed), oldN.Name)
		}
	}

	// The web client through the VIP, from a load balancer's connection
	// (the last: the backup, unless the VIP moved).
	hc, _ := t.healthCheck()
	path := hc.Path
	if hc.Kind != "http" || path == "" {
		path = "/"
	}
	var vc *vipClient
	stopVIP := func() {}
	if n := len(t.LoadBalancers); n > 0 {
		from := t.LoadBalancers[n-1].Name
		d, ok := req.Hosts[from].(host.Dialer)
		if !ok {
			stopWriter()
			<-done
			return f, fmt.Errorf("load balancer %s: its connection opens no TCP connection (the web client through the VIP)", from)
		}
		f.VIP = &VIPFigures{From: from, Detection: hc.Detection()}
		vc = &vipClient{}
		vctx, cancel := context.WithCancel(ctx)
		vdone := make(chan struct{})
		go func() {
			defer close(vdone)
			vc.run(vctx, d, net.JoinHostPort(t.VIP, strconv.Itoa(hc.Port)), t.VIP, path)
		}()
		stopVIP = func() { cancel(); <-vdone }
	}
	defer func() { stopVIP() }()

	start := time.Now()
	out("killing %s: %s", oldN.Name, KillCommand())
	res, err := oldH.Run(ctx, KillCommand(), nil)
	f.Kill = time.Since(start)
	stopped = true
	stopWriter()
	<-done
	f.Before = len(f.Committed)
	if err != nil {
		return f, fmt.Errorf("killing %s: %v", oldN.Name, err)
	}
	if res.Code != 0 {
		return f, fmt.Errorf("killing %s: exit %d: %s", oldN.Name, res.Code, strings.TrimSpace(string(res.Stderr)))
	}

	// Wait for the new node: ACM's status, a commit, an HTTPS answer.
	bound := time.Duration(t.ExpiryS+2*t.RefreshS)*time.Second + 90*time.Second // + MariaDB's crash recovery
	for deadline := start.Add(bound); f.Serves == 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			return f, fmt.Errorf("%s did not serve within %s of the kill (ACM %s, MariaDB %s, HTTPS %s; 0 is not yet)", newN.Name, secs(bound), secs(f.ACM), secs(f.MySQL), secs(f.Web))
		}
		if f.ACM == 0 {
			if r, err := newH.Run(ctx, "cat "+modules.Quote(t.StatusFile()), nil); err == nil {
				if st, err := ParseStatus(r.Stdout); err == nil && st.Active == newN.Name {
					f.ACM = time.Since(start)
				}
			}
		}
		if f.MySQL == 0 {
			n := next()
			if Commit(ctx, newH, n) == nil {
				f.MySQL = time.Since(start)
				record(n)
			}
		}
		if f.Web == 0 {
			if d, ok := newH.(host.Dialer); ok {
				wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				if c, err := d.DialTCP(wctx, fmt.Sprintf("%s:%d", newN.IP, hc.Port)); err == nil {
					if _, err := HTTPSGet(wctx, c, newN.IP, path); err == nil {
						f.Web = time.Since(start)
					}
					c.Close()
				}
				cancel()
			}
		}
		if f.ACM > 0 && f.MySQL > 0 && f.Web > 0 {
			f.Serves = max(f.ACM, f.MySQL, f.Web)
		}
	}

	// The web client's figures, once the detection window and one
	// interval more have passed.
	if vc != nil {
		time.Sleep(time.Until(start.Add(f.VIP.Detection + time.Duration(hc.InterMS)*time.Millisecond)))
		stopVIP()
		stopVIP = func() {}
		vc.figures(start, f.VIP)
	}

	// More rows after, then what the table holds.
	for range 10 {
		n := next()
		if err := Commit(ctx, newH, n); err != nil {
			return f, fmt.Errorf("committing row %d on %s after the failover: %v", n, newN.Name, err)
		}
		record(n)
	}
	if f.Found, err = Rows(ctx, newH); err != nil {
		return f, fmt.Errorf("reading the drill's rows on %s: %v", newN.Name, err)
	}
	f.Lost, f.InDoubt = LostRows(f.Committed, f.Found)
	if _, err := sqlOn(ctx, newH, "DROP DATABASE "+DrillDB); err != nil {
		out("dropping %s on %s: %v (drop it by hand)", DrillDB, newN.Name, err)
	}
	f.Write(req.Out, t)

	// The old node returns: its units of both nodes and ACM started as
	// the stack has them; ACM finds the peer active and stays passive.
	units := append(slices.Clone(BothNodes), "acm")
	if res, err := oldH.Run(ctx, "systemctl start "+strings.Join(units, " "), nil); err != nil || res.Code != 0 {
		return f, fmt.Errorf("starting %s on %s again: %v %s", strings.Join(units, " "), oldN.Name, err, res.Stderr)
	}
	stopped = false
	back := time.Now()
	// Passive: the checks pass with the new node active (the old one runs
	// none of the active-only units), a few of ACM's cycles in a row.
	for deadline := back.Add(time.Duration(3*t.RefreshS)*time.Second + 30*time.Second); ; time.Sleep(time.Second) {
		problems, _, act := s.checkOnce(ctx, req)
		if len(problems) == 0 && act == newN.Name && time.Since(back) > time.Duration(2*t.RefreshS)*time.Second {
			f.Passive = true
			out("%s back: passive, %s still active (ACM), checked %s after its start", oldN.Name, newN.Name, secs(time.Since(back)))
			return f, nil
		}
		if time.Now().After(deadline) {
			return f, fmt.Errorf("%s back: not passive with %s active within %s: %s", oldN.Name, newN.Name, secs(time.Since(back)), strings.Join(problems, "; "))
		}
	}
}
