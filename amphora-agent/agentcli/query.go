package agentcli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	agent "github.com/octavia-vpp/health/amphora-agent"
)

// httpGet calls the running agent's local API.
func httpGet(c *cli.Context, cfg *agent.Config, path string, f func(int, []byte) error) error {
	if cfg.StatusBind == "" {
		return cli.Exit("amphora-agent: the status API is disabled ([amphora_agent] status_bind is empty)", ExitSemantic)
	}
	ctx, cancel := context.WithTimeout(c.Context, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+cfg.StatusBind+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return cli.Exit("amphora-agent: is the agent running? "+err.Error(), ExitParse)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	return f(resp.StatusCode, body)
}

// PrintHeartbeat prints, as JSON, the next heartbeat the running agent
// would send, without sending it.
func PrintHeartbeat(c *cli.Context) error {
	cfg, err := LoadConfig(c)
	if err != nil {
		return err
	}
	return httpGet(c, cfg, "/heartbeat", func(code int, body []byte) error {
		if code != http.StatusOK {
			return cli.Exit(strings.TrimSpace(string(body)), ExitParse)
		}
		_, err := c.App.Writer.Write(body)
		return err
	})
}

// ShowStatus prints the running agent's status; it exits 1 when the
// agent reports itself faulty.
func ShowStatus(c *cli.Context) error {
	cfg, err := LoadConfig(c)
	if err != nil {
		return err
	}
	return httpGet(c, cfg, "/status", func(code int, body []byte) error {
		var st agent.Status
		if err := json.Unmarshal(body, &st); err != nil {
			return fmt.Errorf("status: %w", err)
		}
		w := c.App.Writer
		h := "healthy"
		if !st.Health.Healthy {
			h = "faulty: " + st.Health.Reason
		}
		fmt.Fprintf(w, "amphora %s: %s (vpp connected=%v generation=%d, warm=%v)\n", st.AmphoraID, h, st.VPP.Connected, st.VPP.Generation, st.Warm)
		if st.Health.LBConfigRejected != "" {
			fmt.Fprintf(w, "lb description rejected: %s\n", st.Health.LBConfigRejected)
		}
		if st.ListenersLeftOut {
			fmt.Fprintln(w, "heartbeats leave the listeners out: vpp unreachable past vpp_unreachable_limit")
		}
		for _, l := range st.Listeners {
			fmt.Fprintf(w, "listener %s %s vips=%s pool=%s %s\n", l.ID, l.State, strings.Join(l.VIPs, ","), l.PoolID, l.PoolStatus)
		}
		for _, m := range st.Members {
			fmt.Fprintf(w, "  member %s %s %q weight=%d in_vpp=%v", m.ID, m.Address, m.Status, m.Weight, m.InVPP)
			if m.Mark != "" {
				fmt.Fprintf(w, " mark=%s", m.Mark)
			}
			if m.LastError != "" {
				fmt.Fprintf(w, " last_error=%q", m.LastError)
			}
			fmt.Fprintln(w)
		}
		for _, ctl := range st.Controllers {
			fmt.Fprintf(w, "controller %s score=%d sent=%d errors=%d\n", ctl.Entry, ctl.Score, ctl.Sent, ctl.Errors)
		}
		if !st.Health.Healthy {
			return cli.Exit("", ExitParse)
		}
		return nil
	})
}

// ShowCounters prints the V3 counter file, one listener a line.
func ShowCounters(c *cli.Context) error {
	cfg, err := LoadConfig(c)
	if err != nil {
		return err
	}
	counters, err := agent.LoadCounters(cfg.CounterFile())
	if err != nil {
		return cli.Exit("amphora-agent: "+err.Error(), ExitParse)
	}
	ids := make([]string, 0, len(counters))
	for id := range counters {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	fmt.Fprintf(c.App.Writer, "%-36s %14s %14s %10s %10s\n", "listener", "bin", "bout", "stot", "ereq")
	for _, id := range ids {
		s := counters[id]
		fmt.Fprintf(c.App.Writer, "%-36s %14d %14d %10d %10d\n", id, s.Bin, s.Bout, s.Stot, s.EReq)
	}
	return nil
}
