package secret

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestSecretNeverPrints(t *testing.T) {
	s := New("hunter2-hunter2")
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s", s, s, s, s)} {
		if strings.Contains(out, "hunter2") {
			t.Errorf("printed: %q", out)
		}
	}
	b, _ := json.Marshal(struct{ P Secret }{s})
	if strings.Contains(string(b), "hunter2") {
		t.Errorf("JSON: %s", b)
	}
}

func TestRedactorSplitWrites(t *testing.T) {
	var out bytes.Buffer
	r := NewRedactor(&out)
	r.Add(New("hunter2-hunter2"))
	r.Write([]byte("pass=hunt"))
	r.Write([]byte("er2-hunter2 ok\nnext hunter2-hunter2"))
	r.Flush()
	if strings.Contains(out.String(), "hunter2") {
		t.Errorf("leaked: %q", out.String())
	}
	if out.String() != "pass=(sensitive) ok\nnext (sensitive)" {
		t.Errorf("got %q", out.String())
	}
}

func TestResolveErrorsNeverQuote(t *testing.T) {
	for _, v := range []string{"", "sh0rt", "has space inside", "quote'inside1"} {
		t.Setenv("HASTACK_TEST_PW", v)
		_, err := Source{Env: "HASTACK_TEST_PW"}.Resolve()
		if err == nil {
			t.Errorf("%q accepted", v)
			continue
		}
		if v != "" && strings.Contains(err.Error(), v) {
			t.Errorf("error quotes the value: %v", err)
		}
	}
	t.Setenv("HASTACK_TEST_PW", "good-password-1")
	if s, err := (Source{Env: "HASTACK_TEST_PW"}).Resolve(); err != nil || s.Value() != "good-password-1" {
		t.Errorf("Resolve: %v", err)
	}
}
