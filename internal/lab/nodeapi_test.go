package lab

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestNodeAPI runs the Node API stand-in on one node over its
// non-clustered local Redis (aspera.conf as installed): ping and info over
// HTTP and HTTPS, node-user and access-key auth, an access key and a
// transfer stored in Redis, a missing transfer's "does not exist", and the
// bearer-token options of 002 (a user-scope token reads but cannot change
// or create access keys; an expired or forged token is refused).
func TestNodeAPI(t *testing.T) {
	l := Start(t, 1)
	sh := func(script string) string { t.Helper(); return exec1(t, l, "node1", script) }
	sh("systemctl start asperaredisd && /opt/aspera/bin/asnodeadmin -au nodeadmin -p s3cret -x xfer >/dev/null && systemctl start asperanoded")
	// call METHOD PATH [curl args]: "CODE NODE BODY" from the node itself.
	call := func(method, path string, args ...string) (int, string) {
		t.Helper()
		q := []string{"curl -sk --max-time 5 -o /tmp/body -D /tmp/head -w '%{http_code}' -X " + method}
		for _, a := range args {
			q = append(q, "'"+a+"'")
		}
		q = append(q, "https://127.0.0.1:9092"+path)
		out := sh(strings.Join(q, " ") + "; echo; grep -i '^x-lab-node:' /tmp/head | tr -d '\\r'; cat /tmp/body")
		var code int
		fmt.Sscanf(out, "%d", &code)
		if !strings.Contains(strings.ToLower(out), "x-lab-node: node1") && code != 0 {
			t.Errorf("%s %s: no X-Lab-Node header: %q", method, path, out)
		}
		return code, out
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if code, _ := call("GET", "/ping"); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no /ping in 10 s; log:\n%s", sh("cat /var/log/lab/asperanoded.service.log"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := sh("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:9091/ping"); got != "200" {
		t.Errorf("HTTP /ping: %s", got)
	}
	want := func(code int, out string, wantCode int, wantText string) {
		t.Helper()
		if code != wantCode || !strings.Contains(out, wantText) {
			t.Errorf("got %d %q, want %d with %q", code, out, wantCode, wantText)
		}
	}
	c, out := call("GET", "/info")
	want(c, out, 401, "authentication required")
	c, out = call("GET", "/info", "-u", "nodeadmin:wrong")
	want(c, out, 401, "invalid credentials")
	c, out = call("GET", "/info", "-u", "nodeadmin:s3cret")
	want(c, out, 200, `"hostname":"node1"`)

	c, out = call("POST", "/access_keys", "-u", "nodeadmin:s3cret", "-d", `{"id":"ak1","secret":"aksecret","storage":{"type":"local","path":"/home/xfer"}}`)
	want(c, out, 201, `"id":"ak1"`)
	if strings.Contains(out, "aksecret") || strings.Contains(out, "sha256") {
		t.Errorf("the access key's secret shows: %s", out)
	}
	c, out = call("POST", "/access_keys", "-u", "nodeadmin:s3cret", "-d", `{"id":"ak1","secret":"x"}`)
	want(c, out, 409, "already exists")
	c, out = call("GET", "/access_keys/ak1", "-u", "ak1:aksecret")
	want(c, out, 200, `"path":"/home/xfer"`)

	c, out = call("POST", "/ops/transfers", "-u", "ak1:aksecret", "-d", `{"direction":"send","paths":[{"source":"a"}]}`)
	want(c, out, 201, `"status":"running"`)
	var tr struct{ ID string }
	json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &tr)
	c, out = call("GET", "/ops/transfers/"+tr.ID, "-u", "ak1:aksecret")
	want(c, out, 200, `"started_on":"node1"`)
	c, out = call("GET", "/ops/transfers/0123", "-u", "ak1:aksecret")
	want(c, out, 404, "transfer 0123 does not exist")
	if got := sh("redis-cli -p 31415 HEXISTS aspera:transfers " + tr.ID); got != "1\n" {
		t.Errorf("the transfer is not in Redis hash aspera:transfers: %q", got)
	}

	// Bearer tokens: a user-scope 2048-bit token, expiring in 2 minutes.
	exp := time.Now().UTC().Add(2 * time.Minute).Format("2006-01-02T15:04:05.000Z")
	tok := strings.TrimSpace(sh("/opt/aspera/bin/asnodeadmin --bearer-create --access-key ak1 --user-id u1 --scope-role user --token-key-length 2048 --expires-at " + exp + " --token-key-path /root/ak1.pem"))
	if bits := sh("openssl rsa -in /root/ak1.pem -noout -text 2>/dev/null | head -n 1"); bits != "" && !strings.Contains(bits, "2048 bit") {
		t.Errorf("token key: %q, want 2048 bit", bits)
	}
	bearer := []string{"-H", "Authorization: Bearer " + tok, "-H", "X-Aspera-AccessKey: ak1"}
	c, out = call("GET", "/info", bearer...)
	want(c, out, 200, `"scope_role":"user"`)
	c, out = call("GET", "/ops/transfers/"+tr.ID, bearer...)
	want(c, out, 200, tr.ID)
	c, out = call("PUT", "/access_keys/ak1", append(bearer, "-d", `{"storage":{"type":"local","path":"/"}}`)...)
	want(c, out, 403, "scope-role user cannot change")
	c, out = call("POST", "/access_keys", append(bearer, "-d", `{"id":"ak2","secret":"x"}`)...)
	want(c, out, 403, "cannot create access keys")
	c, out = call("GET", "/info", "-H", "Authorization: Bearer "+tok[:len(tok)-4]+"AAAA", "-H", "X-Aspera-AccessKey: ak1")
	want(c, out, 401, "bad token signature")

	// An admin token may change the access key; one that expired may not.
	adminTok := strings.TrimSpace(sh("/opt/aspera/bin/asnodeadmin --bearer-create --access-key ak1 --user-id u1 --token-key-length 1024 --token-key-path /root/ak1.pem"))
	admin := []string{"-H", "Authorization: Bearer " + adminTok, "-H", "X-Aspera-AccessKey: ak1"}
	c, out = call("PUT", "/access_keys/ak1", append(admin, "-d", `{"storage":{"type":"local","path":"/srv"}}`)...)
	want(c, out, 200, `"path":"/srv"`)
	// The first token's key was replaced: it no longer verifies.
	c, out = call("GET", "/info", bearer...)
	want(c, out, 401, "bad token signature")
	soon := time.Now().UTC().Add(2 * time.Second).Format("2006-01-02T15:04:05.000Z")
	short := strings.TrimSpace(sh("/opt/aspera/bin/asnodeadmin --bearer-create --access-key ak1 --user-id u1 --token-key-length 1024 --expires-at " + soon + " --token-key-path /root/ak1.pem"))
	shortH := []string{"-H", "Authorization: Bearer " + short, "-H", "X-Aspera-AccessKey: ak1"}
	c, out = call("GET", "/info", shortH...)
	want(c, out, 200, `"scope_role":"admin"`)
	time.Sleep(2500 * time.Millisecond)
	c, out = call("GET", "/info", shortH...)
	want(c, out, 401, "token expired")

	if out, err := l.Exec(t.Context(), "node1", "/opt/aspera/bin/asnodeadmin", "--bearer-create", "--access-key", "ak1", "--user-id", "u1", "--token-key-length", "3000", "--token-key-path", "/root/x.pem"); err == nil || !strings.Contains(string(out), "power of 2") {
		t.Errorf("a 3000-bit key was not refused: %v %s", err, out)
	}
}
