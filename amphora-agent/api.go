package agent

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/heartbeat/udp"
	"github.com/octavia-vpp/health/vpp"
)

// MemberStatus is one member in the status report.
type MemberStatus struct {
	ID        string `json:"id"`
	PoolID    string `json:"pool_id"`
	Address   string `json:"address"`
	Status    string `json:"status"`
	Weight    uint8  `json:"vpp_weight"`
	InVPP     bool   `json:"in_vpp"`
	Mark      string `json:"mark,omitempty"`
	LastError string `json:"last_error,omitempty"`
}

// ListenerStatus is one listener in the status report.
type ListenerStatus struct {
	ID         string          `json:"id"`
	State      string          `json:"state"`
	VIPs       []string        `json:"vips"`
	PoolID     string          `json:"pool_id,omitempty"`
	PoolStatus string          `json:"pool_status,omitempty"`
	LastStats  heartbeat.Stats `json:"last_stats"`
}

// Status is the agent's state as the local API and `amphora-agent status`
// show it.
type Status struct {
	AmphoraID string       `json:"amphora_id"`
	Health    SelfHealth   `json:"health"`
	Sensor    SensorRecord `json:"sensor"`
	Warm      bool         `json:"warm"`
	// ListenersLeftOut: the last heartbeat left VPP's listeners out, VPP
	// being unreachable past vpp_unreachable_limit (docs/agent.md).
	ListenersLeftOut bool                  `json:"listeners_left_out_of_heartbeat"`
	VPP              vpp.State             `json:"vpp"`
	Listeners        []ListenerStatus      `json:"listeners"`
	Members          []MemberStatus        `json:"members"`
	Marks            []Mark                `json:"marks"`
	Counters         Counters              `json:"counters"`
	Controllers      []udp.ControllerStats `json:"controllers"`
}

// Status reports the agent's current state.
func (a *Agent) Status() Status {
	st := Status{
		AmphoraID: a.cfg.AmphoraID, Health: a.sensor.Health(), Sensor: a.sensor.Record(),
		VPP: a.dp.State(), Controllers: a.sender.Stats(),
		Listeners: []ListenerStatus{}, Members: []MemberStatus{}, Marks: []Mark{}, Counters: Counters{},
	}
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	st.Warm = a.warm
	st.ListenersLeftOut = a.withheld
	// The cached list is refreshed on the agent's loop; a mark that expired
	// since then no longer applies, so it is not reported either.
	for _, m := range a.marks {
		if !m.Expired(now) {
			st.Marks = append(st.Marks, m)
		}
	}
	for k, v := range a.counters.Listeners {
		st.Counters[k] = v
	}
	seen := map[string]bool{}
	for _, lp := range a.planLocked() {
		ls := ListenerStatus{ID: lp.l.ID, State: lp.state.String(), VIPs: []string{}, LastStats: a.lastStats[lp.l.ID]}
		for _, v := range lp.vips {
			ls.VIPs = append(ls.VIPs, v.Key.String())
		}
		if lp.pool != nil {
			ls.PoolID, ls.PoolStatus = lp.pool.ID, lp.plan.Status
			for i, mp := range lp.plan.Members {
				if seen[mp.ID] {
					continue
				}
				seen[mp.ID] = true
				m := &lp.pool.Members[i]
				ms := MemberStatus{ID: mp.ID, PoolID: lp.pool.ID, Address: m.Address, Status: mp.Status,
					Weight: mp.Backend.Weight, InVPP: mp.InVPP}
				if k := EffectiveMark(a.marks, m.ID, lp.l.ID, now); k != MarkNone {
					ms.Mark = k.String()
				}
				if s := a.members[m.ID]; s != nil {
					ms.LastError = s.lastErr
				}
				st.Members = append(st.Members, ms)
			}
		}
		st.Listeners = append(st.Listeners, ls)
	}
	return st
}

// MarkRequest is the body of POST /marks.
type MarkRequest struct {
	Action  string `json:"action"` // drain, maint or up
	Target  string `json:"target"`
	Reason  string `json:"reason"`
	Expires string `json:"expires"` // a Go duration such as "2h"; empty = never
}

// ApplyMark turns a request into a spool change.
func ApplyMark(s Spool, r MarkRequest, now time.Time) (Mark, error) {
	if err := ValidTarget(r.Target); err != nil {
		return Mark{}, err
	}
	if r.Action == "up" {
		return Mark{Target: r.Target}, s.Remove(r.Target)
	}
	m := Mark{Target: r.Target, Kind: r.Action, Reason: r.Reason, Created: now.UTC()}
	if r.Expires != "" {
		d, err := time.ParseDuration(r.Expires)
		if err != nil || d <= 0 {
			return Mark{}, fmt.Errorf("expires %q: want a positive duration such as 2h", r.Expires)
		}
		m.Expires = m.Created.Add(d)
	}
	return m, s.Put(m)
}

// APIConfig configures the local HTTP API.
type APIConfig struct {
	Agent *Agent
	// Gatherer serves /metrics; nil leaves /metrics out.
	Gatherer prometheus.Gatherer
	// AllowRemoteMarks enables POST /marks.
	AllowRemoteMarks bool
}

// NewAPI returns the local HTTP API: GET /health, /status, /status/count,
// /heartbeat (the next message, not sent), /metrics and POST /marks.
func NewAPI(c APIConfig) http.Handler {
	a := c.Agent
	mux := http.NewServeMux()
	writeJSON := func(w http.ResponseWriter, code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(v)
	}
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		h := a.sensor.Health()
		code := http.StatusOK
		if !h.Healthy {
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, code, h)
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, a.Status())
	})
	mux.HandleFunc("GET /status/count", func(w http.ResponseWriter, _ *http.Request) {
		counts := map[string]uint64{}
		for _, c := range a.sender.Stats() {
			counts[c.Entry] = c.Sent
		}
		writeJSON(w, http.StatusOK, counts)
	})
	mux.HandleFunc("GET /heartbeat", func(w http.ResponseWriter, _ *http.Request) {
		// The next message as Octavia's JSON text; nothing is sent and
		// the counter file is not advanced.
		msg, err := a.BuildHeartbeat(false)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(append(msg.AppendJSON(nil), '\n'))
	})
	mux.HandleFunc("POST /marks", func(w http.ResponseWriter, r *http.Request) {
		if !c.AllowRemoteMarks {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "marks over the API are disabled (allow_remote_marks = false)"})
			return
		}
		var req MarkRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		m, err := ApplyMark(a.spool, req, a.now())
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		a.log.Info("mark changed over the api", "target", req.Target, "action", req.Action, "reason", req.Reason)
		a.Kick()
		writeJSON(w, http.StatusOK, m)
	})
	if c.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(c.Gatherer, promhttp.HandlerOpts{}))
	}
	return mux
}
