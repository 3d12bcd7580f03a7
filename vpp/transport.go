package vpp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"time"

	"go.fd.io/govpp/api"
	"go.fd.io/govpp/binapi/vlib"
	"go.fd.io/govpp/core"
)

// Transport: every VPP call is logged at debug level and counted.

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
