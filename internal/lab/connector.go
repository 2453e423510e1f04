package lab

import "hastack.dev/hastack/internal/sshconn"

// HASTACK_LAB names a lab's folder (hastack lab up prints it): nodes are
// then reached through the lab's controller namespace, with its
// known_hosts and key unless the flags name others.
func init() {
	sshconn.RegisterSetup("HASTACK_LAB", func(dir string, c *sshconn.Config) error {
		l, err := Load(dir)
		if err != nil {
			return err
		}
		c.Dial = l.DialContext
		if len(c.KnownHosts) == 0 {
			c.KnownHosts = []string{l.KnownHosts}
		}
		if len(c.IdentityFiles) == 0 {
			c.IdentityFiles = []string{l.Identity}
		}
		return nil
	})
}
