package agent

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/heartbeat/udp"
	"github.com/octavia-vpp/health/vpp"
)

// Options configures an Agent.
type Options struct {
	// Config is the loaded amphora-agent.conf. Required.
	Config *Config
	// Dataplane is the VPP layer (vpp.Govpp or the simulator). Required.
	Dataplane vpp.Dataplane
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Registry receives the agent's metrics; nil registers nothing.
	Registry prometheus.Registerer
	// Prober runs one probe; default Probe.
	Prober func(context.Context, ProbeSpec) error
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Jitter is the spread of probe intervals (default 0.1 = ±10%).
	Jitter float64
	// Tick is the period of the housekeeping loop: warm-up, marks, LB file
	// changes, VPP generation (default 250ms).
	Tick time.Duration
}

// memberState is one member's checker.
type memberState struct {
	spec    ProbeSpec
	iv      Intervals
	health  Health
	lastErr string
	cancel  context.CancelFunc
}

// Agent is the amphora agent: it reconciles the LB description to VPP,
// health-checks members and sends heartbeats.
type Agent struct {
	cfg    *Config
	dp     vpp.Dataplane
	log    *slog.Logger
	now    func() time.Time
	probe  func(context.Context, ProbeSpec) error
	jitter float64
	tick   time.Duration
	warmup Warmup
	start  time.Time

	keyring *heartbeat.Keyring
	sender  *udp.Sender
	// boot is drawn at each start and sent as "boot" with every
	// heartbeat, so that the controller's replay guard can tell a restart,
	// which begins seq at 0 again, from a replay.
	boot   string
	sensor *Sensor
	spool  Spool
	m      *metrics

	kick   chan struct{}
	reload chan chan error
	// ready: READY=1 went to systemd; watchdog pings only follow it.
	ready atomic.Bool

	mu             sync.Mutex
	runCtx         context.Context
	lb             *LB
	lbStamp        fileStamp
	members        map[string]*memberState
	marks          []Mark
	released       map[vpp.VIPKey]bool
	pushed         map[vpp.VIPKey]vpp.VIP
	syncErrs       map[vpp.VIPKey]string // last error per VIP, to log each once
	listenerStates map[string]ListenerState
	counters       *CounterFile
	lastStats      map[string]heartbeat.Stats
	seq            int64
	warm           bool
	configured     bool
	// withheld: the last heartbeat left VPP's listeners out.
	withheld bool
}

type fileStamp struct {
	mod  time.Time
	size int64
}

// New builds an agent. It does not touch the network or VPP.
func New(o Options) (*Agent, error) {
	if o.Config == nil || o.Dataplane == nil {
		return nil, errors.New("agent: Config and Dataplane are required")
	}
	a := &Agent{
		cfg: o.Config, dp: o.Dataplane, log: o.Logger, now: o.Now, probe: o.Prober,
		jitter: o.Jitter, tick: o.Tick,
		kick: make(chan struct{}, 1), reload: make(chan chan error),
		members: map[string]*memberState{}, released: map[vpp.VIPKey]bool{},
		pushed: map[vpp.VIPKey]vpp.VIP{}, syncErrs: map[vpp.VIPKey]string{}, listenerStates: map[string]ListenerState{},
		lastStats: map[string]heartbeat.Stats{},
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.probe == nil {
		a.probe = Probe
	}
	if a.jitter == 0 {
		a.jitter = 0.1
	}
	if a.tick <= 0 {
		a.tick = 250 * time.Millisecond
	}
	a.warmup = Warmup{MinDelay: a.cfg.VPP.StartupMinDelay, MaxDelay: a.cfg.VPP.StartupMaxDelay}
	kr, err := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{a.cfg.HeartbeatKey}})
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	a.keyring = kr
	var b [16]byte
	if _, err := crand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("agent: boot id: %w", err)
	}
	a.boot = hex.EncodeToString(b[:])
	a.sender, err = udp.NewSender(udp.SenderConfig{Controllers: a.cfg.Controllers, Logger: a.log})
	if err != nil {
		// every bad entry is named; the good ones are used
		a.log.Error("bad controller entries", "reason", err.Error())
	}
	a.sensor = NewSensor(SensorLimits{
		HeartbeatInterval: a.cfg.HeartbeatInterval,
		VPPUnreachable:    a.cfg.VPPUnreachableLimit,
		ShutdownTimeout:   a.cfg.ShutdownTimeout,
	}, a.now)
	a.spool = Spool{Dir: a.cfg.SpoolDir}
	a.start = a.now()
	a.m = newMetrics(a)
	a.loadCounters(o.Dataplane)
	if o.Registry != nil {
		if err := a.m.register(o.Registry); err != nil {
			return nil, fmt.Errorf("agent metrics: %w", err)
		}
	}
	return a, nil
}

// Sensor returns the self-health sensor.
func (a *Agent) Sensor() *Sensor { return a.sensor }

// Spool returns the marks spool.
func (a *Agent) Spool() Spool { return a.spool }

// Sender returns the heartbeat sender.
func (a *Agent) Sender() *udp.Sender { return a.sender }

// Reload re-reads the LB description now (SIGHUP). An invalid file keeps
// the running one and is returned as the error.
func (a *Agent) Reload(ctx context.Context) error {
	ch := make(chan error, 1)
	select {
	case a.reload <- ch:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SetControllers replaces the controller list (re-resolved when changed).
func (a *Agent) SetControllers(entries []string) error { return a.sender.SetControllers(entries) }

// SetHeartbeatKey replaces the key heartbeats are sealed with (SIGHUP
// after the config file changed).
func (a *Agent) SetHeartbeatKey(key string) error {
	kr, err := heartbeat.NewKeyring(heartbeat.KeyringConfig{Keys: []string{key}})
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.keyring = kr
	a.mu.Unlock()
	return nil
}

// Kick asks the loop to reconcile now (after a mark changed, for example).
func (a *Agent) Kick() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// Run runs the agent until ctx ends: reconcile, probes, heartbeats. It
// returns nil on a normal shutdown.
func (a *Agent) Run(ctx context.Context) error {
	a.mu.Lock()
	a.runCtx = ctx
	a.mu.Unlock()
	a.log.Info("agent starting", "amphora_id", a.cfg.AmphoraID, "controllers", len(a.cfg.Controllers),
		"heartbeat_interval", a.cfg.HeartbeatInterval, "lb_config_file", a.cfg.VPP.LBConfigFile)
	a.loadLB(false)
	a.refreshMarks()
	// Heartbeats run on their own goroutine: VPP programming below may
	// wait on VPP (5 s per call), and whether this amphora is healthy must
	// never be decided by how long that takes (docs/agent.md, heartbeats).
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		a.heartbeatLoop(ctx)
	}()
	a.configure(ctx)

	tick := time.NewTicker(a.tick)
	defer tick.Stop()
	full := time.NewTicker(a.cfg.VPP.SyncInterval)
	defer full.Stop()
	wd := WatchdogInterval()
	var lastWD time.Time
	var lastGen uint64
	for {
		select {
		case <-ctx.Done():
			<-hbDone
			a.shutdown()
			return nil
		case <-tick.C:
			if a.lbFileChanged() {
				a.loadLB(false)
			}
			a.refreshMarks()
			if !a.configured {
				a.configure(ctx)
			}
			a.observeVPP()
			if st := a.dp.State(); st.Generation != lastGen {
				// The layer has re-pushed the desired state; resync
				// so that anything changed meanwhile is applied.
				lastGen = st.Generation
				a.sync(ctx, true)
			} else {
				a.sync(ctx, false)
			}
			h := a.sensor.Health()
			a.m.setHealthy(h.Healthy)
			if wd > 0 && h.Healthy && a.ready.Load() && a.now().Sub(lastWD) >= wd {
				lastWD = a.now()
				if _, err := Notify("WATCHDOG=1"); err != nil {
					a.log.Warn("sd_notify failed", "reason", err.Error())
				}
			}
		case <-a.kick:
			a.refreshMarks()
			a.sync(ctx, false)
		case <-full.C:
			a.sync(ctx, true)
		case ch := <-a.reload:
			ch <- a.loadLB(true)
			a.sync(ctx, false)
		}
	}
}

// heartbeatLoop sends heartbeats every heartbeat_interval once warm. It
// makes no VPP call and takes no lock that is held across one: the message
// is built from the dataplane's last published state and counters.
func (a *Agent) heartbeatLoop(ctx context.Context) {
	wait := time.NewTicker(a.tick)
	for !a.isWarm() && a.now().Sub(a.start) < a.warmup.MaxDelay {
		select {
		case <-ctx.Done():
			wait.Stop()
			return
		case <-wait.C:
		}
	}
	wait.Stop()
	a.heartbeat(ctx)
	// Ready for systemd (Type=notify) once warm: VPP has been given what
	// the description says and the first heartbeat has gone out. Warm-up
	// ends by startup_max_delay even without VPP, so start-up never waits
	// longer than that.
	if _, err := Notify("READY=1"); err != nil {
		a.log.Warn("sd_notify failed", "reason", err.Error())
	}
	a.ready.Store(true)
	hb := time.NewTicker(a.cfg.HeartbeatInterval)
	defer hb.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hb.C:
			a.heartbeat(ctx)
		}
	}
}

// observeVPP records VPP as reachable now when the dataplane says it is
// connected. The dataplane's own LastContact only moves at each ping, so
// it would make a connected VPP look silent for up to a ping interval.
func (a *Agent) observeVPP() {
	if a.dp.State().Connected {
		a.sensor.VPPContact(a.now())
	}
}

// neverReached is the silence of a VPP this process has never seen
// connected: past any limit.
const neverReached = time.Duration(math.MaxInt64)

// vppSilence is how long VPP has not been seen connected.
//
// An agent that has not reached VPP since it started has no state to
// report, so its silence is unbounded, as Octavia's agent reports no
// listener until HAProxy runs. Counting from the start instead would let
// a dead dataplane escape failover: the systemd watchdog stops once VPP
// is unreachable past the limit, and each restarted agent would report
// the listeners again for another vpp_unreachable_limit, refreshing
// amphora_health before heartbeat_timeout ran out.
func (a *Agent) vppSilence() time.Duration {
	a.observeVPP()
	last := a.sensor.Record().LastVPP
	if last.IsZero() {
		return neverReached
	}
	return max(a.now().Sub(last), 0)
}

// reportDataplane decides whether a heartbeat carries the listeners VPP
// serves: it does while VPP has been silent for at most limit, reporting
// the last known state. Past the limit they are left out, as Octavia's
// agent leaves out the listeners of a load balancer whose HAProxy is not
// running: the manager then marks them ERROR, stops refreshing
// amphora_health because the listener count differs, and fails the
// amphora over after heartbeat_timeout.
func reportDataplane(silence, limit time.Duration) bool {
	return silence <= limit
}

// reportedPlans returns the plans a heartbeat reports: every one while
// VPP counts as reachable, else only those whose traffic does not go
// through VPP (a listener without a VIP).
func reportedPlans(plans []listenerPlan, silence, limit time.Duration) []listenerPlan {
	if reportDataplane(silence, limit) {
		return plans
	}
	var out []listenerPlan
	for _, lp := range plans {
		if len(lp.vips) == 0 {
			out = append(out, lp)
		}
	}
	return out
}

func (a *Agent) shutdown() {
	a.sensor.ShuttingDown()
	_, _ = Notify("STOPPING=1")
	a.mu.Lock()
	for id, ms := range a.members {
		ms.cancel()
		delete(a.members, id)
	}
	a.mu.Unlock()
	a.sender.Close()
	a.log.Info("agent stopped")
}

func (a *Agent) configure(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := a.dp.Configure(cctx, a.cfg.LBConf()); err != nil {
		// desired state is remembered; it is applied on reconnect
		a.log.Warn("lb conf not applied", "reason", err.Error())
		if !errors.Is(err, vpp.ErrNotConnected) {
			return
		}
	}
	a.configured = true
}

func (a *Agent) lbFileChanged() bool {
	fi, err := os.Stat(a.cfg.VPP.LBConfigFile)
	if err != nil {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return fi.ModTime() != a.lbStamp.mod || fi.Size() != a.lbStamp.size
}

// loadLB reads and applies the LB description. An invalid file keeps the
// running description.
func (a *Agent) loadLB(explicit bool) error {
	path := a.cfg.VPP.LBConfigFile
	fi, statErr := os.Stat(path)
	lb, err := LoadLB(path, a.cfg.VPP.Encap)
	a.mu.Lock()
	if statErr == nil {
		a.lbStamp = fileStamp{mod: fi.ModTime(), size: fi.Size()}
	}
	a.mu.Unlock()
	if err != nil {
		a.m.reloads.WithLabelValues("invalid").Inc()
		a.mu.Lock()
		running := a.lb != nil
		a.mu.Unlock()
		a.log.Error("lb description rejected", "path", path, "reason", err.Error(), "keeping_running", running)
		a.sensor.ConfigRejected(err.Error())
		return err
	}
	a.m.reloads.WithLabelValues("ok").Inc()
	a.applyLB(lb)
	a.sensor.ConfigLoaded()
	a.log.Info("lb description loaded", "path", path, "loadbalancer_id", lb.ID,
		"listeners", len(lb.Listeners), "pools", len(lb.Pools), "explicit", explicit)
	return nil
}

// applyLB installs a description: probers of unchanged members keep
// running (and their state); new, changed or re-enabled ones start over
// at rise-1.
func (a *Agent) applyLB(lb *LB) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lb = lb
	keep := map[string]bool{}
	for i := range lb.Pools {
		pl := &lb.Pools[i]
		hm := pl.HealthMonitor
		if !pl.IsEnabled() || !hm.IsEnabled() {
			continue
		}
		for j := range pl.Members {
			m := &pl.Members[j]
			if !m.IsEnabled() {
				continue
			}
			spec, iv := SpecFor(hm, m), hm.Intervals()
			if old := a.members[m.ID]; old != nil {
				if old.spec == spec && old.iv == iv && old.health.Rise == max(hm.Rise(), 1) && old.health.Fall == max(hm.Fall(), 1) {
					keep[m.ID] = true
					continue
				}
				old.cancel()
			}
			ms := &memberState{spec: spec, iv: iv, health: NewHealth(hm.Rise(), hm.Fall())}
			ctx := a.runCtx
			if ctx == nil {
				ctx = context.Background()
			}
			pctx, cancel := context.WithCancel(ctx)
			ms.cancel = cancel
			a.members[m.ID] = ms
			keep[m.ID] = true
			go a.runProber(pctx, m.ID, ms)
		}
	}
	for id, ms := range a.members {
		if !keep[id] {
			ms.cancel()
			delete(a.members, id)
		}
	}
}

func (a *Agent) runProber(ctx context.Context, id string, ms *memberState) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		timeout := ms.spec.Timeout
		if timeout <= 0 {
			timeout = 5 * time.Second
		}
		pctx, cancel := context.WithTimeout(ctx, timeout)
		err := a.probe(pctx, ms.spec)
		cancel()
		if ctx.Err() != nil {
			return
		}
		next := a.observe(id, ms, err)
		timer.Reset(Jitter(next, a.jitter, rand.Float64()))
	}
}

// observe applies a probe result and returns the wait before the next one.
func (a *Agent) observe(id string, ms *memberState, err error) time.Duration {
	result := "pass"
	if err != nil {
		result = "fail"
		if errors.Is(err, ErrPingPermission) {
			a.log.Error("probe cannot run", "member_id", id, "reason", err.Error())
		}
	}
	a.m.probes.WithLabelValues(ms.spec.Type, result).Inc()
	a.mu.Lock()
	if a.members[id] != ms {
		a.mu.Unlock()
		return time.Hour // replaced; the context is cancelled
	}
	before := ms.health.Status()
	var changed bool
	ms.health, changed = ms.health.Observe(err == nil)
	ms.lastErr = ""
	if err != nil {
		ms.lastErr = err.Error()
	}
	after := ms.health.Status()
	next := ms.iv.Next(ms.health)
	a.mu.Unlock()
	if changed {
		to := "down"
		if ms.health.Up() {
			to = "up"
		}
		a.m.memberTransitions.WithLabelValues(to).Inc()
		a.log.Info("member state", "member_id", id, "from", before, "to", after, "reason", ms.lastErr)
		a.Kick()
	} else if before != after {
		a.log.Debug("member check", "member_id", id, "from", before, "to", after, "reason", ms.lastErr)
	}
	return next
}

func (a *Agent) refreshMarks() {
	marks, err := a.spool.List(a.now())
	if err != nil {
		a.log.Warn("marks spool", "reason", err.Error())
	}
	a.mu.Lock()
	a.marks = marks
	a.mu.Unlock()
}

// listenerPlan is the plan of one enabled listener.
type listenerPlan struct {
	l       *Listener
	pool    *Pool // nil without an enabled default pool
	plan    PoolPlan
	vips    []vpp.VIP
	state   ListenerState
	hasPool bool
}

// planLocked computes every enabled listener's plan. a.mu is held.
func (a *Agent) planLocked() []listenerPlan {
	if a.lb == nil {
		return nil
	}
	now := a.now()
	var out []listenerPlan
	for i := range a.lb.Listeners {
		l := &a.lb.Listeners[i]
		if !l.IsEnabled() {
			continue
		}
		lp := listenerPlan{l: l}
		var pool *Pool
		if l.DefaultPoolID != "" {
			pool = a.lb.Pool(l.DefaultPoolID)
		}
		if pool != nil {
			lp.pool, lp.hasPool = pool, pool.IsEnabled()
			monitored := pool.HealthMonitor.IsEnabled()
			ins := make([]MemberInput, 0, len(pool.Members))
			for j := range pool.Members {
				m := &pool.Members[j]
				in := MemberInput{
					ID: m.ID, Addr: m.Addr(), Weight: MapWeight(m.OctaviaWeight()), Backup: m.Backup,
					Enabled: m.IsEnabled(), Monitored: monitored,
					Mark: EffectiveMark(a.marks, m.ID, l.ID, now),
				}
				if ms := a.members[m.ID]; ms != nil {
					in.Health = ms.health
				} else if monitored {
					in.Health = NewHealth(pool.HealthMonitor.Rise(), pool.HealthMonitor.Fall())
				}
				ins = append(ins, in)
			}
			lp.plan = PlanPool(monitored, pool.IsEnabled(), ins)
		} else {
			lp.plan = PlanPool(false, false, nil)
		}
		lp.state = ListenerStateOf(lp.hasPool, lp.plan)
		proto, _ := VPPProtocol(l.Protocol)
		sticky := pool != nil && pool.SessionPersistence != nil && pool.SessionPersistence.Type == "SOURCE_IP"
		for _, addr := range a.lb.VIPs() {
			lp.vips = append(lp.vips, vpp.VIP{
				Key:         vpp.VIPKey{Prefix: netip.PrefixFrom(addr, addr.BitLen()), Protocol: proto, Port: uint16(l.ProtocolPort)},
				Encap:       a.cfg.VPP.Encap,
				SrcIPSticky: sticky,
				Backends:    lp.plan.Backends(),
			})
		}
		out = append(out, lp)
	}
	return out
}

// sync reconciles VPP with the plan. full re-syncs every released VIP and
// removes VIPs VPP has that the description does not.
func (a *Agent) sync(ctx context.Context, full bool) {
	a.mu.Lock()
	plans := a.planLocked()
	elapsed := a.now().Sub(a.start)
	var todo []vpp.VIP
	desired := map[vpp.VIPKey]bool{}
	allReleased := a.lb != nil
	for _, lp := range plans {
		if prev, ok := a.listenerStates[lp.l.ID]; (!ok && lp.state != ListenerUnknown) || (ok && prev != lp.state) {
			a.m.listenerTransitions.WithLabelValues(lp.state.String()).Inc()
			a.log.Info("listener state", "listener_id", lp.l.ID, "from", prev.String(), "to", lp.state.String())
		}
		a.listenerStates[lp.l.ID] = lp.state
		for _, v := range lp.vips {
			nv, err := v.Validate()
			if err != nil {
				a.log.Error("vip not valid", "listener_id", lp.l.ID, "vip", v.Key.String(), "reason", err.Error())
				continue
			}
			desired[nv.Key] = true
			if !a.released[nv.Key] {
				if !a.warmup.Release(elapsed, lp.plan.AllKnown) {
					allReleased = false
					continue
				}
				a.released[nv.Key] = true
				a.log.Info("vip released from warm-up", "listener_id", lp.l.ID, "vip", nv.Key.String(),
					"elapsed", elapsed.Round(time.Millisecond), "all_known", lp.plan.AllKnown)
			}
			if old, ok := a.pushed[nv.Key]; full || !ok || !vipEqual(old, nv) {
				todo = append(todo, nv)
			}
		}
	}
	var remove []vpp.VIPKey
	for k := range a.pushed {
		if !desired[k] {
			remove = append(remove, k)
		}
	}
	if allReleased || elapsed >= a.warmup.MaxDelay {
		// Heartbeats start once warm; without any valid description they
		// start at the maximum delay (empty, so Octavia sees the count
		// mismatch rather than a silent amphora).
		a.warm = true
	}
	// Orphans are only removed with a valid description in hand: an agent
	// started with a broken file must not wipe what VPP is serving.
	removeOrphans := a.warm && a.lb != nil
	a.mu.Unlock()

	slices.SortFunc(todo, func(x, y vpp.VIP) int { return x.Key.Compare(y.Key) })
	for _, v := range todo {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		res, err := a.dp.SyncVIP(cctx, v)
		cancel()
		if err != nil {
			a.m.syncs.WithLabelValues("error").Inc()
			a.mu.Lock()
			repeated := a.syncErrs[v.Key] == err.Error()
			a.syncErrs[v.Key] = err.Error()
			a.mu.Unlock()
			if !repeated {
				a.log.Warn("vip sync failed", "vip", v.Key.String(), "reason", err.Error())
			}
			if !errors.Is(err, vpp.ErrNotConnected) {
				continue // retried on the next tick
			}
			// remembered by the layer, pushed on reconnect
		} else {
			a.m.syncs.WithLabelValues("ok").Inc()
			a.mu.Lock()
			delete(a.syncErrs, v.Key)
			a.mu.Unlock()
		}
		if res.Changed() {
			a.log.Info("vip reconciled", "vip", v.Key.String(), "added", res.Added, "removed", res.Removed,
				"reweighted", res.Reweighted, "created", res.Created, "recreated", res.Recreated)
		}
		a.mu.Lock()
		a.pushed[v.Key] = v
		a.mu.Unlock()
	}
	if full && removeOrphans {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		actual, err := a.dp.VIPs(cctx)
		cancel()
		if err == nil {
			for _, st := range actual {
				if !desired[st.Key] && !slices.Contains(remove, st.Key) {
					remove = append(remove, st.Key)
				}
			}
		}
	}
	for _, k := range remove {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := a.dp.RemoveVIP(cctx, k)
		cancel()
		if err != nil && !errors.Is(err, vpp.ErrNotFound) {
			a.log.Warn("vip removal failed", "vip", k.String(), "reason", err.Error())
			if !errors.Is(err, vpp.ErrNotConnected) {
				continue
			}
		}
		a.log.Info("vip removed", "vip", k.String())
		a.mu.Lock()
		delete(a.pushed, k)
		a.mu.Unlock()
	}
}

func vipEqual(a, b vpp.VIP) bool {
	return a.Key == b.Key && a.Encap == b.Encap && a.SrcIPSticky == b.SrcIPSticky &&
		a.FlowTableLength == b.FlowTableLength && slices.Equal(a.Backends, b.Backends)
}

func (a *Agent) isWarm() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.warm
}

// BuildHeartbeat builds the next V3 message, stamped with the time ("ts")
// and this run's boot id ("boot") after Octavia's fields. advance moves the counter
// file forward and the sequence number; without it (heartbeat --print)
// nothing is changed.
func (a *Agent) BuildHeartbeat(advance bool) (*heartbeat.Message, error) {
	snap := a.dp.Counters()
	silence := a.vppSilence()
	a.mu.Lock()
	defer a.mu.Unlock()
	all := a.planLocked()
	plans := reportedPlans(all, silence, a.cfg.VPPUnreachableLimit)
	if advance {
		a.noteWithheld(len(plans) < len(all), silence)
	}
	conns := map[string]int64{}
	lvips := make([]ListenerVIPs, 0, len(plans))
	for _, lp := range plans {
		l := ListenerVIPs{ID: lp.l.ID}
		for _, v := range lp.vips {
			l.VIPs = append(l.VIPs, v.Key)
			vc, _ := snap.VIP(v.Key)
			for _, f := range vc.Flows {
				conns[lp.l.ID] += int64(f)
			}
		}
		lvips = append(lvips, l)
	}
	step := a.counters.Advance(snap, lvips, advance)
	if advance {
		a.noteLosses(step.Lost)
	}
	msg := buildMessage(a.cfg.AmphoraID, a.seq, plans, step.Deltas, conns)
	// Octavia ignores both; the replay guard of our controller reads them.
	msg.Timestamp, msg.HasTimestamp = a.now().Unix(), true
	msg.Boot, msg.HasBoot = a.boot, true
	if advance {
		a.seq++
		for _, l := range msg.Listeners {
			a.lastStats[l.ID] = l.Stats
		}
		if err := SaveCounterFile(a.cfg.CounterFile(), a.counters); err != nil {
			return msg, err
		}
	}
	return msg, nil
}

// noteWithheld logs when heartbeats start and stop leaving the listeners
// out. a.mu is held.
func (a *Agent) noteWithheld(withheld bool, silence time.Duration) {
	if withheld == a.withheld {
		return
	}
	a.withheld = withheld
	if withheld {
		a.log.Error("vpp unreachable past vpp_unreachable_limit: heartbeats leave its listeners out, so that the amphora is failed over",
			"silence", silence.Round(time.Millisecond), "vpp_unreachable_limit", a.cfg.VPPUnreachableLimit)
	} else {
		a.log.Info("vpp reachable again: heartbeats report its listeners")
	}
}

// buildMessage assembles a V3 heartbeat from listener plans and stats
// deltas: listeners in description order with tx always 0 (VPP cannot see
// return traffic with GRE or L3DSR), pools keyed "<pool_id>:<listener_id>".
//
// A reported listener is always OPEN: a listener whose dataplane is gone is
// left out instead (reportedPlans), because Octavia's manager ignores a
// status it does not know, such as STOP, and would keep the listener ONLINE.
func buildMessage(amphoraID string, seq int64, plans []listenerPlan, deltas map[string]Sample, conns map[string]int64) *heartbeat.Message {
	msg := &heartbeat.Message{
		AmphoraID: amphoraID, Seq: seq, HasSeq: true, Version: 3, HasVersion: true,
		Listeners: []heartbeat.Listener{}, Pools: []heartbeat.Pool{},
	}
	for _, lp := range plans {
		d := deltas[lp.l.ID]
		msg.Listeners = append(msg.Listeners, heartbeat.Listener{
			ID: lp.l.ID, Status: "OPEN", HasStats: true,
			Stats: heartbeat.Stats{TX: 0, RX: d.Bin, Conns: conns[lp.l.ID], TotConns: d.Stot, EReq: d.EReq},
		})
		if lp.pool == nil {
			continue
		}
		p := heartbeat.Pool{Key: lp.pool.ID + ":" + lp.l.ID, Status: lp.plan.Status, Members: []heartbeat.Member{}}
		for _, m := range lp.plan.Members {
			p.Members = append(p.Members, heartbeat.Member{ID: m.ID, Status: m.Status})
		}
		msg.Pools = append(msg.Pools, p)
	}
	return msg
}

// heartbeat builds, seals and sends one message.
func (a *Agent) heartbeat(ctx context.Context) {
	msg, err := a.BuildHeartbeat(true)
	if err != nil {
		a.log.Warn("counter file not written", "path", a.cfg.CounterFile(), "reason", err.Error())
	}
	a.mu.Lock()
	kr := a.keyring
	a.mu.Unlock()
	datagram := kr.SealMessage(msg)
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	ctl, err := a.sender.Send(sctx, datagram)
	cancel()
	switch {
	case errors.Is(err, udp.ErrTooLarge):
		a.m.sendErrors.WithLabelValues("too_large").Inc()
		a.log.Error("heartbeat too large for a UDP datagram, not sent", "bytes", len(datagram),
			"listeners", len(msg.Listeners), "pools", len(msg.Pools))
	case err != nil:
		a.m.sendErrors.WithLabelValues("send").Inc()
		a.log.Warn("heartbeat not sent", "controller", ctl, "reason", err.Error())
	default:
		a.sensor.Sent()
		a.m.sent.WithLabelValues(ctl).Inc()
		a.log.Debug("heartbeat sent", "controller", ctl, "seq", msg.Seq, "bytes", len(datagram))
	}
}
