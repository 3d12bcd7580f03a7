package vpp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.fd.io/govpp/adapter"
	"go.fd.io/govpp/adapter/socketclient"
	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/ip"
	"go.fd.io/govpp/binapi/ip_types"
	"go.fd.io/govpp/binapi/lb"
	"go.fd.io/govpp/binapi/memclnt"
	"go.fd.io/govpp/binapi/vlib"
	"go.fd.io/govpp/binapi/vpe"
	"go.fd.io/govpp/core"
)

// StatsSource is the slice of govpp's adapter.StatsAPI a scrape needs.
// *statsclient.StatsClient satisfies it once connected.
type StatsSource interface {
	DumpStats(patterns ...string) ([]adapter.StatEntry, error)
	Disconnect() error
}

// StatsDialer opens the stats socket. It is called on every (re)connect.
type StatsDialer func(ctx context.Context) (StatsSource, error)

// GovppConfig configures a Govpp dataplane. Zero values take the defaults
// given with each field.
type GovppConfig struct {
	// APISocket is VPP's binary API socket. Default /run/vpp/api.sock.
	APISocket string
	// ClientName shows in `show api clients`. Default "amphora-agent".
	ClientName string
	// Dialect is "auto" (default), "binapi" or "cli". Auto picks the
	// binary API only on lb API >= 1.2.0 (see selectDialect).
	Dialect string
	// Stats opens the stats socket. Nil: the lb packet counters are read
	// from `show lb vips verbose` instead, and there are no route counters
	// and no boot time.
	Stats StatsDialer
	// PingInterval is how often the connection is checked. Default 5 s.
	PingInterval time.Duration
	// ScrapeInterval is how often counters are read. Default 5 s.
	ScrapeInterval time.Duration
	// CallTimeout bounds every VPP call whose context has no earlier
	// deadline, the ping included. Default 5 s.
	CallTimeout time.Duration
	// ReconnectMin and ReconnectMax bound the reconnect backoff, which
	// doubles after each failed attempt. Defaults 250 ms and 10 s.
	ReconnectMin, ReconnectMax time.Duration
	// Logger receives the layer's events. Default slog.Default().
	Logger *slog.Logger
	// NewAdapter builds the binary API adapter for one connection attempt.
	// Default: socketclient on APISocket. Tests inject govpp's mock.
	NewAdapter func() adapter.VppAPI
}

func (c GovppConfig) withDefaults() GovppConfig {
	if c.APISocket == "" {
		c.APISocket = adapter.DefaultBinapiSocket
	}
	if c.ClientName == "" {
		c.ClientName = "amphora-agent"
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 5 * time.Second
	}
	if c.ScrapeInterval <= 0 {
		c.ScrapeInterval = 5 * time.Second
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = 5 * time.Second
	}
	if c.ReconnectMin <= 0 {
		c.ReconnectMin = 250 * time.Millisecond
	}
	if c.ReconnectMax < c.ReconnectMin {
		c.ReconnectMax = max(10*time.Second, c.ReconnectMin)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.NewAdapter == nil {
		path, name := c.APISocket, c.ClientName
		c.NewAdapter = func() adapter.VppAPI {
			sc := socketclient.NewVppClient(path)
			sc.SetClientName(name)
			return sc
		}
	}
	return c
}

// Govpp is the Dataplane on a real VPP. Call Run to start its supervisor:
// one goroutine that owns the API and stats sockets, pings VPP, reconnects
// forever with backoff, re-pushes the desired state after every reconnect
// or VPP restart, and scrapes counters.
type Govpp struct {
	cfg GovppConfig
	log *slog.Logger

	// mu serialises every write sequence, re-push and scrape, and guards
	// the fields below it.
	mu          sync.Mutex
	conn        api.Connection
	stats       StatsSource
	prog        programmer
	generation  uint64
	bootTime    time.Time
	desiredConf *Conf
	desired     map[VIPKey]VIP
	removals    map[VIPKey]bool      // removed while disconnected, to delete on the next push
	epoch       map[VIPKey]uint64    // bumped on every add/del of the VIP
	routeIndex  map[netip.Prefix]int // FIB stats index per VIP prefix, this generation
	tracker     *counterTracker

	state    atomic.Pointer[State]
	counters atomic.Pointer[Counters]
	tel      *telemetry
	kick     chan struct{}
	running  atomic.Bool
}

var _ Dataplane = (*Govpp)(nil)

// NewGovpp builds a Govpp. It does not connect: call Run.
func NewGovpp(cfg GovppConfig) (*Govpp, error) {
	cfg = cfg.withDefaults()
	if _, err := selectDialect(cfg.Dialect, nil, nil); err != nil {
		return nil, fmt.Errorf("vpp config: %w", err)
	}
	g := &Govpp{
		cfg:        cfg,
		log:        cfg.Logger.With("component", "vpp"),
		desired:    make(map[VIPKey]VIP),
		removals:   make(map[VIPKey]bool),
		epoch:      make(map[VIPKey]uint64),
		routeIndex: make(map[netip.Prefix]int),
		tracker:    newCounterTracker(),
		tel:        newTelemetry(),
		kick:       make(chan struct{}, 1),
	}
	g.state.Store(&State{})
	return g, nil
}

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

// pushAllLocked re-applies the whole desired state, in key order.
func (g *Govpp) pushAllLocked(ctx context.Context) error {
	g.tel.repush()
	var errs []error
	if g.desiredConf != nil {
		if err := g.prog.conf(ctx, *g.desiredConf); err != nil {
			errs = append(errs, fmt.Errorf("lb conf: %w", err))
			if isTransport(err) {
				return errors.Join(errs...)
			}
		}
	}
	if len(g.desired) == 0 && len(g.removals) == 0 {
		return errors.Join(errs...)
	}
	actual, err := g.actualLocked(ctx)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, k := range slices.SortedFunc(maps.Keys(g.removals), compareKeys) {
		have, ok := actual[k]
		if ok {
			v := VIP{Key: k, Encap: have.Encap, SrcIPSticky: have.SrcIPSticky, FlowTableLength: have.FlowTableLength}
			if err := g.applyLocked(ctx, v, planRemove(&have)); err != nil {
				errs = append(errs, fmt.Errorf("remove vip %v: %w", k, err))
				if isTransport(err) {
					return errors.Join(errs...)
				}
				continue
			}
			g.tel.removed()
		}
		delete(g.removals, k)
	}
	keys := slices.SortedFunc(maps.Keys(g.desired), compareKeys)
	for _, k := range keys {
		v := g.desired[k]
		var have *VIPStatus
		if st, ok := actual[k]; ok {
			have = &st
		}
		ops, res := planSync(v, have, g.prog.weighted())
		if err := g.applyLocked(ctx, v, ops); err != nil {
			errs = append(errs, fmt.Errorf("re-push vip %v: %w", k, err))
			if isTransport(err) {
				break
			}
		}
		g.tel.sync(res)
	}
	return errors.Join(errs...)
}

// actualLocked reads every VIP VPP has, by key.
func (g *Govpp) actualLocked(ctx context.Context) (map[VIPKey]VIPStatus, error) {
	vips, err := readVIPs(ctx, g)
	if err != nil {
		return nil, err
	}
	m := make(map[VIPKey]VIPStatus, len(vips))
	for _, v := range vips {
		st := statusOf(v)
		m[st.Key] = st
	}
	return m, nil
}

// applyLocked runs a plan for VIP v, stopping at the first error.
func (g *Govpp) applyLocked(ctx context.Context, v VIP, ops []op) error {
	for _, o := range ops {
		var err error
		switch o.kind {
		// The epoch marks a VIP whose counters VPP started again from
		// zero; only a change VPP confirmed moves it, since counting a
		// VIP that kept its counters as new would count them twice.
		case opAddVIP:
			err = g.prog.addVIP(ctx, v)
			if err == nil {
				g.epoch[v.Key]++
			}
			delete(g.routeIndex, v.Key.Prefix)
		case opDelVIP:
			err = g.prog.delVIP(ctx, v)
			if err == nil {
				g.epoch[v.Key]++
			}
			delete(g.routeIndex, v.Key.Prefix)
		case opAddAS:
			err = g.prog.addAS(ctx, v.Key, o.addr, o.weight)
		case opDelAS:
			err = g.prog.delAS(ctx, v.Key, o.addr, o.flush)
		case opSetWeight:
			err = g.prog.setWeight(ctx, v.Key, o.addr, o.weight, o.flush)
		}
		if err != nil {
			return fmt.Errorf("%v: %w", o, err)
		}
	}
	return nil
}

func (g *Govpp) notConnected(what string) error {
	return fmt.Errorf("%s: %w", what, ErrNotConnected)
}

// Configure implements Dataplane.
func (g *Govpp) Configure(ctx context.Context, c Conf) error {
	c, err := c.withDefaults()
	if err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	prev := g.desiredConf
	g.desiredConf = &c
	if g.prog == nil {
		return g.notConnected("lb conf")
	}
	if err := g.prog.conf(ctx, c); err != nil {
		if !isTransport(err) {
			g.desiredConf = prev
		}
		return fmt.Errorf("lb conf: %w", err)
	}
	return nil
}

// SyncVIP implements Dataplane.
func (g *Govpp) SyncVIP(ctx context.Context, v VIP) (SyncResult, error) {
	v, err := v.Validate()
	if err != nil {
		return SyncResult{}, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	prev, hadPrev := g.desired[v.Key]
	g.desired[v.Key] = v
	delete(g.removals, v.Key)
	if g.prog == nil {
		return SyncResult{}, g.notConnected("sync vip " + v.Key.String())
	}
	actual, err := g.actualLocked(ctx)
	if err != nil {
		return SyncResult{}, fmt.Errorf("sync vip %v: %w", v.Key, err)
	}
	var have *VIPStatus
	if st, ok := actual[v.Key]; ok {
		have = &st
	}
	ops, res := planSync(v, have, g.prog.weighted())
	if err := g.applyLocked(ctx, v, ops); err != nil {
		if errors.Is(err, ErrExists) || errors.Is(err, ErrInvalid) {
			// VPP refused the VIP itself: do not keep re-pushing it.
			if hadPrev {
				g.desired[v.Key] = prev
			} else {
				delete(g.desired, v.Key)
			}
		}
		return res, fmt.Errorf("sync vip %v: %w", v.Key, err)
	}
	g.tel.sync(res)
	if res.Changed() {
		g.log.Info("vip synced", "vip", v.Key.String(), "created", res.Created, "recreated", res.Recreated,
			"added", res.Added, "removed", res.Removed, "reweighted", res.Reweighted)
	}
	return res, nil
}

// RemoveVIP implements Dataplane.
func (g *Govpp) RemoveVIP(ctx context.Context, k VIPKey) error {
	k = k.normalize()
	g.mu.Lock()
	defer g.mu.Unlock()
	v, wasDesired := g.desired[k]
	delete(g.desired, k)
	if g.prog == nil {
		// Remembered and done on the next connection.
		g.removals[k] = true
		if !wasDesired {
			return fmt.Errorf("remove vip %v: %w", k, ErrNotFound)
		}
		return g.notConnected("remove vip " + k.String())
	}
	actual, err := g.actualLocked(ctx)
	if err != nil {
		return fmt.Errorf("remove vip %v: %w", k, err)
	}
	have, ok := actual[k]
	if !ok {
		if wasDesired {
			return nil
		}
		return fmt.Errorf("remove vip %v: %w", k, ErrNotFound)
	}
	if !wasDesired {
		v = VIP{Key: k, Encap: have.Encap, SrcIPSticky: have.SrcIPSticky, FlowTableLength: have.FlowTableLength}
	}
	if err := g.applyLocked(ctx, v, planRemove(&have)); err != nil {
		return fmt.Errorf("remove vip %v: %w", k, err)
	}
	g.tel.removed()
	g.log.Info("vip removed", "vip", k.String())
	return nil
}

// SetWeight implements Dataplane.
func (g *Govpp) SetWeight(ctx context.Context, k VIPKey, backend netip.Addr, weight uint8, flush bool) error {
	k = k.normalize()
	if weight > MaxWeight {
		return fmt.Errorf("set weight %v %v: weight %d > %d: %w", k, backend, weight, MaxWeight, ErrInvalid)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	v, desired := g.desired[k]
	bi := -1
	if desired {
		bi = slices.IndexFunc(v.Backends, func(b Backend) bool { return b.Addr == backend })
	}
	if g.prog == nil {
		if bi < 0 {
			return fmt.Errorf("set weight %v %v: %w", k, backend, ErrNotFound)
		}
		g.updateDesiredWeight(k, bi, weight, flush)
		return g.notConnected("set weight " + k.String())
	}
	actual, err := g.actualLocked(ctx)
	if err != nil {
		return fmt.Errorf("set weight %v %v: %w", k, backend, err)
	}
	have, vipExists := actual[k]
	var cur *BackendStatus
	if vipExists {
		for i := range have.Backends {
			if have.Backends[i].Addr == backend {
				cur = &have.Backends[i]
			}
		}
	}
	if !vipExists || (cur == nil && bi < 0) {
		if bi >= 0 {
			// Desired but absent from VPP (an earlier push failed): the
			// next push uses the new weight.
			g.updateDesiredWeight(k, bi, weight, flush)
		}
		return fmt.Errorf("set weight %v %v: %w", k, backend, ErrNotFound)
	}
	if !desired {
		v = VIP{Key: k, Encap: have.Encap, SrcIPSticky: have.SrcIPSticky, FlowTableLength: have.FlowTableLength}
	}
	ops := planWeight(backend, cur, weight, flush, g.prog.weighted())
	if err := g.applyLocked(ctx, v, ops); err != nil {
		return fmt.Errorf("set weight %v %v: %w", k, backend, err)
	}
	if bi >= 0 {
		g.updateDesiredWeight(k, bi, weight, flush)
	}
	if len(ops) > 0 {
		g.tel.sync(SyncResult{Reweighted: 1})
		g.log.Info("backend weight set", "vip", k.String(), "backend", backend.String(), "weight", weight, "flush", flush)
	}
	return nil
}

func (g *Govpp) updateDesiredWeight(k VIPKey, i int, weight uint8, flush bool) {
	v := g.desired[k]
	v.Backends = slices.Clone(v.Backends)
	v.Backends[i].Weight, v.Backends[i].Flush = weight, flush
	g.desired[k] = v
}

// VIPs implements Dataplane.
func (g *Govpp) VIPs(ctx context.Context) ([]VIPStatus, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.prog == nil {
		return nil, g.notConnected("list vips")
	}
	actual, err := g.actualLocked(ctx)
	if err != nil {
		return nil, err
	}
	out := slices.Collect(maps.Values(actual))
	slices.SortFunc(out, func(a, b VIPStatus) int { return compareKeys(a.Key, b.Key) })
	return out, nil
}

// Counters implements Dataplane.
func (g *Govpp) Counters() *Counters { return g.counters.Load() }

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

// --- transport: every VPP call is logged at debug level and counted ---

// call implements caller for the programmers.
func (g *Govpp) call(ctx context.Context, req, reply api.Message) error {
	if g.conn == nil {
		return ErrNotConnected
	}
	return g.invoke(ctx, g.conn, req, reply)
}

// cli implements caller: one cli_inband command.
func (g *Govpp) cli(ctx context.Context, cmd string) (string, error) {
	if g.conn == nil {
		return "", ErrNotConnected
	}
	reply := &vlib.CliInbandReply{}
	if err := g.invokeCmd(ctx, g.conn, &vlib.CliInband{Cmd: cmd}, reply, cmd); err != nil {
		return "", err
	}
	return reply.Reply, nil
}

func (g *Govpp) invoke(ctx context.Context, conn api.Connection, req, reply api.Message) error {
	return g.invokeCmd(ctx, conn, req, reply, "")
}

func (g *Govpp) invokeCmd(ctx context.Context, conn api.Connection, req, reply api.Message, cmd string) error {
	ctx, cancel := context.WithTimeout(ctx, g.cfg.CallTimeout)
	defer cancel()
	start := time.Now()
	err := conn.Invoke(ctx, req, reply)
	if err == nil {
		err = retvalError(reply)
	}
	err = wrapVPP(err)
	result := "ok"
	switch {
	case err == nil:
	case errors.As(err, new(api.VPPApiError)):
		result = "vpp_error"
	default:
		result = "transport_error"
		select {
		case g.kick <- struct{}{}:
		default:
		}
	}
	name := req.GetMessageName()
	g.tel.call(name, result)
	if g.log.Enabled(ctx, slog.LevelDebug) {
		attrs := []any{"msg", name, "result", result, "duration", time.Since(start)}
		if cmd != "" {
			attrs = append(attrs, "cmd", cmd)
		}
		if err != nil {
			attrs = append(attrs, "error", err.Error())
		}
		g.log.Debug("vpp call", attrs...)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// retvalError turns a reply's non-zero Retval into an api.VPPApiError.
func retvalError(reply api.Message) error {
	v := reflect.ValueOf(reply)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return nil
	}
	f := v.Elem().FieldByName("Retval")
	if !f.IsValid() || f.Kind() != reflect.Int32 {
		return nil
	}
	return api.RetvalToVPPApiError(int32(f.Int()))
}

// isTransport reports whether err means the connection is unusable (as
// opposed to VPP refusing a request).
func isTransport(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrNotConnected) {
		return true
	}
	if errors.As(err, new(api.VPPApiError)) {
		return false
	}
	for _, s := range []error{ErrExists, ErrNotFound, ErrInvalid} {
		if errors.Is(err, s) {
			return false
		}
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, core.ErrNotConnected) ||
		strings.Contains(err.Error(), "reply channel closed") || strings.Contains(err.Error(), "broken pipe") ||
		strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "use of closed")
}
