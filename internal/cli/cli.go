// Package cli holds hastack's subcommands. Each command lives in its own file
// and registers itself in init, so commands stay independent of each other.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// Exit codes shared by every command.
const (
	ExitOK      = 0
	ExitFailure = 1 // invalid config, failed check, failed apply, unreachable node
	ExitUsage   = 2 // bad flags or arguments (plan -detailed-exitcode also uses 2 for "changes")
)

// Command is one subcommand.
type Command struct {
	Name  string
	Short string // one line for `hastack help`
	// Example is printed by `hastack NAME -h`: command lines, indented,
	// each with what it does.
	Example string
	// Run gets the arguments after the command name. It returns the exit code.
	Run func(env *Env, args []string) int
}

// Env is what a command may touch: its streams. Tests swap them.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer

	color *colorWriter // under Stdout when the text is coloured (useColor)
}

var commands = map[string]*Command{}

// Register adds a command that lives outside this package (hastack lab,
// in cmd/hastack, which owns the lab's import).
func Register(c *Command) { register(c) }

func register(c *Command) {
	if _, dup := commands[c.Name]; dup {
		panic("duplicate command " + c.Name)
	}
	commands[c.Name] = c
}

// Main runs hastack with the given arguments and returns the exit code.
func Main(args []string) int {
	return Run(&Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}, args)
}

// Run is Main with explicit streams.
func Run(env *Env, args []string) int {
	if len(args) == 2 && args[0] == "help" && commands[args[1]] != nil {
		return commands[args[1]].Run(env, []string{"-h"}) // hastack help plan
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(env.Stdout)
		if len(args) == 0 {
			return ExitUsage
		}
		return ExitOK
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(env.Stderr, "hastack: unknown command %q (see 'hastack help')\n", args[0])
		return ExitUsage
	}
	return c.Run(env, args[1:])
}

func usage(w io.Writer) {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("usage: hastack <command> [flags] [args]\n\ncommands:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %-8s %s\n", n, commands[n].Short)
	}
	b.WriteString("\nRun 'hastack <command> -h' (or 'hastack help <command>') for a command's flags and examples.\n")
	io.WriteString(w, b.String())
}

// flags makes a command's flag set; -h prints "usage: hastack NAME USAGE",
// the command's examples and the flags to stderr. (A flag's usage text
// names its argument in back quotes, as the flag package reads them:
// "save the plan to `FILE`" prints "-out FILE". Any other back-quoted
// words would be taken for the argument's name.)
func flags(env *Env, name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "usage: hastack %s %s\n", name, usage)
		if c := commands[name]; c != nil && c.Example != "" {
			fmt.Fprintf(env.Stderr, "\nexamples:\n%s\n", c.Example)
		}
		fmt.Fprintln(env.Stderr, "\nflags:")
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args. When ok is false the command returns code: 0 after
// -h, ExitUsage after a bad flag (the flag package has said why).
func parse(fs *flag.FlagSet, args []string) (code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK, false
		}
		return ExitUsage, false
	}
	return 0, true
}
