package main

import (
	"flag"
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"hastack.dev/hastack/internal/cli"
	// The fixture connector (HASTACK_CONNECTOR=fixture:DIR) for the
	// fixture_*.txtar plans; only the test binary has it.
	_ "hastack.dev/hastack/internal/fixture"
)

var update = flag.Bool("update", false, "rewrite the golden files inside testdata/scripts/*.txtar")

// TestMain lets scripts run `hastack` as a command of this test binary.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"hastack": func() { os.Exit(cli.Main(os.Args[1:])) },
	})
}

// TestScripts runs testdata/scripts/*.txtar (at the repository root).
// Scripts find the repository's examples in $EXAMPLES.
func TestScripts(t *testing.T) {
	examples, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir:           "../../testdata/scripts",
		UpdateScripts: *update,
		Cmds:          labCmds,      // lab_test.go: lab-up, lab-config, lab-exec
		Condition:     labCondition, // lab_test.go: [lab]
		Setup: func(e *testscript.Env) error {
			e.Setenv("EXAMPLES", examples+"/../../examples")
			return nil
		},
	})
}
