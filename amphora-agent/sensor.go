package agent

import (
	"fmt"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// SelfHealth is the agent's verdict on itself.
type SelfHealth struct {
	Healthy bool   `json:"healthy"`
	Reason  string `json:"reason,omitempty"`
	// LBConfigRejected is why the newest LB description was refused, set
	// until a valid one is loaded. With a valid description still running
	// the agent stays healthy: it keeps serving that one.
	LBConfigRejected string `json:"lb_config_rejected,omitempty"`
}

// SensorRecord is what the sensor has recorded. Zero times mean "never".
type SensorRecord struct {
	Started    time.Time `json:"started"`
	LastSend   time.Time `json:"last_send,omitzero"`
	LastVPP    time.Time `json:"last_vpp_contact,omitzero"`
	LastConfig time.Time `json:"last_config,omitzero"`
	// LastReject and RejectReason are the last refused LB description,
	// cleared when a valid one is loaded.
	LastReject   time.Time `json:"last_config_rejected,omitzero"`
	RejectReason string    `json:"config_rejected_reason,omitempty"`
	ShutdownFrom time.Time `json:"shutdown_started,omitzero"`
}

// SensorLimits are the thresholds of the verdict.
type SensorLimits struct {
	// HeartbeatInterval: no successful send for 3 intervals is faulty.
	HeartbeatInterval time.Duration
	// VPPUnreachable: no VPP contact for this long is faulty.
	VPPUnreachable time.Duration
	// ShutdownTimeout: a shutdown running longer is faulty (stuck).
	ShutdownTimeout time.Duration
}

// Judge derives healthy/faulty from a record, in this order: no valid
// config, shutdown stuck, no send for 3 intervals, VPP unreachable. Before
// the first send or VPP contact, the start time stands in for it.
func Judge(r SensorRecord, now time.Time, l SensorLimits) SelfHealth {
	since := func(t time.Time) time.Duration {
		if t.IsZero() {
			t = r.Started
		}
		return now.Sub(t)
	}
	h := judge(r, now, l, since)
	if r.RejectReason != "" {
		h.LBConfigRejected = r.RejectReason
	}
	return h
}

func judge(r SensorRecord, now time.Time, l SensorLimits, since func(time.Time) time.Duration) SelfHealth {
	switch {
	case r.LastConfig.IsZero() && r.RejectReason != "":
		return SelfHealth{Reason: "no valid lb config: " + r.RejectReason}
	case r.LastConfig.IsZero():
		return SelfHealth{Reason: "no valid lb config"}
	case !r.ShutdownFrom.IsZero() && now.Sub(r.ShutdownFrom) > l.ShutdownTimeout:
		return SelfHealth{Reason: fmt.Sprintf("shutdown stuck for %s", now.Sub(r.ShutdownFrom).Round(time.Second))}
	case l.HeartbeatInterval > 0 && since(r.LastSend) > 3*l.HeartbeatInterval:
		return SelfHealth{Reason: fmt.Sprintf("no heartbeat sent for %s", since(r.LastSend).Round(time.Second))}
	case l.VPPUnreachable > 0 && since(r.LastVPP) > l.VPPUnreachable:
		return SelfHealth{Reason: fmt.Sprintf("vpp unreachable for %s", since(r.LastVPP).Round(time.Second))}
	}
	return SelfHealth{Healthy: true}
}

// Sensor records the agent's life events. It is safe for concurrent use.
type Sensor struct {
	mu     sync.Mutex
	rec    SensorRecord
	limits SensorLimits
	now    func() time.Time
}

// NewSensor starts a sensor; now nil means time.Now.
func NewSensor(l SensorLimits, now func() time.Time) *Sensor {
	if now == nil {
		now = time.Now
	}
	return &Sensor{limits: l, now: now, rec: SensorRecord{Started: now()}}
}

func (s *Sensor) set(f func(*SensorRecord)) {
	s.mu.Lock()
	f(&s.rec)
	s.mu.Unlock()
}

// Sent records a successful heartbeat send.
func (s *Sensor) Sent() { t := s.now(); s.set(func(r *SensorRecord) { r.LastSend = t }) }

// VPPContact records the dataplane's last successful exchange.
func (s *Sensor) VPPContact(t time.Time) {
	s.set(func(r *SensorRecord) {
		if t.After(r.LastVPP) {
			r.LastVPP = t
		}
	})
}

// ConfigLoaded records a valid LB description.
func (s *Sensor) ConfigLoaded() {
	t := s.now()
	s.set(func(r *SensorRecord) { r.LastConfig, r.LastReject, r.RejectReason = t, time.Time{}, "" })
}

// ConfigRejected records an LB description that was refused, and why.
func (s *Sensor) ConfigRejected(reason string) {
	t := s.now()
	s.set(func(r *SensorRecord) { r.LastReject, r.RejectReason = t, reason })
}

// ShuttingDown records the start of a shutdown.
func (s *Sensor) ShuttingDown() { t := s.now(); s.set(func(r *SensorRecord) { r.ShutdownFrom = t }) }

// Record returns what was recorded.
func (s *Sensor) Record() SensorRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rec
}

// Health judges the record now.
func (s *Sensor) Health() SelfHealth { return Judge(s.Record(), s.now(), s.limits) }

// Notify sends one sd_notify message ("READY=1", "WATCHDOG=1",
// "STOPPING=1", ...) to $NOTIFY_SOCKET through go-systemd's daemon
// package. Without the variable it does nothing and returns false.
func Notify(state string) (bool, error) { return daemon.SdNotify(false, state) }

// WatchdogInterval returns half of systemd's watchdog timeout (the ping
// period systemd recommends), or 0 when no watchdog is configured for
// this process (WATCHDOG_USEC unset, invalid, or WATCHDOG_PID another's).
func WatchdogInterval() time.Duration {
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		return 0
	}
	return d / 2
}
