package agent

import (
	"bytes"
	"context"
	"errors"
	"math"
	"time"

	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/heartbeat/udp"
	"github.com/octavia-vpp/health/vpp"
)

// heartbeatLoop sends heartbeats every heartbeat_interval once warm, or
// from startup_max_delay on if VPP has not taken the VIPs by then. It
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
	// the description says (reconcile.go marks the agent warm only after
	// the VIPs were pushed) and the first heartbeat has gone out. Past
	// startup_max_delay heartbeats and READY=1 go out anyway, so start-up
	// never waits longer than that; until warm those heartbeats leave out
	// the listeners VPP serves (BuildHeartbeat).
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

func (a *Agent) isWarm() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.warm
}

// BuildHeartbeat builds the next V3 message, stamped with the time ("ts")
// and this run's boot id ("boot") after Octavia's fields. advance moves the
// counter file forward, writes it (saveCounters), and moves the sequence
// number on; without it (heartbeat --print) nothing is changed.
func (a *Agent) BuildHeartbeat(advance bool) (*heartbeat.Message, error) {
	if !advance {
		return a.buildHeartbeat(false, nil), nil
	}
	a.hbMu.Lock()
	defer a.hbMu.Unlock()
	msg := a.buildHeartbeat(true, nil)
	return msg, a.saveCounters()
}

// saveCounters writes the counter file (see counterWrite).
func (a *Agent) saveCounters() error {
	if w := a.counterWrite(); w != nil {
		return w()
	}
	return nil
}

// counterWrite renders the counter file and returns what writes it, nil
// when the file already holds it. a.hbMu is held, by the caller and
// until the write returned: only a holder of it changes a.counters, so
// a.mu is not needed to read them, and a heartbeat that waits on the disk
// does not hold up the probers or the reconcile loop.
//
// The file is synced (file and directory) only where a crash of the
// kernel could otherwise bring back a version that makes the next process
// report a delta again (CounterFile.restartDetectable): while a VIP's
// record lacks VPP's boot time, once more after such a version (so that
// it cannot come back), and at a process's first write (the file it
// loaded may not have reached the disk). A crash of the process alone
// loses nothing the kernel was given. durable says the write syncs.
func (a *Agent) counterWrite() (write func() error) {
	a.counterText, a.counterKeys, a.counterIDs = a.counters.appendFile(a.counterText[:0], a.counterKeys, a.counterIDs)
	if a.counterSaved != nil && bytes.Equal(a.counterText, a.counterSaved) {
		// Unchanged (an idle amphora): on file already, and synced if
		// it had to be.
		return nil
	}
	detectable := a.counters.restartDetectable()
	durable := !detectable || !a.rollbackSafe
	a.counterDurable = durable
	return func() error {
		a.counterSaved = a.counterSaved[:0]
		if err := writeFileMaybeSynced(a.cfg.CounterFile(), a.counterText, 0o640, durable); err != nil {
			a.counterSaved = nil
			return err
		}
		a.counterSaved = append(a.counterSaved, a.counterText...)
		if durable {
			a.counterSyncs++
		}
		a.rollbackSafe = detectable
		return nil
	}
}

// buildHeartbeat assembles the message into msg (a new one when nil)
// under a.mu. With advance, a.hbMu must be held: the counter step is
// committed in memory, and the caller saves it.
func (a *Agent) buildHeartbeat(advance bool, msg *heartbeat.Message) *heartbeat.Message {
	snap := a.dp.Counters()
	silence := a.vppSilence()
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.warm {
		// VPP has not been given the VIPs yet (startup_max_delay passed
		// with VPP not answering): nothing of it to report, as with a
		// VPP never reached.
		silence = neverReached
	}
	var all []listenerPlan
	if advance {
		// a.hbMu is held: the previous heartbeat's plans are done with.
		a.hbPlans = a.planInto(a.hbPlans, planHeartbeat)
		all = a.hbPlans
	} else {
		all = a.planLocked()
	}
	plans := reportedPlans(all, silence, a.cfg.VPPUnreachableLimit)
	if advance {
		a.noteWithheld(len(plans) < len(all), silence)
	}
	conns := make([]int64, len(plans))
	lvips := make([]ListenerVIPs, 0, len(plans))
	for i, lp := range plans {
		l := ListenerVIPs{ID: lp.l.ID, VIPs: make([]vpp.VIPKey, 0, len(lp.vips))}
		for _, v := range lp.vips {
			l.VIPs = append(l.VIPs, v.Key)
			vc, _ := snap.VIP(v.Key)
			for _, f := range vc.Flows {
				conns[i] += int64(f)
			}
		}
		lvips = append(lvips, l)
	}
	step := a.counters.Advance(snap, lvips, advance)
	if advance {
		a.noteLosses(step.Lost)
	}
	msg = buildMessage(msg, a.cfg.AmphoraID, a.seq, plans, step.Deltas, conns)
	// Octavia ignores both; the replay guard of our controller reads them.
	msg.Timestamp, msg.HasTimestamp = a.now().Unix(), true
	msg.Boot, msg.HasBoot = a.boot, true
	if advance {
		a.seq++
		for _, l := range msg.Listeners {
			a.lastStats[l.ID] = l.Stats
		}
	}
	return msg
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
// conns[i] is plans[i]'s open connections. The slices of msg, when given,
// are reused.
//
// A reported listener is always OPEN: a listener whose dataplane is gone is
// left out instead (reportedPlans), because Octavia's manager ignores a
// status it does not know, such as STOP, and would keep the listener ONLINE.
func buildMessage(msg *heartbeat.Message, amphoraID string, seq int64, plans []listenerPlan, deltas map[string]Sample, conns []int64) *heartbeat.Message {
	if msg == nil {
		msg = &heartbeat.Message{}
	}
	listeners, pools := msg.Listeners[:0], msg.Pools[:0]
	if listeners == nil {
		listeners = make([]heartbeat.Listener, 0, len(plans))
	}
	if pools == nil {
		pools = make([]heartbeat.Pool, 0, len(plans))
	}
	*msg = heartbeat.Message{
		AmphoraID: amphoraID, Seq: seq, HasSeq: true, Version: 3, HasVersion: true,
		Listeners: listeners, Pools: pools,
	}
	for i, lp := range plans {
		d := deltas[lp.l.ID]
		var open int64
		if i < len(conns) {
			open = conns[i]
		}
		msg.Listeners = append(msg.Listeners, heartbeat.Listener{
			ID: lp.l.ID, Status: "OPEN", HasStats: true,
			Stats: heartbeat.Stats{TX: 0, RX: d.Bin, Conns: open, TotConns: d.Stot, EReq: d.EReq},
		})
		if lp.pool == nil {
			continue
		}
		var members []heartbeat.Member
		if n := len(msg.Pools); n < cap(msg.Pools) {
			members = msg.Pools[:n+1][n].Members[:0]
		}
		if members == nil {
			members = make([]heartbeat.Member, 0, len(lp.plan.Members))
		}
		for _, m := range lp.plan.Members {
			members = append(members, heartbeat.Member{ID: m.ID, Status: m.Status})
		}
		msg.Pools = append(msg.Pools, heartbeat.Pool{Key: lp.pool.ID + ":" + lp.l.ID, Status: lp.plan.Status, Members: members})
	}
	return msg
}

// sealHeartbeat builds the next message, advancing the counters, and
// seals it. a.hbMu is held; the datagram is valid until the next call.
//
// The counter file records the deltas the message reports. It is written
// before the datagram is returned (and on disk where that is needed,
// saveCounters), so that a crash before the send loses those deltas
// (counted as one interval at most, docs/stats.md) rather than sends them
// again. Writing it happens outside a.mu; while a sync waits on the disk,
// the message is sealed.
func (a *Agent) sealHeartbeat() (*heartbeat.Message, []byte) {
	msg := a.buildHeartbeat(true, a.hbMsg)
	a.hbMsg = msg
	var saved chan error
	var err error
	if write := a.counterWrite(); write != nil && a.counterDurable {
		// The sync waits on the disk: seal meanwhile.
		saved = make(chan error, 1)
		go func() { saved <- write() }()
	} else if write != nil {
		err = write()
	}
	a.mu.Lock()
	kr := a.keyring
	a.mu.Unlock()
	a.hbText = msg.AppendJSON(a.hbText[:0])
	a.hbWire = kr.AppendSealed(a.hbWire[:0], a.hbText, a.deflater)
	if saved != nil {
		err = <-saved
	}
	if err != nil {
		a.log.Warn("counter file not written", "path", a.cfg.CounterFile(), "reason", err.Error())
	}
	return msg, a.hbWire
}

// heartbeat builds, seals and sends one message.
func (a *Agent) heartbeat(ctx context.Context) {
	a.hbMu.Lock()
	defer a.hbMu.Unlock()
	msg, datagram := a.sealHeartbeat()
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
