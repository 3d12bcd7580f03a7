package manager

import (
	"context"
	"fmt"

	"github.com/octavia-vpp/health/heartbeat/udp"
	"github.com/octavia-vpp/health/internal/octaviaconf"
)

// buildForwarder opens the shadow's forwarding socket when
// shadow_forward_to names real controllers (docs/shadow.md), and returns
// the receiver's Forward hook; nil when there is nothing to forward to.
// The controllers are resolved once here: a name that does not resolve
// stops the start, as a shadow that silently kept its share of the
// heartbeats from Octavia would turn into failovers.
func (m *Manager) buildForwarder(ctx context.Context, cfg *octaviaconf.Config) (func([]byte), error) {
	entries := cfg.HealthManager.ShadowForwardTo
	if len(entries) == 0 {
		return nil, nil
	}
	dests, err := udp.ResolveControllers(ctx, entries)
	if err != nil {
		return nil, fmt.Errorf("[health_manager] shadow_forward_to: %w", err)
	}
	fwd, err := udp.NewForwarder(dests, udp.NewForwarderMetrics(m.registry), m.log)
	if err != nil {
		return nil, err
	}
	m.forwarder = fwd
	m.log.Info("forwarding every heartbeat datagram to the real controllers in turn", "shadow_forward_to", entries)
	return fwd.Forward, nil
}

// closeForwarder closes the forwarding socket, once the receiver stopped.
func (m *Manager) closeForwarder() {
	if m.forwarder != nil {
		m.forwarder.Close()
	}
}
