package massstore

// The drills of `hastack check -drill NAME` (docs/massstore.md): "kill"
// kills each process instance of each server in turn, "server" cuts each
// server off in turn. Both run on the drill's own jobs, enqueued for it
// and removed at the end, and count them from the queue tables.

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"hastack.dev/hastack/engine"
	"hastack.dev/hastack/internal/host"
	"hastack.dev/hastack/modules"
)

// Drills names the stack's drills, in the order they run when both are asked.
var Drills = []string{"kill", "server", "vip"}

// The supervision cycle: the units' RestartSec (files.cue). An instance must
// be back within two cycles, plus a second for the supervisor's own poll.
const (
	restartSec = 2 * time.Second
	backLimit  = 2*restartSec + time.Second
)

// mariadbIn reads its SQL from stdin: long statements stay off the command line.
const mariadbIn = "mariadb --defaults-file=/etc/massstore/galera.cnf -N -B"

// printer writes the drill's results as they come, in check's layout, and
// counts them for the last line.
type printer struct {
	w      io.Writer
	width  int
	n      int
	failed []string
}

func (p *printer) add(r Result) {
	p.n++
	st, node := "ok  ", r.Node
	if !r.OK {
		st = "FAIL"
		p.failed = append(p.failed, strings.TrimPrefix(r.Node+": "+r.Check, ": "))
	}
	if node == "" {
		node = "-"
	}
	fmt.Fprintf(p.w, "%s  %-*s  %s: %s\n", st, p.width, node, r.Check, r.Detail)
}

func (p *printer) end() bool {
	if len(p.failed) == 0 {
		fmt.Fprintf(p.w, "All %d checks passed.\n", p.n)
		return true
	}
	fmt.Fprintf(p.w, "%d of %d checks FAILED: %s\n", len(p.failed), p.n, strings.Join(p.failed, ", "))
	return false
}

// drills runs req.Drills after the read-only check has passed: a drill on a
// system already degraded would measure nothing true. An unknown name is a
// failed check and runs nothing (a typo must not start the other drills).
func (s *Stack) drills(ctx context.Context, req engine.CheckRequest) bool {
	p := &printer{w: req.Out, width: 4}
	for _, n := range append(append([]string{}, s.Servers...), s.Witness) {
		p.width = max(p.width, len(n))
	}
	var unknown []string
	for _, d := range req.Drills {
		if !slices.Contains(Drills, d) {
			unknown = append(unknown, d)
		}
	}
	if len(unknown) > 0 {
		for _, d := range unknown {
			p.add(Result{"", "drill " + d, false, "the MassStore stack has no such drill (it has: " + strings.Join(Drills, ", ") + ")"})
		}
		return p.end()
	}
	deadline := time.Now().Add(req.Wait)
	for {
		rs := s.checkOnce(ctx, req.Hosts)
		if allOK(rs) {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			write(req.Out, rs)
			fmt.Fprintln(req.Out, "The drills did not run: they need every check passing first.")
			return false
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	d := &drill{s: s, hosts: req.Hosts, out: p, query: hostSQL(req.Hosts)}
	for i, name := range req.Drills {
		// The next drill only after the ones before passed and the system is
		// healthy again (a database back from a kill may still be syncing).
		if i > 0 {
			if len(p.failed) > 0 {
				p.add(Result{"", "drill " + name, false, "not run: a drill before it failed"})
				continue
			}
			if _, ok := poll(ctx, 2*time.Minute, func() bool { return allOK(s.checkOnce(ctx, req.Hosts)) }); !ok {
				p.add(Result{"", "drill " + name, false, "not run: the checks do not pass 2 min after the drill before"})
				continue
			}
		}
		switch name {
		case "kill":
			d.kill(ctx)
		case "server":
			d.server(ctx)
		case "vip":
			d.vip(ctx)
		}
	}
	return p.end()
}

type drill struct {
	s     *Stack
	hosts map[string]host.Host
	out   *printer
	query SQL
}

// SQL runs q on node's database as root (mariadb -N -B) and returns its
// output, or an error with the client's message.
type SQL func(ctx context.Context, node, q string) (string, error)

// hostSQL is SQL over hastack's connections.
func hostSQL(hosts map[string]host.Host) SQL {
	return func(ctx context.Context, node, q string) (string, error) {
		h, ok := hosts[node]
		if !ok {
			return "", fmt.Errorf("%s: not connected", node)
		}
		res, err := h.Run(ctx, mariadbIn+" 2>&1", strings.NewReader(q))
		out := strings.TrimSpace(string(res.Stdout))
		if err == nil && res.Code != 0 {
			err = fmt.Errorf("%s", errLine(out))
		}
		return out, err
	}
}

func (d *drill) sql(ctx context.Context, node, q string) (string, error) {
	return d.query(ctx, node, q)
}

// errLine is the client's error line of out (the client prints the failed
// statement around it when it reads stdin), else its first line.
func errLine(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "ERROR") {
			return l
		}
	}
	return firstLine(out)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

func (d *drill) run(ctx context.Context, node, cmd string) (string, error) {
	h, ok := d.hosts[node]
	if !ok {
		return "", fmt.Errorf("%s: not connected", node)
	}
	res, err := h.Run(ctx, cmd, nil)
	out := strings.TrimSpace(string(res.Stdout) + string(res.Stderr))
	if err == nil && res.Code != 0 {
		err = fmt.Errorf("%s: exit %d: %s", cmd, res.Code, firstLine(out))
	}
	return out, err
}

// mainPID is the unit's main process, 0 when it has none, and whether
// systemd has it active.
func (d *drill) mainPID(ctx context.Context, node, unit string) (int, bool) {
	out, err := d.run(ctx, node, "systemctl show -p MainPID -p ActiveState "+modules.Quote(unit))
	if err != nil {
		return 0, false
	}
	pid, active := 0, false
	for _, l := range strings.Split(out, "\n") {
		k, v, _ := strings.Cut(l, "=")
		switch k {
		case "MainPID":
			pid, _ = strconv.Atoi(v)
		case "ActiveState":
			active = v == "active"
		}
	}
	return pid, active
}

// galera is node's "size status state", e.g. "3 Primary Synced".
func (d *drill) galera(ctx context.Context, node string) string {
	out, err := d.sql(ctx, node, "SELECT CONCAT_WS(' ', (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'WSREP_CLUSTER_SIZE'), (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'WSREP_CLUSTER_STATUS'), (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'WSREP_LOCAL_STATE_COMMENT'))")
	if err != nil {
		return "(no answer: " + errLine(out) + ")"
	}
	return out
}

func (d *drill) voters() int {
	if d.s.Witness != "" {
		return len(d.s.Servers) + 1
	}
	return len(d.s.Servers)
}

// poll calls ok every 100 ms until it is true or limit has passed, and
// returns how long it took.
func poll(ctx context.Context, limit time.Duration, ok func() bool) (time.Duration, bool) {
	start := time.Now()
	for {
		if ok() {
			return time.Since(start), true
		}
		if time.Since(start) > limit || ctx.Err() != nil {
			return time.Since(start), false
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Batch is the drill's own jobs: each id and the stage it was put in at.
type Batch map[int64]string

// enqueue adds n jobs at stage through node's database, in one transaction,
// and records their ids.
func (d *drill) enqueue(ctx context.Context, node string, b Batch, stage string, n int) error {
	var q strings.Builder
	q.WriteString("START TRANSACTION;\n")
	for range n {
		fmt.Fprintf(&q, "INSERT INTO massstore.jobs (stage) VALUES ('%s'); SELECT LAST_INSERT_ID();\n", stage)
	}
	q.WriteString("COMMIT;\n")
	out, err := d.sql(ctx, node, q.String())
	if err != nil {
		return fmt.Errorf("enqueueing %d jobs on %s: %v", n, node, err)
	}
	for _, f := range strings.Fields(out) {
		id, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return fmt.Errorf("enqueueing on %s: %q is no job id", node, f)
		}
		b[id] = stage
	}
	return nil
}

func (b Batch) in() string {
	ids := make([]string, 0, len(b))
	for id := range b {
		ids = append(ids, strconv.FormatInt(id, 10))
	}
	sort.Strings(ids)
	return "(" + strings.Join(ids, ",") + ")"
}

// Row is one row read back for the tally: a job's stage, or a run's job
// and stage.
type Row struct {
	Job   int64
	Stage string
}

// Tally is what became of a batch: jobs not done (gone from the queue,
// or still waiting), and (job, stage) steps run other than once.
type Tally struct {
	Jobs     int
	NotDone  []string
	Twice    []string
	Missing  []string // a step of a done job with no run: done without being worked
	Unwanted []string // a run of a stage the job never was in
}

func (t Tally) OK() bool {
	return len(t.NotDone)+len(t.Twice)+len(t.Missing)+len(t.Unwanted) == 0
}

func (t Tally) String() string {
	s := fmt.Sprintf("%d drill jobs: %d lost or not done, %d done twice", t.Jobs, len(t.NotDone), len(t.Twice))
	for _, l := range []struct {
		what string
		xs   []string
	}{{"not done", t.NotDone}, {"done twice", t.Twice}, {"a step without a run", t.Missing}, {"a run of a stage not its own", t.Unwanted}} {
		if len(l.xs) > 0 {
			s += fmt.Sprintf("; %s: %s", l.what, strings.Join(first(l.xs, 5), ", "))
		}
	}
	return s
}

func first(xs []string, n int) []string {
	if len(xs) > n {
		return append(xs[:n:n], fmt.Sprintf("… (%d)", len(xs)))
	}
	return xs
}

// stagesFrom: the steps a job put in at stage takes to be done.
func stagesFrom(stage string) []string {
	switch stage {
	case "move":
		return []string{"move", "transcode"}
	case "transcode":
		return []string{"transcode"}
	}
	return nil
}

// Count tallies b from its jobs' rows and its runs' rows: every job done,
// each of its steps run exactly once, no other run.
func (b Batch) Count(jobs, runs []Row) Tally {
	t := Tally{Jobs: len(b)}
	stage := map[int64]string{}
	for _, j := range jobs {
		stage[j.Job] = j.Stage
	}
	ran := map[Row]int{}
	for _, r := range runs {
		ran[r]++
	}
	ids := make([]int64, 0, len(b))
	for id := range b {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		st, ok := stage[id]
		switch {
		case !ok:
			t.NotDone = append(t.NotDone, fmt.Sprintf("job %d gone", id))
		case st != "done":
			t.NotDone = append(t.NotDone, fmt.Sprintf("job %d at %s", id, st))
		}
		want := stagesFrom(b[id])
		for _, s := range want {
			switch n := ran[Row{id, s}]; {
			case n > 1:
				t.Twice = append(t.Twice, fmt.Sprintf("job %d %s ×%d", id, s, n))
			case n == 0 && st == "done":
				t.Missing = append(t.Missing, fmt.Sprintf("job %d %s", id, s))
			}
		}
	}
	rs := make([]Row, 0, len(ran))
	for r := range ran {
		rs = append(rs, r)
	}
	slices.SortFunc(rs, func(a, b Row) int { return int(a.Job - b.Job) })
	for _, r := range rs {
		if from, ok := b[r.Job]; ok && !slices.Contains(stagesFrom(from), r.Stage) {
			t.Unwanted = append(t.Unwanted, fmt.Sprintf("job %d %s", r.Job, r.Stage))
		}
	}
	return t
}

// finish waits until b is done (or limit), tallies it from node's
// database, and removes its jobs and runs: the drill leaves the queue as
// it found it.
func (d *drill) finish(ctx context.Context, node, what string, b Batch, limit time.Duration) {
	if len(b) == 0 {
		return
	}
	t, took, err := d.tally(ctx, node, b, limit)
	if err != nil {
		d.out.add(Result{node, what + " jobs", false, "reading the queue: " + err.Error()})
	} else {
		d.out.add(Result{"", what + " jobs", t.OK(), fmt.Sprintf("%s (all done %.1fs after the drill)", t, took.Seconds())})
	}
	if err := d.remove(ctx, node, b); err != nil {
		d.out.add(Result{node, what + " cleanup", false, "removing the drill's jobs: " + err.Error()})
	}
}

// tally waits until b is done (or limit) and counts it from node's
// database; took is how long the wait was.
func (d *drill) tally(ctx context.Context, node string, b Batch, limit time.Duration) (Tally, time.Duration, error) {
	took, _ := poll(ctx, limit, func() bool {
		out, err := d.sql(ctx, node, "SELECT COUNT(*) FROM massstore.jobs WHERE stage <> 'done' AND id IN "+b.in())
		return err == nil && out == "0"
	})
	readRows := func(q string) ([]Row, error) {
		out, err := d.sql(ctx, node, q)
		if err != nil {
			return nil, err
		}
		var rows []Row
		for _, l := range strings.Split(out, "\n") {
			f := strings.Fields(l)
			if len(f) != 2 {
				continue
			}
			id, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("reading the queue: %q", l)
			}
			rows = append(rows, Row{id, f[1]})
		}
		return rows, nil
	}
	jobs, err := readRows("SELECT id, stage FROM massstore.jobs WHERE id IN " + b.in())
	if err != nil {
		return Tally{}, took, err
	}
	runs, err := readRows("SELECT job, stage FROM massstore.runs WHERE job IN " + b.in())
	if err != nil {
		return Tally{}, took, err
	}
	return b.Count(jobs, runs), took, nil
}

// remove deletes b's jobs and runs. Jobs first: a worker still holding one
// finishes its run before the job's row goes, and the runs go after it.
func (d *drill) remove(ctx context.Context, node string, b Batch) error {
	if len(b) == 0 {
		return nil
	}
	_, err := d.sql(ctx, node, "DELETE FROM massstore.jobs WHERE id IN "+b.in()+"; DO SLEEP(1); DELETE FROM massstore.runs WHERE job IN "+b.in())
	return err
}

// workers lists the worker instance names on server (on == true) or off it.
func (s *Stack) workers(server string, on bool) []string {
	var ws []string
	for _, kind := range []string{"datamover", "transcode"} {
		for i, at := range s.Processes[kind].Placement {
			if (at == server) == on {
				ws = append(ws, at+"-"+kind+"-"+strconv.Itoa(i+1))
			}
		}
	}
	return ws
}

func sqlList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = "'" + strings.ReplaceAll(x, "'", "''") + "'"
	}
	return "(" + strings.Join(q, ",") + ")"
}

func (d *drill) maxRun(ctx context.Context, node string) (int64, error) {
	out, err := d.sql(ctx, node, "SELECT IFNULL(MAX(id), 0) FROM massstore.runs")
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(out, 10, 64)
}

// runsAfter counts the runs after id by the given workers.
func (d *drill) runsAfter(ctx context.Context, node string, id int64, workers []string) int {
	if len(workers) == 0 {
		return 0
	}
	out, err := d.sql(ctx, node, fmt.Sprintf("SELECT COUNT(*) FROM massstore.runs WHERE id > %d AND worker IN %s", id, sqlList(workers)))
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(out)
	return n
}

// kill is the kill drill: on each server in turn, each of its process
// units' main process is killed (SIGKILL) while the drill's jobs flow; the
// survivors must take a job again, and the instance must be back (a new
// main process, by itself, within two supervision cycles) and working
// (a worker is given jobs of its stage once it is back, and must take one).
func (d *drill) kill(ctx context.Context) {
	b := Batch{}
	var via string
	for _, srv := range d.s.Servers {
		other := ""
		for _, o := range d.s.Servers {
			if o != srv {
				other = o
				break
			}
		}
		via = other
		survivors := d.s.workers(srv, false)
		for _, unit := range d.s.Units(srv) {
			r := d.killOne(ctx, b, srv, other, unit, survivors)
			d.out.add(r)
			if ctx.Err() != nil {
				return
			}
		}
	}
	d.finish(ctx, via, "kill", b, 3*time.Minute)
}

func (d *drill) killOne(ctx context.Context, b Batch, srv, other, unit string, survivors []string) Result {
	check := "kill " + unit
	fail := func(f string, a ...any) Result { return Result{srv, check, false, fmt.Sprintf(f, a...)} }
	// Enough for the survivors to take some during the kill, at 8 jobs/s.
	if err := d.enqueue(ctx, other, b, "move", 24); err != nil {
		return fail("%v", err)
	}
	old, active := d.mainPID(ctx, srv, unit)
	if old == 0 || !active {
		return fail("no main process to kill (active: %v)", active)
	}
	last, err := d.maxRun(ctx, other)
	if err != nil {
		return fail("reading the runs on %s: %v", other, err)
	}
	if _, err := d.run(ctx, srv, "kill -KILL "+strconv.Itoa(old)); err != nil {
		return fail("%v", err)
	}
	killed := time.Now()
	var carried, back time.Duration
	var backRun int64
	for carried == 0 || back == 0 {
		if time.Since(killed) > time.Minute || ctx.Err() != nil {
			return fail("after 60 s: the survivors took a job: %v; back (new main process): %v", carried > 0, back > 0)
		}
		if carried == 0 && (len(survivors) == 0 || d.runsAfter(ctx, other, last, survivors) > 0) {
			carried = time.Since(killed)
		}
		if back == 0 {
			if pid, active := d.mainPID(ctx, srv, unit); pid != 0 && pid != old && active {
				back = time.Since(killed)
				// A worker's client may commit the job it had after the kill:
				// only runs after this one show the new process working.
				backRun, _ = d.maxRun(ctx, other)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	var what string
	var ok bool
	var again time.Duration
	switch {
	case unit == "massstore-galera":
		want := strconv.Itoa(d.voters()) + " Primary Synced"
		what = "Synced in a cluster of " + strconv.Itoa(d.voters())
		_, ok = poll(ctx, 3*time.Minute, func() bool { return d.galera(ctx, srv) == want })
	case unit == "massstore-app":
		what = "GET /health 200"
		_, ok = poll(ctx, 30*time.Second, func() bool {
			out, _ := d.run(ctx, srv, fmt.Sprintf("curl -s -o /dev/null -w '%%{http_code}' -m 2 http://127.0.0.1:%d/health", d.s.AppPort))
			return out == "200"
		})
	default:
		name := srv + "-" + strings.TrimPrefix(unit, "massstore-")
		what = "its next job"
		// Jobs at its stage now: the others may have emptied it meanwhile
		// (the datamovers move 24 jobs in about a second). Four per
		// instance of its kind, so that its own slot has some.
		kind, _, _ := strings.Cut(strings.TrimPrefix(unit, "massstore-"), "-")
		stage := map[string]string{"datamover": "move", "transcode": "transcode"}[kind]
		if err := d.enqueue(ctx, other, b, stage, 4*len(d.s.Processes[kind].Placement)); err != nil {
			return fail("%v", err)
		}
		_, ok = poll(ctx, 30*time.Second, func() bool { return d.runsAfter(ctx, other, backRun, []string{name}) > 0 })
	}
	again = time.Since(killed)
	detail := fmt.Sprintf("the survivors took a job after %.1fs; back (new main process) after %.1fs; working again (%s) after %.1fs", carried.Seconds(), back.Seconds(), what, again.Seconds())
	switch {
	case !ok:
		return fail("%s: not working again (%s) after %.0fs", detail, what, again.Seconds())
	case back > backLimit:
		return fail("%s: back later than two supervision cycles (%s)", detail, backLimit)
	}
	return Result{srv, check, true, detail}
}

// weight is the quorum weight of the given voters: the stack gives the
// first server pc.weight=2 when the split-brain risk is accepted without a
// witness (files.cue), every other voter 1.
func (s *Stack) weight(voters []string) int {
	w := 0
	for _, v := range voters {
		if v == "" {
			continue
		}
		if v == s.Servers[0] && s.Witness == "" && s.AcceptSBR {
			w += 2
		} else {
			w++
		}
	}
	return w
}

// measureWindow is how long the survivors' throughput is measured.
const measureWindow = 10 * time.Second

// server is the server drill: each server in turn is cut off from every
// other node (iptables DROP of their addresses on it), then healed. The
// survivors must stay Primary when they hold a majority (with the witness)
// and carry each process's declared N-1 throughput; the cut server must
// refuse the queue; healed, it must rejoin by itself.
func (d *drill) server(ctx context.Context) {
	for _, srv := range d.s.Servers {
		d.serverOne(ctx, srv)
		if ctx.Err() != nil {
			return
		}
	}
}

func (d *drill) serverOne(ctx context.Context, srv string) {
	var peers, rest []string // the other nodes' addresses; the voters left
	for _, n := range append(append([]string{}, d.s.Servers...), d.s.Witness) {
		if n == "" || n == srv {
			continue
		}
		peers = append(peers, d.s.IPs[n])
		rest = append(rest, n)
	}
	var survivors []string
	for _, n := range d.s.Servers {
		if n != srv {
			survivors = append(survivors, n)
		}
	}
	via := survivors[0]
	check := "server " + srv + " cut off"
	cut := func(op string) error {
		for _, ip := range peers {
			if _, err := d.run(ctx, srv, "iptables -w -"+op+" INPUT -s "+modules.Quote(ip)+" -j DROP"); err != nil {
				return err
			}
		}
		return nil
	}
	// Heal in any case, even when the drill's context has ended.
	healed := false
	heal := func() error {
		if healed {
			return nil
		}
		healed = true
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		var first error
		for _, ip := range peers {
			if _, err := d.run(hctx, srv, "iptables -w -D INPUT -s "+modules.Quote(ip)+" -j DROP"); err != nil && first == nil {
				first = err
			}
		}
		return first
	}
	defer heal()
	if err := cut("I"); err != nil {
		d.out.add(Result{srv, check, false, "cutting it off: " + err.Error()})
		return
	}
	start := time.Now()
	total := d.s.weight(append(append([]string{}, d.s.Servers...), d.s.Witness))
	left := d.s.weight(rest)
	majority := 2*left > total
	want := strconv.Itoa(d.voters()-1) + " Primary Synced"
	var detected time.Duration
	var ok bool
	if majority {
		detected, ok = poll(ctx, time.Minute, func() bool {
			for _, n := range survivors {
				if d.galera(ctx, n) != want {
					return false
				}
			}
			return true
		})
	}
	var cutState string
	_, refused := poll(ctx, time.Minute, func() bool {
		out, err := d.sql(ctx, srv, "SELECT COUNT(*) FROM massstore.jobs")
		cutState = errLine(out)
		return err != nil
	})
	witness := "without a witness"
	if d.s.Witness != "" {
		witness = "with the witness " + d.s.Witness
	}
	var detail string
	if majority {
		detail = fmt.Sprintf("%s (%s) Primary in a cluster of %d after %.1fs (now: %s)", strings.Join(survivors, ", "), witness, d.voters()-1, detected.Seconds(), d.galera(ctx, via))
	} else {
		// The survivors hold no majority (acceptSplitBrainRisk without a
		// witness, the deciding server cut off): they must stop writes.
		state := d.galera(ctx, via)
		ok = !strings.Contains(state, " Primary ")
		detail = fmt.Sprintf("%s hold no majority (%s, weight %d of %d): %s, as accepted (acceptSplitBrainRisk)", strings.Join(survivors, ", "), witness, left, total, state)
	}
	if refused {
		detail += fmt.Sprintf("; %s refuses the queue (%s)", srv, cutState)
	} else {
		detail += fmt.Sprintf("; %s still answers the queue: %s", srv, cutState)
	}
	d.out.add(Result{srv, check, ok && refused, detail})

	b := Batch{}
	if majority && ok {
		d.throughput(ctx, srv, via, b)
	}
	if err := heal(); err != nil {
		d.out.add(Result{srv, "server " + srv + " healed", false, "removing the cut: " + err.Error()})
		return
	}
	full := strconv.Itoa(d.voters()) + " Primary Synced"
	took, back := poll(ctx, 3*time.Minute, func() bool { return d.galera(ctx, srv) == full })
	d.out.add(Result{srv, "server " + srv + " healed", back, fmt.Sprintf("Synced in a cluster of %d again %.1fs after the cut was removed (%.1fs after the cut): %s", d.voters(), took.Seconds(), time.Since(start).Seconds(), d.galera(ctx, srv))})
	d.finish(ctx, via, "server "+srv, b, 3*time.Minute)
}

// Measure is one process's throughput measured on the survivors of a
// server gone: Rate ± Err jobs/s by Instances, against the declared Need.
type Measure struct {
	Process   string
	Rate, Err float64
	Need      float64
	Instances []string
	Per       string // each instance's rate
	Window    time.Duration
}

// Met is the drills' rule: the declared figure within three standard
// errors below the rate. An instance carrying exactly its capacity
// measures above or below it by its jitter alone.
func (m Measure) Met() bool { return m.Rate+3*m.Err >= m.Need }

func (m Measure) String() string {
	return fmt.Sprintf("%.3f ± %.3f jobs/s by %d instance(s) (%s) over %s; declared N-1 throughput %g jobs/s", m.Rate, m.Err, len(m.Instances), m.Per, m.Window, m.Need)
}

// throughput prints the survivors' measures with srv gone, as checks.
func (d *drill) throughput(ctx context.Context, srv, via string, b Batch) {
	ms, err := d.measure(ctx, srv, via, b)
	for _, m := range ms {
		detail := fmt.Sprintf("%.3f ± %.3f jobs/s by %d instance(s) on %s (%s) over %s; declared N-1 throughput %g jobs/s", m.Rate, m.Err, len(m.Instances), strings.Join(survivorsOf(d.s, srv), ", "), m.Per, m.Window, m.Need)
		d.out.add(Result{"", "server " + srv + " cut off: " + m.Process, m.Met(), detail})
	}
	if err != nil {
		d.out.add(Result{via, "server " + srv + " cut off: throughput", false, err.Error()})
	}
}

// measure measures, with srv gone, each process with a declared throughput
// on the survivors: the drill's jobs (put in b) enough for the window,
// each surviving instance's jobs per second over it, summed.
func (d *drill) measure(ctx context.Context, srv, via string, b Batch) ([]Measure, error) {
	type kind struct{ name, stage string }
	kinds := []kind{{"datamover", "move"}, {"transcode", "transcode"}}
	for _, k := range kinds {
		p := d.s.Processes[k.name]
		if p.Throughput == nil {
			continue
		}
		// Half as many again as the window needs, so that no instance runs dry.
		n := int(math.Ceil(*p.Throughput*measureWindow.Seconds()*1.5)) + 10
		if err := d.enqueue(ctx, via, b, k.stage, n); err != nil {
			return nil, fmt.Errorf("%s: %v", k.name, err)
		}
	}
	// A second for the survivors to take up the jobs, then the window.
	time.Sleep(time.Second)
	t0, err := d.sql(ctx, via, "SELECT NOW(3)")
	if err != nil {
		return nil, fmt.Errorf("reading the clock: %v", err)
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(measureWindow):
	}
	var ms []Measure
	for _, k := range kinds {
		p := d.s.Processes[k.name]
		if p.Throughput == nil {
			continue
		}
		var names []string
		for _, w := range d.s.workers(srv, false) {
			if strings.Contains(w, "-"+k.name+"-") {
				names = append(names, w)
			}
		}
		// Per instance: its runs in the window, first to last; the rate of
		// an instance that ran once or never is 0.
		out, err := d.sql(ctx, via, fmt.Sprintf("SELECT worker, UNIX_TIMESTAMP(at) FROM massstore.runs WHERE stage = '%s' AND at >= '%s' AND at < '%s' + INTERVAL %d SECOND AND job IN %s", k.stage, t0, t0, int(measureWindow.Seconds()), b.in()))
		if err != nil {
			return ms, fmt.Errorf("%s: reading the runs: %v", k.name, err)
		}
		rate, e, per := throughputOf(out, names)
		ms = append(ms, Measure{Process: k.name, Rate: rate, Err: e, Need: *p.Throughput, Instances: names, Per: per, Window: measureWindow})
	}
	return ms, nil
}

func survivorsOf(s *Stack, srv string) []string {
	var out []string
	for _, n := range s.Servers {
		if n != srv {
			out = append(out, n)
		}
	}
	return out
}

// throughputOf sums the instances' rates from rows of "worker unixtime",
// one per run: each instance's (count-1) jobs over the span from its first
// run to its last, which does not depend on where the window cuts a job.
// The span is off by the jitter of when a run starts (its timestamp to the
// millisecond, the database's time per job): the standard deviation σ of
// the instance's intervals between runs, so its rate is off by rate·σ/span;
// the instances' errors add in quadrature. An instance with fewer than two
// runs carries 0.
func throughputOf(rows string, names []string) (rate, err float64, per string) {
	at := map[string][]float64{}
	for _, l := range strings.Split(rows, "\n") {
		f := strings.Fields(l)
		if len(f) != 2 {
			continue
		}
		t, e := strconv.ParseFloat(f[1], 64)
		if e != nil {
			continue
		}
		at[f[0]] = append(at[f[0]], t)
	}
	var ps []string
	var variance float64
	for _, n := range names {
		ts := at[n]
		sort.Float64s(ts)
		r := 0.0
		if len(ts) >= 2 && ts[len(ts)-1] > ts[0] {
			span := ts[len(ts)-1] - ts[0]
			r = float64(len(ts)-1) / span
			var sum, sq float64
			for i := 1; i < len(ts); i++ {
				d := ts[i] - ts[i-1]
				sum += d
				sq += d * d
			}
			k := float64(len(ts) - 1)
			sigma := math.Sqrt(math.Max(0, sq/k-(sum/k)*(sum/k)))
			e := r * sigma / span
			variance += e * e
		}
		rate += r
		ps = append(ps, fmt.Sprintf("%s %.3f", n, r))
	}
	return rate, math.Sqrt(variance), strings.Join(ps, ", ")
}

// holders lists the servers holding the VIP now.
func (d *drill) holders(ctx context.Context) []string {
	var hs []string
	for _, n := range d.s.Servers {
		if out, err := d.run(ctx, n, "ip -o -4 addr show | grep -cF ' inet '"+modules.Quote(d.s.VIP)+"/ || true"); err == nil && out != "0" && out != "" {
			hs = append(hs, n)
		}
	}
	return hs
}

// vip is the VIP drill: the holder's app server is stopped (not killed:
// systemd would restart it within the track script's two failed checks,
// and the VIP might stay); the VIP must move to a server whose app server
// answers, and answer GET /health there, seen from another node; the app
// server started again, the VIP stays where it went (nopreempt).
func (d *drill) vip(ctx context.Context) {
	check := "vip move"
	if d.s.VIP == "" {
		d.out.add(Result{"", check, false, "the stack has no vip"})
		return
	}
	hs := d.holders(ctx)
	if len(hs) != 1 {
		d.out.add(Result{"", check, false, fmt.Sprintf("%s held by %d servers (%s), want 1", d.s.VIP, len(hs), strings.Join(hs, ", "))})
		return
	}
	old := hs[0]
	// The client: the witness, else another server.
	client := d.s.Witness
	if client == "" {
		client = survivorsOf(d.s, old)[0]
	}
	if _, err := d.run(ctx, old, "systemctl stop massstore-app"); err != nil {
		d.out.add(Result{old, check, false, "stopping its app server: " + err.Error()})
		return
	}
	stopped := time.Now()
	var now []string
	moved, ok := poll(ctx, time.Minute, func() bool {
		now = d.holders(ctx)
		return len(now) == 1 && now[0] != old
	})
	_, ok2 := poll(ctx, 30*time.Second, func() bool {
		out, _ := d.run(ctx, client, fmt.Sprintf("curl -s -o /dev/null -w '%%{http_code}' -m 2 http://%s:%d/health", d.s.VIP, d.s.AppPort))
		return out == "200"
	})
	answered := time.Since(stopped)
	_, err := d.run(ctx, old, "systemctl start massstore-app")
	if !ok || !ok2 || err != nil {
		d.out.add(Result{old, check, false, fmt.Sprintf("app server stopped: the VIP held by %s after %.1fs; GET /health through it from %s: %v; started again: %v", strings.Join(now, ", "), moved.Seconds(), client, ok2, err)})
		return
	}
	back, ok3 := poll(ctx, 30*time.Second, func() bool {
		out, _ := d.run(ctx, old, fmt.Sprintf("curl -s -o /dev/null -w '%%{http_code}' -m 2 http://127.0.0.1:%d/health", d.s.AppPort))
		return out == "200"
	})
	// keepalived's rise 2: two more seconds before it could take it back.
	time.Sleep(3 * time.Second)
	after := d.holders(ctx)
	d.out.add(Result{old, check, ok3 && len(after) == 1 && after[0] == now[0], fmt.Sprintf("%s's app server stopped: the VIP on %s after %.1fs, GET /health 200 through it from %s after %.1fs; started again (healthy after %.1fs), the VIP stays on %s", old, now[0], moved.Seconds(), client, answered.Seconds(), back.Seconds(), strings.Join(after, ", "))})
}
