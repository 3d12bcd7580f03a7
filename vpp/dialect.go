package vpp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"go.fd.io/govpp/api"

	"github.com/octavia-vpp/health/vpp/internal/lbapi"
	"github.com/octavia-vpp/health/vpp/internal/lbcli"
)

// Dialect names, as State.Dialect reports them.
const (
	DialectBinAPI = "binapi" // lb API >= 1.2.0: binary API with weights
	DialectCLI    = "cli"    // lb API 1.1.0 (released VPP): cli_inband commands
	DialectSim    = "sim"    // the simulator
)

// apiVersion is a parsed "major.minor.patch".
type apiVersion struct{ major, minor, patch uint32 }

func (v apiVersion) String() string { return fmt.Sprintf("%d.%d.%d", v.major, v.minor, v.patch) }

func (v apiVersion) atLeast(o apiVersion) bool {
	if v.major != o.major {
		return v.major > o.major
	}
	if v.minor != o.minor {
		return v.minor > o.minor
	}
	return v.patch >= o.patch
}

var lbWeighted = apiVersion{1, 2, 0}

// dialectChoice is the outcome of selectDialect.
type dialectChoice struct {
	dialect string
	reason  string
}

// selectDialect picks how to program the lb plugin.
//
//   - mode is the operator's setting: "auto" (or ""), "binapi" or "cli";
//   - lbVersion is the lb API version VPP reported (nil when unknown);
//   - missing lists the lb 1.2.0 messages VPP's message table lacks (a
//     missing or CRC-mismatched message looks the same).
//
// The binary API is used only when VPP has every lb 1.2.0 message and does
// not report an older lb API: released VPP (lb 1.1.0) mis-creates IPv4 VIPs
// through the binary API, while its CLI is correct.
func selectDialect(mode string, lbVersion *apiVersion, missing []string) (dialectChoice, error) {
	switch mode {
	case DialectCLI:
		return dialectChoice{DialectCLI, "configured"}, nil
	case DialectBinAPI:
		if len(missing) > 0 {
			return dialectChoice{}, fmt.Errorf("dialect binapi configured but VPP lacks %s: %w", strings.Join(missing, ", "), ErrInvalid)
		}
		return dialectChoice{DialectBinAPI, "configured"}, nil
	case "", "auto":
	default:
		return dialectChoice{}, fmt.Errorf("dialect %q: %w", mode, ErrInvalid)
	}
	switch {
	case len(missing) > 0 && lbVersion != nil && lbVersion.atLeast(lbWeighted):
		return dialectChoice{DialectCLI, "lb API " + lbVersion.String() + " but messages missing or changed: " + strings.Join(missing, ", ")}, nil
	case len(missing) > 0:
		return dialectChoice{DialectCLI, "messages missing: " + strings.Join(missing, ", ")}, nil
	case lbVersion != nil && !lbVersion.atLeast(lbWeighted):
		return dialectChoice{DialectCLI, "lb API " + lbVersion.String() + " < " + lbWeighted.String()}, nil
	case lbVersion == nil:
		return dialectChoice{DialectBinAPI, "lb 1.2.0 messages present, lb API version unknown"}, nil
	}
	return dialectChoice{DialectBinAPI, "lb API " + lbVersion.String()}, nil
}

// weightedMessages are the lb 1.2.0 messages the binary dialect needs.
func weightedMessages() []api.Message {
	return []api.Message{(*lbapi.LbAddDelAsV2)(nil), (*lbapi.LbAsSetWeight)(nil)}
}

// caller is the logged, counted transport a programmer uses.
type caller interface {
	call(ctx context.Context, req, reply api.Message) error
	cli(ctx context.Context, cmd string) (string, error)
}

// programmer is one dialect's set of primitive writes.
type programmer interface {
	name() string
	weighted() bool
	conf(ctx context.Context, c Conf) error
	addVIP(ctx context.Context, v VIP) error
	delVIP(ctx context.Context, v VIP) error
	addAS(ctx context.Context, k VIPKey, as netip.Addr, weight uint8) error
	delAS(ctx context.Context, k VIPKey, as netip.Addr, flush bool) error
	setWeight(ctx context.Context, k VIPKey, as netip.Addr, weight uint8, flush bool) error
}

// readVIPs reads the actual state through `show lb vips verbose`, the only
// source of pool indices and src_ip_sticky in every VPP version. VIPs that
// VPP marks removed (waiting for garbage collection) are left out.
func readVIPs(ctx context.Context, c caller) ([]lbcli.VIP, error) {
	out, err := c.cli(ctx, lbcli.ShowVIPsCmd)
	if err != nil {
		return nil, fmt.Errorf("read lb vips: %w", err)
	}
	var vips []lbcli.VIP
	for _, v := range lbcli.ParseVIPs(out) {
		if !v.Removed {
			vips = append(vips, v)
		}
	}
	return vips, nil
}

// statusOf converts a parsed VIP into our vocabulary.
func statusOf(v lbcli.VIP) VIPStatus {
	k := VIPKey{Prefix: v.Prefix.Masked(), Protocol: Protocol(v.Protocol), Port: v.Port}
	if k.Port == 0 {
		k.Protocol = ProtoAny
	}
	enc := EncapGRE4
	if i := strings.IndexByte(v.Type, '-'); i >= 0 {
		if e, err := ParseEncap(v.Type[i+1:]); err == nil {
			enc = e
		}
	}
	st := VIPStatus{Key: k, Encap: enc, SrcIPSticky: v.SrcIPSticky, FlowTableLength: v.NewSize}
	for _, as := range v.ASes {
		w := uint8(0)
		switch {
		case as.Weight >= 0:
			w = uint8(min(as.Weight, MaxWeight))
		case as.Used:
			w = MaxWeight
		}
		st.Backends = append(st.Backends, BackendStatus{Addr: as.Addr, Weight: w, Active: as.Used, Flows: as.Flows})
	}
	st.Backends = sortedBackends(st.Backends)
	return st
}

// vppError maps a VPP error number to our sentinels.
func vppError(code int) error {
	switch api.VPPApiError(code) {
	case api.VALUE_EXIST:
		return ErrExists
	case api.NO_SUCH_ENTRY:
		return ErrNotFound
	case api.INVALID_ARGUMENT, api.INVALID_ADDRESS_FAMILY, api.INVALID_MEMORY_SIZE, api.INVALID_VALUE:
		return ErrInvalid
	}
	return nil
}

// wrapVPP keeps the VPP error and adds our sentinel when there is one.
func wrapVPP(err error) error {
	var ve api.VPPApiError
	if errors.As(err, &ve) {
		if s := vppError(int(ve)); s != nil {
			return fmt.Errorf("%w (%w)", s, err)
		}
	}
	return err
}
