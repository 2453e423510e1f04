package redis

import "testing"

// The one reader of get-master-addr-by-name, shared by the fact script,
// the direct reads and check: an address and a port, or nothing.
func TestMasterAddr(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.1\n31415\n":                    "10.0.0.1 31415",
		"10.0.0.1\r\n31415\r\n":                "10.0.0.1 31415",
		"":                                     "",
		"(nil)\n":                              "",
		"NOAUTH Authentication required.\n":    "",
		"ERR No such master with that name\n":  "",
		"Could not connect to Redis at x: y\n": "",
		"ERR unknown\n":                        "", // two words, not an address
		"10.0.0.1\n":                           "",
	} {
		if got := MasterAddr(in); got != want {
			t.Errorf("MasterAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseInfo(t *testing.T) {
	got := ParseInfo("# Replication\r\nrole:slave\r\nmaster_host:10.0.0.1\r\nmaster_port:31415\r\nmaster_link_status:down\r\n")
	if want := (RedisView{State: "up", Role: "slave", PrimaryHost: "10.0.0.1", PrimaryPort: "31415"}); got != want {
		t.Errorf("replica: %+v, want %+v", got, want)
	}
	if got := ParseInfo("role:master\nconnected_slaves:2\n"); got.Role != "master" || got.State != "up" {
		t.Errorf("primary: %+v", got)
	}
	for in, want := range map[string]string{
		"NOAUTH Authentication required.": "auth-failed",
		"":                                "down",
		"Could not connect to Redis at 1.2.3.4:5": "down",
		"ERR unknown subcommand 'role:'":          "error", // role: in an error is no role
	} {
		if got := ParseInfo(in); got.State != want || got.Role != "" {
			t.Errorf("ParseInfo(%q) = %+v, want state %s", in, got, want)
		}
	}
	if in := InfoFields("run_id:abc\r\nrole:master\n"); in["run_id"] != "abc" || in["role"] != "master" {
		t.Errorf("InfoFields: %v", in)
	}
}
