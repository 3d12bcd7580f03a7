package vpp

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/octavia-vpp/health/vpp/internal/lbcli"
)

// cliProgrammer writes through cli_inband commands, for lb 1.1.0 (released
// VPP), which has no weights.
type cliProgrammer struct{ c caller }

func (cliProgrammer) name() string   { return DialectCLI }
func (cliProgrammer) weighted() bool { return false }

func cliKey(k VIPKey) lbcli.Key {
	return lbcli.Key{Prefix: k.Prefix, Protocol: uint8(k.Protocol), Port: k.Port}
}

// run executes one configuration command and turns its text into an error.
func (p cliProgrammer) run(ctx context.Context, cmd string) error {
	out, err := p.c.cli(ctx, cmd)
	if err != nil {
		return err
	}
	if _, code, err := lbcli.Result(out); err != nil {
		if s := vppError(code); s != nil {
			return fmt.Errorf("%w (%w)", s, err)
		}
		return err
	}
	return nil
}

func (p cliProgrammer) conf(ctx context.Context, c Conf) error {
	return p.run(ctx, lbcli.ConfCmd(c.IP4Src, c.IP6Src, c.StickyBucketsPerWorker, uint32(c.FlowTimeout/time.Second)))
}

func (p cliProgrammer) addVIP(ctx context.Context, v VIP) error {
	return p.run(ctx, lbcli.AddVIPCmd(lbcli.VIPArgs{Key: cliKey(v.Key), Encap: v.Encap.String(), DSCP: v.DSCP,
		TargetPort: v.TargetPort, NewLen: v.FlowTableLength, SrcIPSticky: v.SrcIPSticky}))
}

func (p cliProgrammer) delVIP(ctx context.Context, v VIP) error {
	return p.run(ctx, lbcli.DelVIPCmd(cliKey(v.Key)))
}

func (p cliProgrammer) addAS(ctx context.Context, k VIPKey, as netip.Addr, _ uint8) error {
	return p.run(ctx, lbcli.AddASCmd(cliKey(k), as))
}

func (p cliProgrammer) delAS(ctx context.Context, k VIPKey, as netip.Addr, flush bool) error {
	return p.run(ctx, lbcli.DelASCmd(cliKey(k), as, flush))
}

// setWeight is never planned for the CLI dialect (planSync expresses
// weights as add/delete there); reaching it is a bug.
func (p cliProgrammer) setWeight(context.Context, VIPKey, netip.Addr, uint8, bool) error {
	return fmt.Errorf("set weight through the CLI dialect: %w", ErrInvalid)
}
