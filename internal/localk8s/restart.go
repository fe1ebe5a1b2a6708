package localk8s

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// StopComponent stops one component of the running cluster ("etcd",
// "kube-apiserver", ...) with SIGTERM, SIGKILL after 10 s, for fault-injection tests;
// StartComponent starts it again. The others keep running.
func (c *Cluster) StopComponent(name string) error {
	p, err := c.component(name)
	if err != nil {
		return err
	}
	if err := p.stop(10 * time.Second); err != nil {
		return fmt.Errorf("cluster %s: %w", c.opts.Name, err)
	}
	return nil
}

// StartComponent starts a component stopped by StopComponent again, with the same
// command line (same ports and data), and returns when the apiserver answers /readyz.
func (c *Cluster) StartComponent(ctx context.Context, name string) error {
	i := slices.IndexFunc(c.procs, func(p *process) bool { return p.name == name })
	if i < 0 {
		return fmt.Errorf("cluster %s: no component %q", c.opts.Name, name)
	}
	old := c.procs[i]
	select {
	case <-old.done:
	default:
		return fmt.Errorf("cluster %s: %s is running", c.opts.Name, name)
	}
	p, err := startProcess(name, old.logPath, c.opts.Detach, c.componentEnv(name), old.cmd.Path, old.cmd.Args[1:]...)
	if err != nil {
		return err
	}
	c.procs[i] = p
	client, err := c.httpClient()
	if err != nil {
		return err
	}
	return c.waitFor(ctx, p, func(ctx context.Context) error {
		return httpOK(ctx, client, c.host+"/readyz", c.adminToken)
	})
}

// component returns the running component named name.
func (c *Cluster) component(name string) (*process, error) {
	for _, p := range c.procs {
		if p.name == name {
			return p, nil
		}
	}
	return nil, fmt.Errorf("cluster %s: no component %q", c.opts.Name, name)
}
