package vpp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/lb"
	"go.fd.io/govpp/binapi/memclnt"
	"go.fd.io/govpp/binapi/vlib"
	"go.fd.io/govpp/binapi/vpe"
	"go.fd.io/govpp/core"
)

// Run supervises the connection until ctx is done. It returns nil then; it
// never gives up on VPP by itself.
func (g *Govpp) Run(ctx context.Context) error {
	if !g.running.CompareAndSwap(false, true) {
		return errors.New("vpp: Run called twice")
	}
	defer g.running.Store(false)
	backoff := g.cfg.ReconnectMin
	failures := 0
	for {
		start := time.Now()
		gen := g.State().Generation
		err := g.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		g.setDisconnected(err)
		if g.State().Generation != gen {
			failures = 0 // this session had connected
		}
		if time.Since(start) > g.cfg.ReconnectMax {
			backoff = g.cfg.ReconnectMin
		}
		// One WARN per outage; the retries that follow are DEBUG.
		if failures == 0 {
			g.log.Warn("vpp unreachable, reconnecting", "reason", errString(err), "backoff", backoff)
		} else {
			g.log.Debug("vpp reconnect failed", "reason", errString(err), "attempt", failures+1, "backoff", backoff)
		}
		failures++
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, g.cfg.ReconnectMax)
	}
}

// session is one connection's life: connect, learn VPP, re-push, then ping
// and scrape until something fails.
func (g *Govpp) session(ctx context.Context) error {
	a := g.cfg.NewAdapter()
	conn, err := core.Connect(a)
	if err != nil {
		g.tel.connect("error")
		return fmt.Errorf("connect %s: %w", g.cfg.APISocket, err)
	}
	g.tel.connect("ok")
	defer conn.Disconnect()

	info, err := g.probe(ctx, conn)
	if err != nil {
		return err
	}
	var stats StatsSource
	if g.cfg.Stats != nil {
		stats, err = g.cfg.Stats(ctx)
		if err != nil {
			g.log.Warn("vpp stats socket unavailable, counters degraded", "reason", err.Error())
			stats = nil
		}
	}
	defer func() {
		g.tel.disconnect()
		g.mu.Lock()
		if g.stats != nil {
			_ = g.stats.Disconnect()
		}
		g.conn, g.stats, g.prog = nil, nil, nil
		g.mu.Unlock()
	}()

	g.mu.Lock()
	g.conn, g.stats = conn, stats
	if info.dialect == DialectBinAPI {
		g.prog = binapiProgrammer{c: g}
	} else {
		g.prog = cliProgrammer{c: g}
	}
	g.newGenerationLocked()
	pushErr := g.pushAllLocked(ctx)
	bt := g.readBootTimeLocked()
	g.bootTime = bt
	gen := g.generation
	g.mu.Unlock()
	if pushErr != nil {
		if isTransport(pushErr) {
			return fmt.Errorf("re-push: %w", pushErr)
		}
		g.log.Warn("vpp re-push incomplete", "reason", pushErr.Error())
	}
	g.setState(func(s *State) {
		s.Connected, s.Generation, s.Version, s.Dialect = true, gen, info.version, info.dialect
		s.Weighted = info.dialect == DialectBinAPI
		s.BootTime, s.LastContact, s.LastError = bt, time.Now(), ""
	})
	g.log.Info("vpp connected", "version", info.version, "dialect", info.dialect, "reason", info.reason,
		"generation", gen, "stats", stats != nil)

	g.scrape(ctx)
	ping := time.NewTicker(g.cfg.PingInterval)
	defer ping.Stop()
	scrape := time.NewTicker(g.cfg.ScrapeInterval)
	defer scrape.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-g.kick:
			if err := g.ping(ctx); err != nil {
				return err
			}
		case <-ping.C:
			if err := g.ping(ctx); err != nil {
				return err
			}
		case <-scrape.C:
			if err := g.scrape(ctx); err != nil && isTransport(err) {
				return err
			}
		}
	}
}

type vppInfo struct {
	version, dialect, reason string
}

// probe learns the VPP version and picks the dialect.
func (g *Govpp) probe(ctx context.Context, conn api.Connection) (vppInfo, error) {
	var info vppInfo
	ver := &vpe.ShowVersionReply{}
	if err := g.invoke(ctx, conn, &vpe.ShowVersion{}, ver); err != nil {
		return info, fmt.Errorf("show version: %w", err)
	}
	info.version = strings.TrimSpace(ver.Version)

	var lbVer *apiVersion
	vers := &memclnt.APIVersionsReply{}
	if err := g.invoke(ctx, conn, &memclnt.APIVersions{}, vers); err != nil {
		g.log.Debug("vpp api_versions failed", "reason", err.Error())
	} else {
		for _, m := range vers.APIVersions {
			if strings.TrimSuffix(strings.TrimSpace(m.Name), ".api") == "lb" {
				v := apiVersion{m.Major, m.Minor, m.Patch}
				lbVer = &v
			}
		}
	}
	var missing []string
	for _, m := range weightedMessages() {
		if _, err := conn.(*core.Connection).GetMessageID(m); err != nil {
			missing = append(missing, m.GetMessageName()+"_"+m.GetCrcString())
		}
	}
	if _, err := conn.(*core.Connection).GetMessageID(&vlib.CliInband{}); err != nil {
		return info, fmt.Errorf("vpp has no cli_inband: %w", err)
	}
	if _, err := conn.(*core.Connection).GetMessageID(&lb.LbConf{}); err != nil && lbVer == nil {
		return info, fmt.Errorf("vpp lb plugin not loaded: %w", err)
	}
	choice, err := selectDialect(g.cfg.Dialect, lbVer, missing)
	if err != nil {
		return info, err
	}
	info.dialect, info.reason = choice.dialect, choice.reason
	return info, nil
}

func (g *Govpp) newGenerationLocked() {
	g.generation++
	g.routeIndex = make(map[netip.Prefix]int)
}

// State implements Dataplane.
func (g *Govpp) State() State { return *g.state.Load() }

func (g *Govpp) setState(f func(*State)) {
	for {
		old := g.state.Load()
		s := *old
		f(&s)
		if g.state.CompareAndSwap(old, &s) {
			return
		}
	}
}

func (g *Govpp) setDisconnected(err error) {
	g.setState(func(s *State) {
		s.Connected = false
		s.LastError = errString(err)
	})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// ping checks the connection and, with a stats socket, the boot time: a
// changed boot time means VPP restarted behind a surviving socket.
func (g *Govpp) ping(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.conn == nil {
		return ErrNotConnected
	}
	if err := g.invoke(ctx, g.conn, &memclnt.ControlPing{}, &memclnt.ControlPingReply{}); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	g.setState(func(s *State) { s.LastContact = time.Now() })
	if bt := g.readBootTimeLocked(); !bt.IsZero() && !g.bootTime.IsZero() && !bt.Equal(g.bootTime) {
		g.log.Warn("vpp restarted behind the connection, re-pushing", "boot_time", bt)
		g.bootTime = bt
		g.newGenerationLocked()
		if err := g.pushAllLocked(ctx); err != nil {
			g.log.Warn("vpp re-push incomplete", "reason", err.Error())
		}
		gen := g.generation
		g.setState(func(s *State) { s.Generation, s.BootTime = gen, bt })
	}
	return nil
}

// readBootTimeLocked reads /sys/boottime, zero without a stats socket.
func (g *Govpp) readBootTimeLocked() time.Time {
	if g.stats == nil {
		return time.Time{}
	}
	entries, err := dumpWithRetry(g.stats, "^"+statBootTime+"$")
	if err != nil {
		return time.Time{}
	}
	return bootTimeOf(pickStats(entries).bootTime)
}
