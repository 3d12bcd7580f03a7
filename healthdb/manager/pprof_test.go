package manager_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/octavia-vpp/health/healthdb/manager"
	"github.com/octavia-vpp/health/healthdb/manager/managertest"
	"github.com/octavia-vpp/health/internal/octaviaconf"
	"github.com/octavia-vpp/health/internal/testproc"
	"github.com/octavia-vpp/health/test/pgtest"
)

func pprofConf(t *testing.T, url, pprofBind string) string {
	t.Helper()
	line := ""
	if pprofBind != "" {
		line = "pprof_bind = " + pprofBind + "\n"
	}
	return testproc.WriteFile(t, "octavia.conf", []byte(fmt.Sprintf(`[database]
connection = %s
[health_manager]
heartbeat_key = pprof-key
failover_driver = noop
bind_ip = 127.0.0.1
bind_port = 0
metrics_bind =
%s[controller_worker]
compute_driver = compute_noop_driver
`, url, line)))
}

// Off by default; on a loopback address the profiles are served.
func TestPprofBind(t *testing.T) {
	url := pgtest.NewDB(t)
	off := managertest.Start(t, managertest.Options{Files: []string{pprofConf(t, url, "")}})
	if addr := off.PprofAddr(); addr != nil {
		t.Errorf("pprof_bind unset: serving on %s, want off", addr)
	}
	if err := off.Stop(); err != nil {
		t.Fatal(err)
	}

	on := managertest.Start(t, managertest.Options{Files: []string{pprofConf(t, url, "127.0.0.1:0")}})
	addr := on.PprofAddr()
	if addr == nil {
		t.Fatal("pprof_bind = 127.0.0.1:0: not serving")
	}
	resp, err := http.Get("http://" + addr.String() + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine") {
		t.Errorf("GET /debug/pprof/: %s, body without the goroutine profile:\n%.300s", resp.Status, body)
	}
	resp, err = http.Get("http://" + addr.String() + "/debug/pprof/heap?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /debug/pprof/heap: %s", resp.Status)
	}
}

// Anything but a literal loopback address is a configuration problem,
// reported by --check's StartupProblems and refused by New before it
// binds anything.
func TestPprofBindRefusesNonLoopback(t *testing.T) {
	url := pgtest.NewDB(t)
	// A free port: were New to listen on it, the second Listen would fail.
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := probe.Addr().(*net.TCPAddr).Port
	probe.Close()
	for _, bind := range []string{
		fmt.Sprintf("0.0.0.0:%d", port), fmt.Sprintf(":%d", port), fmt.Sprintf("[::]:%d", port),
		"192.0.2.1:6060", "localhost:6060", "127.0.0.1",
	} {
		t.Run(bind, func(t *testing.T) {
			cfg, err := octaviaconf.Load(pprofConf(t, url, bind))
			if err != nil {
				t.Fatal(err)
			}
			var found bool
			for _, p := range manager.StartupProblems(cfg, nil) {
				if strings.Contains(p.Error(), "pprof_bind") {
					found = true
				}
			}
			if !found {
				t.Errorf("--check: no pprof_bind problem for %q", bind)
			}
			m, err := manager.New(context.Background(), cfg, manager.Options{})
			if err == nil {
				t.Fatalf("New accepted pprof_bind = %q (serving on %v)", bind, m.PprofAddr())
			}
			if !strings.Contains(err.Error(), "pprof_bind") {
				t.Errorf("New: %v, want a pprof_bind error", err)
			}
			ln, err := net.Listen("tcp", fmt.Sprintf("0.0.0.0:%d", port))
			if err != nil {
				t.Fatalf("port %d taken after the refusal: %v", port, err)
			}
			ln.Close()
		})
	}
}
