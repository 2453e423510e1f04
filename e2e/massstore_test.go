package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"hastack.dev/hastack/internal/lab"
)

// massstoreSQL runs SQL on a lab server's local MariaDB as root and
// returns its tab-separated output.
func massstoreSQL(t *testing.T, l *lab.Lab, node, sql string) (string, error) {
	t.Helper()
	out, err := l.Exec(t.Context(), node, "mariadb", "--defaults-file=/etc/massstore/galera.cnf", "-N", "-B", "-e", sql)
	return strings.TrimSpace(string(out)), err
}

// TestMassStore is issue 13's proof on the lab: examples/massstore (its
// inventory replaced by lab nodes: two servers and the witness, and a VIP
// for the app servers) applied from fresh, an empty plan, the VIP
// answering the controller, a three-voter Galera cluster (two MariaDB and
// garbd) Primary on both servers, and jobs flowing through the datamovers
// and transcode engines of both servers, each job done exactly once per
// stage. Then the partition drill: the server cut off from the other and
// from the witness refuses writes while the other, with the witness's
// vote, stays Primary and takes them; healed, the cut-off server rejoins by
// itself. Without the witness, the same cut leaves neither server Primary.
func TestMassStore(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"/usr/sbin/mariadbd", "/usr/bin/garbd", "/usr/lib/galera/libgalera_smm.so", "/usr/bin/rsync", "/usr/bin/socat"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("needs %s (tools/deps.sh)", p)
		}
	}
	l := lab.Start(t, 3)
	vip, err := l.SpareIP(1)
	if err != nil {
		t.Fatal(err)
	}
	dir := massstoreConfig(t, l, vip)
	hastack := func(want int, args ...string) string {
		t.Helper()
		code, out := runHastack(t, l.Dir, dir, nil, args...)
		if code != want {
			t.Fatalf("hastack %s exited %d, want %d", strings.Join(args, " "), code, want)
		}
		return out
	}
	sql := func(node, q string) string {
		t.Helper()
		out, err := massstoreSQL(t, l, node, q)
		if err != nil {
			t.Fatalf("%s: %s: %v: %s", node, q, err, out)
		}
		return out
	}
	status := func(node string) string {
		out, _ := massstoreSQL(t, l, node, "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME IN ('WSREP_CLUSTER_SIZE', 'WSREP_CLUSTER_STATUS') ORDER BY VARIABLE_NAME")
		return strings.ReplaceAll(out, "\n", " ")
	}
	waitStatus := func(node, want string, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for status(node) != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: Galera size and status %q after %s, want %q", node, status(node), within, want)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	hastack(0, "vet")
	start := time.Now()
	hastack(0, "apply", "-auto-approve")
	t.Logf("apply from fresh: %.1fs", time.Since(start).Seconds())
	if out := hastack(0, "plan", "-detailed-exitcode"); !strings.Contains(out, "No changes.") {
		t.Fatal("the plan after apply is not empty")
	}
	// Apply starts garbd last and does not wait for it to join: three
	// voters (two servers and the witness) within seconds.
	start = time.Now()
	waitStatus("node1", "3 Primary", time.Minute)
	waitStatus("node2", "3 Primary", 10*time.Second)
	t.Logf("the witness joined %.1fs after apply", time.Since(start).Seconds())

	// The app servers' VIP (keepalived, on a server whose app server
	// answers /health) answers the controller, a client of MassStore.
	viaVIP := func() (string, error) {
		out, err := l.ExecController(t.Context(), "curl", "-fsS", "-D", "-", "-m", "3", "http://"+vip+":8080/health")
		return string(out), err
	}
	within := time.Now().Add(30 * time.Second)
	for out, err := viaVIP(); err != nil || !strings.Contains(out, "X-Lab-Node: node"); out, err = viaVIP() {
		if time.Now().After(within) {
			t.Fatalf("the VIP %s does not answer /health: %v %s", vip, err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// 200 jobs through the app server of node1; every worker of both
	// servers takes some, and each job runs once in each stage.
	const jobs = 200
	if out, err := l.Exec(t.Context(), "node1", "curl", "-fsS", "-X", "POST", "http://127.0.0.1:8080/jobs?n="+strconv.Itoa(jobs)); err != nil {
		t.Fatalf("POST /jobs: %v: %s", err, out)
	}
	start = time.Now()
	waitDone := func(want int, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			got := sql("node2", "SELECT COUNT(*) FROM massstore.jobs WHERE stage = 'done'")
			if got == strconv.Itoa(want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s of %d jobs done after %s; by stage: %s", got, want, within, sql("node2", "SELECT stage, COUNT(*) FROM massstore.jobs GROUP BY stage"))
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	waitDone(jobs, 3*time.Minute)
	took := time.Since(start)
	t.Logf("%d jobs through both stages in %.1fs: %.1f jobs/s (redundant mode: 4 datamovers of 5 jobs/s, 4 transcode engines of 2)", jobs, took.Seconds(), jobs/took.Seconds())
	if twice := sql("node1", "SELECT COUNT(*) FROM (SELECT job, stage FROM massstore.runs GROUP BY job, stage HAVING COUNT(*) <> 1) x"); twice != "0" {
		t.Errorf("%s (job, stage) pairs ran other than once", twice)
	}
	if got := sql("node1", "SELECT COUNT(DISTINCT job) FROM massstore.runs WHERE stage = 'move'") + " " + sql("node1", "SELECT COUNT(DISTINCT job) FROM massstore.runs WHERE stage = 'transcode'"); got != fmt.Sprintf("%d %d", jobs, jobs) {
		t.Errorf("jobs moved and transcoded: %s, want %d each", got, jobs)
	}
	perWorker := sql("node1", "SELECT worker, COUNT(*) FROM massstore.runs GROUP BY worker ORDER BY worker")
	t.Logf("runs per worker:\n%s", perWorker)
	for _, w := range []string{"node1-datamover-", "node2-datamover-", "node1-transcode-", "node2-transcode-"} {
		if !strings.Contains(perWorker, w) {
			t.Errorf("no %s* took a job: %s", w, perWorker)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	// hastack check: every instance active, the app servers healthy,
	// Galera 3 Primary Synced on both servers, the queue empty.
	if out := hastack(0, "check"); !strings.Contains(out, "All 18 checks passed.") {
		t.Errorf("check does not pass its 18 checks (per server: galera's unit and status, the app's unit and health, 4 workers; garbd; the queue)")
	}

	// Partition: node2 drops everything from node1 and the witness.
	n1, _ := l.Node("node1")
	n3, _ := l.Node("node3")
	cut := func(node string, from ...string) {
		t.Helper()
		for _, ip := range from {
			if out, err := l.Exec(t.Context(), node, "iptables", "-I", "INPUT", "-s", ip, "-j", "DROP"); err != nil {
				t.Fatalf("%s: iptables: %v: %s", node, err, out)
			}
		}
	}
	heal := func(node string, from ...string) {
		t.Helper()
		for _, ip := range from {
			if out, err := l.Exec(t.Context(), node, "iptables", "-D", "INPUT", "-s", ip, "-j", "DROP"); err != nil {
				t.Fatalf("%s: iptables: %v: %s", node, err, out)
			}
		}
	}
	start = time.Now()
	cut("node2", n1.IP, n3.IP)
	waitStatus("node1", "2 Primary", time.Minute)
	t.Logf("node2 cut off: node1 Primary with the witness, size 2, after %.1fs", time.Since(start).Seconds())
	waitStatus("node2", "1 non-Primary", time.Minute)
	if out, err := massstoreSQL(t, l, "node2", "INSERT INTO massstore.jobs (stage) VALUES ('move')"); err == nil || !strings.Contains(out, "WSREP") {
		t.Errorf("node2, cut off, took a write: %v %s", err, out)
	}
	sql("node1", "INSERT INTO massstore.jobs (stage) VALUES ('move')")
	if out := hastack(1, "check"); !strings.Contains(out, "FAIL  node2  galera: cluster size 1 (want 3), non-Primary") ||
		!strings.Contains(out, "FAIL  node1  galera: cluster size 2 (want 3), Primary, Synced") || !strings.Contains(out, "FAIL  node2  app health: GET /health: 503") {
		t.Errorf("check does not say that node2 is cut off")
	}
	heal("node2", n1.IP, n3.IP)
	start = time.Now()
	waitStatus("node2", "3 Primary", 2*time.Minute)
	t.Logf("healed: node2 back in the Primary component in %.1fs", time.Since(start).Seconds())
	waitDone(jobs+1, time.Minute)

	// Without the witness (garbd killed, not stopped: a stop leaves the
	// cluster cleanly and shrinks the quorum), the same cut leaves no
	// majority anywhere: both servers refuse writes.
	if out, err := l.Exec(t.Context(), "node3", "pkill", "-KILL", "-x", "garbd"); err != nil {
		t.Fatalf("killing garbd: %v: %s", err, out)
	}
	waitStatus("node1", "2 Primary", time.Minute)
	cut("node2", n1.IP)
	cut("node1", l.Nodes[1].IP)
	waitStatus("node1", "1 non-Primary", time.Minute)
	waitStatus("node2", "1 non-Primary", time.Minute)
	for _, n := range []string{"node1", "node2"} {
		if out, err := massstoreSQL(t, l, n, "INSERT INTO massstore.jobs (stage) VALUES ('move')"); err == nil || !strings.Contains(out, "WSREP") {
			t.Errorf("%s took a write with no majority: %v %s", n, err, out)
		}
	}
}

// massstoreConfig writes examples/massstore's stack, unchanged, with an
// inventory of the lab's nodes: node1 and node2 the servers, node3 the
// witness.
func massstoreConfig(t *testing.T, l *lab.Lab, vip string) string {
	t.Helper()
	b, err := os.ReadFile("../examples/massstore/massstore.cue")
	if err != nil {
		t.Fatal(err)
	}
	inv := fmt.Sprintf("package massstore\n\nstacks: media: {\n\tservers: [\n\t\t{name: %q, ip: %q},\n\t\t{name: %q, ip: %q},\n\t]\n\twitness: {name: %q, ip: %q}\n",
		l.Nodes[0].Name, l.Nodes[0].IP, l.Nodes[1].Name, l.Nodes[1].IP, l.Nodes[2].Name, l.Nodes[2].IP)
	if vip != "" {
		inv += fmt.Sprintf("\tvip: %q\n", vip)
	}
	inv += "}\n"
	dir := t.TempDir()
	for name, text := range map[string]string{"massstore.cue": string(b), "servers.cue": inv} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestMassStoreKills is issue 13's kill drill on the lab (the systemctl
// stand-in honours Restart= on these nodes: /run/lab/restart): while jobs
// flow, each process instance of each server is killed (SIGKILL of the
// unit's main process) in turn; it must be back, by itself, within two
// supervision cycles (RestartSec=2 s, plus the stand-in's 0.5 s poll) and
// take work again (the database Synced in a cluster of 3 again, the app
// server healthy, a worker's next run), while the survivors carry on. Then
// a whole server is cut off, and the jobs per second of the other are
// measured. At the end every job is done, each exactly once per stage.
func TestMassStoreKills(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"/usr/sbin/mariadbd", "/usr/bin/garbd", "/usr/lib/galera/libgalera_smm.so", "/usr/bin/rsync", "/usr/bin/socat"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("needs %s (tools/deps.sh)", p)
		}
	}
	l := lab.Start(t, 3)
	node := func(name string, argv ...string) string {
		t.Helper()
		out, err := l.Exec(t.Context(), name, argv...)
		if err != nil {
			t.Fatalf("%s: %s: %v: %s", name, strings.Join(argv, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	for _, n := range l.Nodes {
		node(n.Name, "touch", "/run/lab/restart")
	}
	dir := massstoreConfig(t, l, "")
	if code, _ := runHastack(t, l.Dir, dir, nil, "apply", "-auto-approve"); code != 0 {
		t.Fatalf("apply exited %d", code)
	}
	sql := func(name, q string) string {
		t.Helper()
		out, err := massstoreSQL(t, l, name, q)
		if err != nil {
			t.Fatalf("%s: %s: %v: %s", name, q, err, out)
		}
		return out
	}
	// within polls ok every 100 ms and returns how long it took.
	within := func(what string, limit time.Duration, ok func() bool) time.Duration {
		t.Helper()
		start := time.Now()
		for !ok() {
			if time.Since(start) > limit {
				t.Fatalf("%s: not after %s", what, limit)
			}
			time.Sleep(100 * time.Millisecond)
		}
		return time.Since(start)
	}
	synced3 := func(name string) func() bool {
		return func() bool {
			out, _ := massstoreSQL(t, l, name, "SELECT GROUP_CONCAT(VARIABLE_VALUE ORDER BY VARIABLE_NAME SEPARATOR ' ') FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME IN ('WSREP_CLUSTER_SIZE', 'WSREP_CLUSTER_STATUS', 'WSREP_LOCAL_STATE_COMMENT')")
			return out == "3 Primary Synced"
		}
	}
	within("node1 Synced in a cluster of 3", time.Minute, synced3("node1"))
	within("node2 Synced in a cluster of 3", time.Minute, synced3("node2"))
	jobs := 0
	post := func(from string, n int) {
		t.Helper()
		node(from, "curl", "-fsS", "-X", "POST", "http://127.0.0.1:8080/jobs?n="+strconv.Itoa(n))
		jobs += n
	}
	// The survivor's server: the other one of the pair.
	other := map[string]string{"node1": "node2", "node2": "node1"}
	for _, srv := range []string{"node1", "node2"} {
		w := map[string]string{"node1": "1", "node2": "2"}[srv]
		for _, unit := range []string{"massstore-galera", "massstore-app", "massstore-datamover-" + w, "massstore-transcode-" + w} {
			post(other[srv], 40)
			pidFile := "/run/lab-systemd/" + unit + ".service.pid"
			old := node(srv, "cat", pidFile)
			lastRun := sql(other[srv], "SELECT IFNULL(MAX(id), 0) FROM massstore.runs")
			node(srv, "kill", "-KILL", old)
			killed := time.Now()
			// The survivors carry on (runs added by the other server's
			// workers; a killed database stalls the cluster's commits
			// until Galera evicts it, evs.suspect_timeout 5 s), and the
			// killed instance is back (a new main process, active):
			// both timed from the kill.
			var carried, back time.Duration
			for carried == 0 || back == 0 {
				if time.Since(killed) > 30*time.Second {
					t.Fatalf("kill %s %s: after 30 s the survivors carried on: %v, the instance is back: %v", srv, unit, carried > 0, back > 0)
				}
				if carried == 0 {
					out, _ := massstoreSQL(t, l, other[srv], "SELECT COUNT(*) FROM massstore.runs WHERE id > "+lastRun+" AND worker LIKE '"+other[srv]+"-%'")
					if out != "" && out != "0" {
						carried = time.Since(killed)
					}
				}
				if back == 0 {
					pid, err := l.Exec(t.Context(), srv, "cat", pidFile)
					if err == nil && strings.TrimSpace(string(pid)) != old {
						if _, err := l.Exec(t.Context(), srv, "systemctl", "is-active", "--quiet", unit); err == nil {
							back = time.Since(killed)
						}
					}
				}
				time.Sleep(100 * time.Millisecond)
			}
			var resumed time.Duration
			switch {
			case unit == "massstore-galera":
				within(srv+" Synced again", 2*time.Minute, synced3(srv))
			case unit == "massstore-app":
				within(srv+" app healthy", 20*time.Second, func() bool {
					_, err := l.Exec(t.Context(), srv, "curl", "-fsS", "-o", "/dev/null", "-m", "2", "http://127.0.0.1:8080/health")
					return err == nil
				})
			default:
				worker := srv + "-" + strings.TrimPrefix(unit, "massstore-")
				within(worker+" takes a job again", 30*time.Second, func() bool {
					out, _ := massstoreSQL(t, l, srv, "SELECT COUNT(*) FROM massstore.runs WHERE id > "+lastRun+" AND worker = '"+worker+"' AND at > NOW(3) - INTERVAL "+strconv.Itoa(int(time.Since(killed).Seconds())+1)+" SECOND")
					return out != "" && out != "0"
				})
			}
			resumed = time.Since(killed)
			t.Logf("kill %s %s: the survivors finished a job after %.1fs; back (new main process) after %.1fs, working again after %.1fs", srv, unit, carried.Seconds(), back.Seconds(), resumed.Seconds())
			if back > 5*time.Second {
				t.Errorf("%s %s back after %s: more than two supervision cycles (2 × RestartSec 2 s, + 0.5 s poll)", srv, unit, back)
			}
		}
	}

	// A whole server gone: node2 cut off from node1 and the witness. The
	// jobs per second node1 alone carries, over 15 s.
	n1, _ := l.Node("node1")
	n3, _ := l.Node("node3")
	post("node1", 120)
	for _, ip := range []string{n1.IP, n3.IP} {
		node("node2", "iptables", "-I", "INPUT", "-s", ip, "-j", "DROP")
	}
	within("node1 Primary without node2", time.Minute, func() bool {
		out, _ := massstoreSQL(t, l, "node1", "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'WSREP_CLUSTER_SIZE'")
		return out == "2"
	})
	done := func() int {
		n, _ := strconv.Atoi(sql("node1", "SELECT COUNT(*) FROM massstore.runs WHERE stage = 'transcode'"))
		return n
	}
	d0 := done()
	time.Sleep(15 * time.Second)
	t.Logf("node2 gone: node1 alone finished %.1f jobs/s (declared N-1 throughput: transcode 4 jobs/s)", float64(done()-d0)/15)
	for _, ip := range []string{n1.IP, n3.IP} {
		node("node2", "iptables", "-D", "INPUT", "-s", ip, "-j", "DROP")
	}
	within("node2 back", 2*time.Minute, synced3("node2"))

	within("every job done", 5*time.Minute, func() bool {
		return sql("node1", "SELECT COUNT(*) FROM massstore.jobs WHERE stage = 'done'") == strconv.Itoa(jobs)
	})
	if twice := sql("node1", "SELECT COUNT(*) FROM (SELECT job, stage FROM massstore.runs GROUP BY job, stage HAVING COUNT(*) <> 1) x"); twice != "0" {
		t.Errorf("%s (job, stage) pairs ran other than once", twice)
	}
	if got := sql("node1", "SELECT COUNT(*) FROM massstore.runs"); got != strconv.Itoa(2*jobs) {
		t.Errorf("%s runs for %d jobs of two stages", got, jobs)
	}
}
