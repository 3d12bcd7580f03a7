package vpp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"go.fd.io/govpp/adapter"
	"go.fd.io/govpp/binapi/ip"
	"go.fd.io/govpp/binapi/ip_types"
)

// StatsSource is the slice of govpp's adapter.StatsAPI a scrape needs.
// *statsclient.StatsClient satisfies it once connected.
type StatsSource interface {
	DumpStats(patterns ...string) ([]adapter.StatEntry, error)
	Disconnect() error
}

// StatsDialer opens the stats socket. It is called on every (re)connect.
type StatsDialer func(ctx context.Context) (StatsSource, error)

// Counters implements Dataplane.
func (g *Govpp) Counters() *Counters { return g.counters.Load() }

// dumpWithRetry retries a stats read that raced with VPP rewriting the
// directory.
func dumpWithRetry(s StatsSource, patterns ...string) ([]adapter.StatEntry, error) {
	var err error
	for range 5 {
		var entries []adapter.StatEntry
		entries, err = s.DumpStats(patterns...)
		if !errors.Is(err, adapter.ErrStatsDataBusy) {
			return entries, err
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil, err
}

// scrape reads counters once and publishes a snapshot: one CLI call for
// pool indices and flows (and the packet counters without stats), one
// stats dump, and a route lookup for VIP prefixes not seen yet.
func (g *Govpp) scrape(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.conn == nil {
		return ErrNotConnected
	}
	vips, err := readVIPs(ctx, g)
	if err != nil {
		g.tel.scrape("error")
		return fmt.Errorf("scrape: %w", err)
	}
	var set statSet
	g.redialStatsLocked(ctx)
	fromText := g.stats == nil
	if g.stats != nil {
		entries, err := dumpWithRetry(g.stats, statsPatterns()...)
		if err != nil {
			g.log.Warn("vpp stats dump failed, using CLI counters", "reason", err.Error())
			fromText = true
			if errors.Is(err, adapter.ErrStatsDisconnected) {
				_ = g.stats.Disconnect()
				g.stats = nil // dialled again on the next scrape
			}
		} else {
			set = pickStats(entries)
		}
	}
	obs := make([]vipObs, 0, len(vips))
	texts := make(map[VIPKey][4]uint64, len(vips))
	// The boot time read with these counters (zero without a stats
	// socket) tells a VPP restart from a mere reconnect.
	boot := bootTimeOf(set.bootTime)
	for _, v := range vips {
		st := statusOf(v)
		o := vipObs{key: st.Key, bootTime: boot, lbIndex: int(v.Index), epoch: g.epoch[st.Key],
			adopted: g.epoch[st.Key] == 0, routeIndex: -1, lbKnown: true}
		if !fromText {
			o.routeIndex = g.routeIndexLocked(ctx, st.Key.Prefix)
			o.routeKnown = o.routeIndex >= 0
		} else {
			texts[st.Key] = v.Counters
			o.lbText = true
		}
		o.flows = make(map[netip.Addr]uint64, len(v.ASes))
		for _, as := range v.ASes {
			o.flows[as.Addr] = as.Flows
		}
		obs = append(obs, o)
	}
	snap := g.tracker.snapshotWith(time.Now(), set, obs, texts)
	g.counters.Store(snap)
	g.tel.scrape("ok")
	return nil
}

// RestoreCounters continues the totals of a previous process (the Base of
// each VIP in its last snapshot) so that an agent restart neither loses
// nor re-reports what VPP counted. Call it before Run: keys this process
// has already scraped keep their own totals and are returned in an error.
func (g *Govpp) RestoreCounters(bases map[VIPKey]CounterBase) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if skipped := g.tracker.restore(bases); len(skipped) > 0 {
		return fmt.Errorf("vpp counters of %d VIPs already read, not restored (first %v)", len(skipped), skipped[0])
	}
	return nil
}

// redialStatsLocked retries a stats socket that was unavailable or lost.
func (g *Govpp) redialStatsLocked(ctx context.Context) {
	if g.stats != nil || g.cfg.Stats == nil {
		return
	}
	dctx, cancel := context.WithTimeout(ctx, g.cfg.CallTimeout)
	defer cancel()
	st, err := g.cfg.Stats(dctx)
	if err != nil {
		g.log.Debug("vpp stats socket still unavailable", "reason", err.Error())
		return
	}
	g.log.Info("vpp stats socket connected")
	g.stats = st
}

// routeIndexLocked finds the FIB stats index of a VIP prefix (cached per
// generation and VIP re-creation); -1 when VPP does not know the route.
func (g *Govpp) routeIndexLocked(ctx context.Context, p netip.Prefix) int {
	if i, ok := g.routeIndex[p]; ok {
		return i
	}
	reply := &ip.IPRouteLookupReply{}
	err := g.invoke(ctx, g.conn, &ip.IPRouteLookup{TableID: 0, Exact: 1,
		Prefix: ip_types.Prefix{Address: toAddress(p.Addr()), Len: uint8(p.Bits())}}, reply)
	if err != nil {
		g.log.Debug("vpp route lookup failed", "prefix", p.String(), "reason", err.Error())
		return -1
	}
	i := int(reply.Route.StatsIndex)
	g.routeIndex[p] = i
	return i
}
