package cli

import (
	"errors"
	"fmt"
	"io"

	"hastack.dev/hastack/engine/config"
	"hastack.dev/hastack/internal/termsafe"
)

func init() {
	register(&Command{
		Name:  "vet",
		Short: "check a config folder against the schemas, offline",
		Example: `  hastack vet clusters/                  # every problem at once, as file:line:col
  hastack vet --format=github clusters/  # annotations in a GitHub Actions run`,
		Run: runVet,
	})
}

// runVet loads DIR (default ".") and prints every problem at once. It makes
// no network connection and needs no password; when the password source the
// config names is present, the password is checked too (never printed).
// Valid: prints nothing, exit 0. Invalid: exit 1. Usage errors: exit 2.
func runVet(env *Env, args []string) int {
	fs := flags(env, "vet", "[--format=text|github] [DIR]")
	format := fs.String("format", "text", "output format: text (file:line:col: path: message on stderr) or github (annotations on stdout)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if *format != "text" && *format != "github" {
		fmt.Fprintf(env.Stderr, "hastack vet: unknown format %q (text or github)\n", *format)
		return ExitUsage
	}
	if fs.NArg() > 1 {
		fmt.Fprintln(env.Stderr, "hastack vet: give at most one folder")
		return ExitUsage
	}
	dir := "."
	if fs.NArg() == 1 {
		dir = fs.Arg(0)
	}

	cfg, problems, err := config.Load(dir)
	if err != nil {
		fmt.Fprintf(env.Stderr, "hastack vet: %s\n", termsafe.String(err.Error()))
		var ue *config.UsageError
		if errors.As(err, &ue) {
			return ExitUsage
		}
		return ExitFailure
	}
	if len(problems) == 0 {
		problems = cfg.SecretProblems()
	}
	if len(problems) == 0 {
		return ExitOK
	}
	printProblems(env, *format, problems)
	return ExitFailure
}

// printProblems writes one line per problem; Problem's String and GitHub
// escape control characters, so a value can neither drive the terminal nor
// end a GitHub workflow command.
func printProblems(env *Env, format string, ps config.Problems) {
	var w io.Writer = env.Stderr
	if format == "github" {
		w = env.Stdout
	}
	for _, p := range ps {
		if format == "github" {
			fmt.Fprintln(w, p.GitHub())
		} else {
			fmt.Fprintln(w, p.String())
		}
	}
}
