package agent

import (
	"encoding/json"
	"slices"
	"strconv"

	"github.com/octavia-vpp/health/vpp"
)

// appendFile appends the counter file's JSON to dst, byte for byte what
// encoding/json renders for marshal's value (keys sorted, "_vpp" among
// them), without reflection or a map of every entry: it is written before
// every heartbeat. keys and ids are scratch slices, returned for reuse.
func (f *CounterFile) appendFile(dst []byte, keys []vpp.VIPKey, ids []string) ([]byte, []vpp.VIPKey, []string) {
	ids = ids[:0]
	for id := range f.Listeners {
		ids = append(ids, id)
	}
	if _, ok := f.Listeners[counterFileVPPKey]; !ok {
		ids = append(ids, counterFileVPPKey)
	}
	slices.Sort(ids)
	keys = keys[:0]
	for k := range f.VIPs {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, vpp.VIPKey.Compare)

	dst = append(dst, '{')
	for i, id := range ids {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, id)
		dst = append(dst, ':')
		if id != counterFileVPPKey {
			dst = appendSample(dst, f.Listeners[id])
			continue
		}
		dst = append(dst, `{"format":`...)
		dst = strconv.AppendInt(dst, counterFileFormat, 10)
		if f.Untrusted != "" {
			dst = append(dst, `,"untrusted":`...)
			dst = appendJSONString(dst, f.Untrusted)
		}
		dst = append(dst, `,"vips":[`...)
		for j, k := range keys {
			if j > 0 {
				dst = append(dst, ',')
			}
			r := f.VIPs[k]
			dst = append(dst, `{"prefix":"`...)
			dst = k.Prefix.AppendTo(dst)
			dst = append(dst, `","protocol":`...)
			dst = strconv.AppendUint(dst, uint64(k.Protocol), 10)
			dst = append(dst, `,"port":`...)
			dst = strconv.AppendUint(dst, uint64(k.Port), 10)
			dst = append(dst, `,"reported":`...)
			dst = appendSample(dst, r.Reported)
			if r.Baseline != "" {
				dst = append(dst, `,"baseline":`...)
				dst = appendJSONString(dst, r.Baseline)
			}
			dst = append(dst, `,"lb":`...)
			dst = appendSource(dst, r.Base.LB, 4)
			dst = append(dst, `,"route":`...)
			dst = appendSource(dst, r.Base.Route, 2)
			dst = append(dst, '}')
		}
		dst = append(dst, "]}"...)
	}
	return append(dst, '}'), keys, ids
}

func appendSample(dst []byte, s Sample) []byte {
	dst = append(dst, `{"bin":`...)
	dst = strconv.AppendInt(dst, s.Bin, 10)
	dst = append(dst, `,"bout":`...)
	dst = strconv.AppendInt(dst, s.Bout, 10)
	dst = append(dst, `,"ereq":`...)
	dst = strconv.AppendInt(dst, s.EReq, 10)
	dst = append(dst, `,"stot":`...)
	dst = strconv.AppendInt(dst, s.Stot, 10)
	return append(dst, '}')
}

// appendSource renders toFileSource(s, n).
func appendSource(dst []byte, s vpp.SourceBase, n int) []byte {
	dst = append(dst, `{"seen":`...)
	dst = strconv.AppendBool(dst, s.Seen)
	dst = append(dst, `,"boot_time_ns":`...)
	var boot int64
	if !s.BootTime.IsZero() {
		boot = s.BootTime.UnixNano()
	}
	dst = strconv.AppendInt(dst, boot, 10)
	dst = append(dst, `,"index":`...)
	dst = strconv.AppendInt(dst, int64(s.Index), 10)
	dst = append(dst, `,"raw":`...)
	dst = appendUints(dst, s.Raw[:n])
	dst = append(dst, `,"total":`...)
	dst = appendUints(dst, s.Total[:n])
	return append(dst, '}')
}

func appendUints(dst []byte, vs []uint64) []byte {
	dst = append(dst, '[')
	for i, v := range vs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = strconv.AppendUint(dst, v, 10)
	}
	return append(dst, ']')
}

// appendJSONString appends s as encoding/json quotes it: listener ids are
// UUIDs, which need no escaping; anything else takes encoding/json's
// own path.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s) // a string always encodes
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}
