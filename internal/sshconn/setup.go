package sshconn

import (
	"fmt"
	"os"
	"sort"
	"sync"
)

// A Setup adjusts the SSH config from the value of an environment
// variable: how a test lab routes connections (HASTACK_LAB) without the
// CLI importing the lab. It fills only what the user's flags left empty.
type Setup func(value string, c *Config) error

var setups = struct {
	sync.Mutex
	m map[string]Setup
}{m: map[string]Setup{}}

// RegisterSetup makes s run when the environment variable env is set.
func RegisterSetup(env string, s Setup) {
	setups.Lock()
	defer setups.Unlock()
	if _, dup := setups.m[env]; dup {
		panic("sshconn: setup for " + env + " registered twice")
	}
	setups.m[env] = s
}

// FromEnv runs the setup of every registered variable that is set, in the
// order of their names.
func FromEnv(c *Config) error {
	setups.Lock()
	var envs []string
	for e := range setups.m {
		envs = append(envs, e)
	}
	setups.Unlock()
	sort.Strings(envs)
	for _, e := range envs {
		v := os.Getenv(e)
		if v == "" {
			continue
		}
		setups.Lock()
		s := setups.m[e]
		setups.Unlock()
		if err := s(v, c); err != nil {
			return fmt.Errorf("%s: %w", e, err)
		}
	}
	return nil
}
