package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/octavia-vpp/health/vpp"
)

// CounterFileName is the counter file under [haproxy_amphora] base_path,
// as Octavia's agent names it.
const CounterFileName = "stats_counters.json"

// counterFileVPPKey is the counter file's entry for our own per-VIP
// records, next to Octavia's listener entries. Listener ids are UUIDs, so
// it cannot collide with one.
const counterFileVPPKey = "_vpp"

// counterFileFormat is the version of the "_vpp" entry.
const counterFileFormat = 1

// Sample is one listener's absolute counters in the counter file's format
// ({"bin": N, "bout": N, "ereq": N, "stot": N}).
type Sample struct {
	Bin  int64 `json:"bin"`
	Bout int64 `json:"bout"`
	EReq int64 `json:"ereq"`
	Stot int64 `json:"stot"`
}

func (s Sample) add(d Sample) Sample {
	return Sample{Bin: s.Bin + d.Bin, Bout: s.Bout + d.Bout, EReq: s.EReq + d.EReq, Stot: s.Stot + d.Stot}
}

// Counters holds Octavia's entries of the counter file: the totals
// reported so far per listener id. As in Octavia, entries of deleted
// listeners are kept.
type Counters map[string]Sample

// Reasons a VIP's first reading was taken as a baseline (its deltas up
// to then not reported): the history it needed was not available.
const (
	LossOldFile   = "old_file"  // counter file of an older agent: no per-VIP records
	LossCorrupt   = "corrupt"   // counter file unreadable or unparsable
	LossNoFile    = "no_file"   // no counter file, and a VIP VPP had before this process
	LossBackwards = "backwards" // the dataplane's totals went back below what was reported
)

// VIPRecord is what the counter file keeps per VIP: the totals reported
// for it and the dataplane's base for those totals (raw readings with
// VPP's boot time and index), so that a new process tells "the agent
// restarted" from "VPP reset" and neither loses nor repeats a delta.
type VIPRecord struct {
	Reported Sample
	Base     vpp.CounterBase
	// Baseline is set (to the reason) on a VIP whose history is unknown,
	// recorded while the file was untrusted but before the VIP was read:
	// its first reading is a baseline, not news.
	Baseline string
}

// CounterFile is the whole counter file.
type CounterFile struct {
	Listeners Counters
	VIPs      map[vpp.VIPKey]VIPRecord
	// Untrusted is the reason the loaded file gave no usable history
	// (LossOldFile, LossCorrupt, LossNoFile), "" otherwise. While it is
	// set, every VIP without a record is baselined at its first reading
	// (with LossNoFile only VIPs the dataplane found rather than created:
	// a first start creates its VIPs, and all they counted is news); the
	// first committed step with listeners records every one of their VIPs
	// (Baseline for those not read yet) and clears it.
	Untrusted string
}

// NewCounterFile is an empty file: a first start, every count is new.
func NewCounterFile() *CounterFile {
	return &CounterFile{Listeners: Counters{}, VIPs: map[vpp.VIPKey]VIPRecord{}}
}

// ListenerVIPs names the VIPs whose counters make up one listener's stats.
type ListenerVIPs struct {
	ID   string
	VIPs []vpp.VIPKey
}

// Advance is the outcome of one heartbeat's counter step.
type Advance struct {
	// Deltas per listener that had at least one VIP in the snapshot.
	Deltas map[string]Sample
	// Lost lists the VIPs baselined in this step, by reason.
	Lost map[string][]vpp.VIPKey
}

// sampleOf maps a VIP's counters onto the file's metrics: route bytes
// (bin), first-session packets (stot), no-server drops (ereq).
func sampleOf(c vpp.VIPCounters) Sample {
	return Sample{Bin: int64(c.RouteBytes), Stot: int64(c.FirstPackets), EReq: int64(c.NoServerPackets)}
}

func normalizeKey(k vpp.VIPKey) vpp.VIPKey {
	k.Prefix = k.Prefix.Masked()
	if k.Port == 0 {
		k.Protocol = vpp.ProtoAny
	}
	return k
}

// vipDelta is one VIP's increment against its record. The dataplane's
// totals never go backwards within a process and continue across
// processes (RestoreCounters); a total below the record means that
// history was lost, and the reading becomes the new baseline: a delta
// missed is counted and logged, a delta reported twice goes unnoticed.
func vipDelta(cur, last Sample) (Sample, bool) {
	if cur.Bin < last.Bin || cur.EReq < last.EReq || cur.Stot < last.Stot || cur.Bout < last.Bout {
		return Sample{}, false
	}
	return Sample{Bin: cur.Bin - last.Bin, Bout: cur.Bout - last.Bout, EReq: cur.EReq - last.EReq, Stot: cur.Stot - last.Stot}, true
}

// Advance computes every listener's deltas from one snapshot, VIP by VIP,
// and, with commit, records the snapshot as the new last values. A VIP
// missing from the snapshot contributes nothing and keeps its record; a
// VIP without a record counts from zero (it is new), unless the file is
// untrusted.
func (f *CounterFile) Advance(snap *vpp.Counters, listeners []ListenerVIPs, commit bool) Advance {
	out := Advance{Deltas: map[string]Sample{}, Lost: map[string][]vpp.VIPKey{}}
	perVIP := map[vpp.VIPKey]Sample{}
	updates := map[vpp.VIPKey]VIPRecord{}
	for _, l := range listeners {
		have := false
		var sum Sample
		for _, k := range l.VIPs {
			k = normalizeKey(k)
			vc, ok := snap.VIP(k)
			if !ok {
				if _, known := f.VIPs[k]; !known && f.Untrusted != "" {
					if _, done := updates[k]; !done {
						updates[k] = VIPRecord{Baseline: f.Untrusted}
					}
				}
				continue
			}
			have = true
			d, done := perVIP[k]
			if !done {
				cur := sampleOf(vc)
				rec, known := f.VIPs[k]
				switch {
				case known && rec.Baseline == "":
					var fwd bool
					if d, fwd = vipDelta(cur, rec.Reported); !fwd {
						out.Lost[LossBackwards] = append(out.Lost[LossBackwards], k)
					}
				case known && (rec.Baseline != LossNoFile || vc.Adopted):
					out.Lost[rec.Baseline] = append(out.Lost[rec.Baseline], k)
				case !known && f.Untrusted != "" && (f.Untrusted != LossNoFile || vc.Adopted):
					out.Lost[f.Untrusted] = append(out.Lost[f.Untrusted], k)
				default:
					d = cur // a VIP new since the last heartbeat: all of it is news
				}
				perVIP[k] = d
				updates[k] = VIPRecord{Reported: cur, Base: vc.Base}
			}
			sum = sum.add(d)
		}
		if have {
			out.Deltas[l.ID] = sum
		}
	}
	if commit {
		for k, r := range updates {
			f.VIPs[k] = r
		}
		for id, d := range out.Deltas {
			f.Listeners[id] = f.Listeners[id].add(d)
		}
		if len(listeners) > 0 {
			f.Untrusted = ""
		}
	}
	for _, ks := range out.Lost {
		slices.SortFunc(ks, vpp.VIPKey.Compare)
	}
	return out
}

// Bases returns the dataplane bases of every recorded VIP, for
// RestoreCounters.
func (f *CounterFile) Bases() map[vpp.VIPKey]vpp.CounterBase {
	m := make(map[vpp.VIPKey]vpp.CounterBase, len(f.VIPs))
	for k, r := range f.VIPs {
		if r.Base.LB.Seen || r.Base.Route.Seen {
			m[k] = r.Base
		}
	}
	return m
}

// --- file format ---

// The "_vpp" entry: {"format": 1, "vips": [...]}, with "untrusted" while
// a file that gave no history has not been replaced by records yet.
type fileVPP struct {
	Format    int          `json:"format"`
	Untrusted string       `json:"untrusted,omitempty"`
	VIPs      []fileRecord `json:"vips"`
}

type fileRecord struct {
	Prefix   string     `json:"prefix"`
	Protocol uint8      `json:"protocol"`
	Port     uint16     `json:"port"`
	Reported Sample     `json:"reported"`
	Baseline string     `json:"baseline,omitempty"`
	LB       fileSource `json:"lb"`
	Route    fileSource `json:"route"`
}

type fileSource struct {
	Seen bool `json:"seen"`
	// BootTimeNS is VPP's boot time in nanoseconds since the epoch, 0
	// when unknown.
	BootTimeNS int64    `json:"boot_time_ns"`
	Index      int      `json:"index"`
	Raw        []uint64 `json:"raw"`
	Total      []uint64 `json:"total"`
}

func toFileSource(s vpp.SourceBase, n int) fileSource {
	fs := fileSource{Seen: s.Seen, Index: s.Index, Raw: slices.Clone(s.Raw[:n]), Total: slices.Clone(s.Total[:n])}
	if !s.BootTime.IsZero() {
		fs.BootTimeNS = s.BootTime.UnixNano()
	}
	return fs
}

func fromFileSource(fs fileSource, n int) (vpp.SourceBase, error) {
	if len(fs.Raw) != n || len(fs.Total) != n {
		return vpp.SourceBase{}, fmt.Errorf("want %d raw and total values, have %d and %d", n, len(fs.Raw), len(fs.Total))
	}
	s := vpp.SourceBase{Seen: fs.Seen, Index: fs.Index}
	copy(s.Raw[:], fs.Raw)
	copy(s.Total[:], fs.Total)
	if fs.BootTimeNS != 0 {
		s.BootTime = time.Unix(0, fs.BootTimeNS).UTC()
	}
	return s, nil
}

// LoadCounterFile reads the counter file. A missing file is an empty one,
// untrusted (LossNoFile) only for VIPs VPP already had: on a first start
// the agent creates them, and everything they counted is news; after the
// file was lost, what VPP had counted before may have been reported. A file of an older agent (Octavia's listener entries
// only) keeps its listener totals and is untrusted (LossOldFile); an
// unreadable or unparsable one is returned empty and untrusted
// (LossCorrupt) together with the error, so the caller can warn and carry
// on. Neither ever reports a delta twice: VIPs without a record are then
// baselined at their first reading.
func LoadCounterFile(path string) (*CounterFile, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		f := NewCounterFile()
		f.Untrusted = LossNoFile
		return f, nil
	}
	if err != nil {
		f := NewCounterFile()
		f.Untrusted = LossCorrupt
		return f, fmt.Errorf("read counter file: %w", err)
	}
	f, err := parseCounterFile(b)
	if err != nil {
		f = NewCounterFile()
		f.Untrusted = LossCorrupt
		return f, fmt.Errorf("parse counter file %s: %w", path, err)
	}
	return f, nil
}

func parseCounterFile(b []byte) (*CounterFile, error) {
	var entries map[string]json.RawMessage
	if err := json.Unmarshal(b, &entries); err != nil {
		return nil, err
	}
	f := NewCounterFile()
	var ours *fileVPP
	for id, raw := range entries {
		if id == counterFileVPPKey {
			ours = &fileVPP{}
			d := json.NewDecoder(bytes.NewReader(raw))
			if err := d.Decode(ours); err != nil {
				return nil, fmt.Errorf("%s: %w", counterFileVPPKey, err)
			}
			continue
		}
		var s Sample
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("listener %q: %w", id, err)
		}
		f.Listeners[id] = s
	}
	if ours == nil {
		// Octavia's format, written by an older agent (or Octavia's):
		// totals that may or may not include offsets this process no
		// longer has. An empty one has nothing to lose.
		if len(f.Listeners) > 0 {
			f.Untrusted = LossOldFile
		}
		return f, nil
	}
	if ours.Format != counterFileFormat {
		return nil, fmt.Errorf("%s: format %d, this agent reads %d", counterFileVPPKey, ours.Format, counterFileFormat)
	}
	switch ours.Untrusted {
	case "", LossOldFile, LossCorrupt, LossNoFile:
		f.Untrusted = ours.Untrusted
	default:
		return nil, fmt.Errorf("%s: untrusted %q", counterFileVPPKey, ours.Untrusted)
	}
	for i, r := range ours.VIPs {
		p, err := netip.ParsePrefix(r.Prefix)
		if err != nil {
			return nil, fmt.Errorf("%s vip %d: %w", counterFileVPPKey, i, err)
		}
		lb, err := fromFileSource(r.LB, 4)
		if err != nil {
			return nil, fmt.Errorf("%s vip %s lb: %w", counterFileVPPKey, r.Prefix, err)
		}
		route, err := fromFileSource(r.Route, 2)
		if err != nil {
			return nil, fmt.Errorf("%s vip %s route: %w", counterFileVPPKey, r.Prefix, err)
		}
		switch r.Baseline {
		case "", LossOldFile, LossCorrupt, LossNoFile, LossBackwards:
		default:
			return nil, fmt.Errorf("%s vip %s: baseline %q", counterFileVPPKey, r.Prefix, r.Baseline)
		}
		if r.Reported.Bin < 0 || r.Reported.Bout < 0 || r.Reported.EReq < 0 || r.Reported.Stot < 0 {
			return nil, fmt.Errorf("%s vip %s: negative totals", counterFileVPPKey, r.Prefix)
		}
		k := normalizeKey(vpp.VIPKey{Prefix: p, Protocol: vpp.Protocol(r.Protocol), Port: r.Port})
		f.VIPs[k] = VIPRecord{Reported: r.Reported, Baseline: r.Baseline, Base: vpp.CounterBase{LB: lb, Route: route}}
	}
	return f, nil
}

// marshal renders the file: Octavia's listener entries, then ours under
// "_vpp", VIPs in key order.
func (f *CounterFile) marshal() ([]byte, error) {
	ours := fileVPP{Format: counterFileFormat, Untrusted: f.Untrusted, VIPs: []fileRecord{}}
	keys := make([]vpp.VIPKey, 0, len(f.VIPs))
	for k := range f.VIPs {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, vpp.VIPKey.Compare)
	for _, k := range keys {
		r := f.VIPs[k]
		ours.VIPs = append(ours.VIPs, fileRecord{Prefix: k.Prefix.String(), Protocol: uint8(k.Protocol), Port: k.Port,
			Reported: r.Reported, Baseline: r.Baseline,
			LB: toFileSource(r.Base.LB, 4), Route: toFileSource(r.Base.Route, 2)})
	}
	entries := make(map[string]any, len(f.Listeners)+1)
	for id, s := range f.Listeners {
		entries[id] = s
	}
	entries[counterFileVPPKey] = ours
	return json.Marshal(entries)
}

// LoadCounters reads the listener totals of a counter file (see
// LoadCounterFile).
func LoadCounters(path string) (Counters, error) {
	f, err := LoadCounterFile(path)
	return f.Listeners, err
}

// SaveCounterFile writes the counter file atomically and durably (see
// saveCounterFile) with mode 0640.
func SaveCounterFile(path string, f *CounterFile) error {
	return saveCounterFile(path, f, true)
}

// saveCounterFile writes the counter file atomically: a temporary file in
// the same directory, renamed over it. With durable, the file is synced
// before the rename and the directory after it, so that the new version
// survives a power loss; without, it survives a crash of the process (the
// kernel's page cache holds it) but a crash of the kernel may bring back
// an earlier version, or none, or a truncated one (see
// restartDetectable for when that is harmless).
func saveCounterFile(path string, f *CounterFile, durable bool) error {
	b, err := f.marshal()
	if err != nil {
		return fmt.Errorf("encode counters: %w", err)
	}
	return writeFileMaybeSynced(path, b, 0o640, durable)
}

// restartDetectable reports whether every VIP record that a next process
// would continue from names the VPP instance its totals were read from
// (VPP's boot time). The counter file then needs no sync before a
// heartbeat leaves: only a crash of the kernel or a power loss can bring
// back an earlier version of it, and either restarts VPP, which runs on
// the same kernel. The new VPP has another boot time and counts from zero;
// the dataplane takes every restored record for a previous instance
// (vpp.CounterBase) and reports only what the new VPP counted, never what
// an earlier version of the file says was still to be sent. A lost file
// is a first start for VIPs the new process creates (all the new VPP
// counted is news), and a truncated one is unparsable (LossCorrupt, a
// baseline). Without the boot time a restored record could be taken for
// the running VPP's, so such a file is synced before every heartbeat.
func (f *CounterFile) restartDetectable() bool {
	for _, r := range f.VIPs {
		if r.Baseline != "" {
			continue // its next reading is a baseline: nothing to repeat
		}
		lb, route := r.Base.LB, r.Base.Route
		if !lb.Seen && !route.Seen {
			return false // a dataplane without bases (the simulator)
		}
		if (lb.Seen && lb.BootTime.IsZero()) || (route.Seen && route.BootTime.IsZero()) {
			return false
		}
	}
	return true
}

// writeFileAtomic writes a file atomically and durably.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	return writeFileMaybeSynced(path, data, mode, true)
}

func writeFileMaybeSynced(path string, data []byte, mode os.FileMode, durable bool) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if durable {
		if err := f.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if durable {
		// The rename is only on disk once the directory is.
		if err := syncDir(dir); err != nil {
			return fmt.Errorf("write %s: sync directory: %w", path, err)
		}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// counterRestorer is a dataplane that can continue the totals of a
// previous process (vpp.Govpp); the simulator keeps its own.
type counterRestorer interface {
	RestoreCounters(map[vpp.VIPKey]vpp.CounterBase) error
}

// loadCounters reads the counter file and hands the dataplane its bases.
// An unusable file is logged; its cost (VIPs baselined) is counted and
// logged when the first heartbeat meets those VIPs.
func (a *Agent) loadCounters(dp vpp.Dataplane) {
	path := a.cfg.CounterFile()
	f, err := LoadCounterFile(path)
	switch {
	case err != nil:
		a.log.Warn("counter file unusable: the deltas of its VIPs until their first reading are not reported",
			"path", path, "reason", err.Error())
	case f.Untrusted == LossOldFile:
		a.log.Warn("counter file of an older agent: the deltas of its VIPs until their first reading are not reported",
			"path", path)
	}
	a.counters = f
	if r, ok := dp.(counterRestorer); ok {
		if err := r.RestoreCounters(f.Bases()); err != nil {
			a.log.Warn("dataplane counters not continued from the counter file", "path", path, "reason", err.Error())
		}
	}
}

// noteLosses counts and logs the VIPs whose deltas were not reported.
func (a *Agent) noteLosses(lost map[string][]vpp.VIPKey) {
	for reason, keys := range lost {
		a.m.statsLost.WithLabelValues(reason).Add(float64(len(keys)))
		names := make([]string, len(keys))
		for i, k := range keys {
			names[i] = k.String()
		}
		a.log.Warn("vip counters taken as a new baseline, deltas since the last report not sent",
			"reason", reason, "vips", names, slog.Int("count", len(keys)))
	}
}
