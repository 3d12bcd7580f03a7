package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/urfave/cli/v2"

	"github.com/octavia-vpp/health/healthdb/manager/loadgen"
	"github.com/octavia-vpp/health/internal/octaviaconf"
	"github.com/octavia-vpp/health/migrations"
)

func loadgenCommand() *cli.Command {
	return &cli.Command{
		Name:  "loadgen",
		Usage: "send realistic V3 heartbeats to a running health manager and report what it applied",
		Description: "Sends heartbeats sealed with [health_manager] heartbeat_key to the health manager, paced at\n" +
			"--rate, from many source ports, then reads its /metrics and prints one JSON line.\n" +
			"With --seed-db it first creates the matching load balancers in [database] connection.",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "amphorae", Value: 1000, Usage: "amphorae (one load balancer each)"},
			&cli.IntFlag{Name: "listeners", Value: 2, Usage: "listeners per load balancer"},
			&cli.IntFlag{Name: "pools", Value: 2, Usage: "pools per load balancer (listeners' default pools)"},
			&cli.IntFlag{Name: "members", Value: 5, Usage: "members per pool"},
			&cli.Float64Flag{Name: "rate", Usage: "heartbeats per second; 0 sends as fast as possible"},
			&cli.DurationFlag{Name: "duration", Value: 10 * time.Second, Usage: "how long to send"},
			&cli.Float64Flag{Name: "churn", Usage: "share of heartbeats that change a member's status (0-1)"},
			&cli.StringFlag{Name: "target", Usage: "heartbeat `HOST:PORT` (default: bind_ip:bind_port)"},
			&cli.StringFlag{Name: "metrics-url", Usage: "the health manager's metrics `URL` (default: from metrics_bind)"},
			&cli.BoolFlag{Name: "seed-db", Usage: "create the load balancers in the database first (COPY; multi-row INSERTs on MySQL/MariaDB)"},
			&cli.StringSliceFlag{Name: "watch-pid", Usage: "`NAME=PID`: report the CPU time of process PID and its children " +
				"over the run, per heartbeat applied (repeat; the same NAME adds up)"},
		},
		Action: runLoadgen,
	}
}

func runLoadgen(c *cli.Context) error {
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	kr, err := keyringFor(c, cfg, false)
	if err != nil {
		return err
	}
	hm := &cfg.HealthManager
	target := c.String("target")
	if target == "" {
		target = net.JoinHostPort(hm.BindIP.String(), strconv.Itoa(hm.BindPort))
	}
	metricsURL := c.String("metrics-url")
	if metricsURL == "" {
		if hm.MetricsBind == "" {
			return usageError("loadgen reads the health manager's /metrics: pass --metrics-url or set [health_manager] metrics_bind")
		}
		metricsURL = "http://" + hm.MetricsBind + "/metrics"
	}
	lc := &loadgen.Config{
		Amphorae: c.Int("amphorae"), Listeners: c.Int("listeners"), Pools: c.Int("pools"), Members: c.Int("members"),
		Rate: c.Float64("rate"), Duration: c.Duration("duration"), Churn: c.Float64("churn"),
		Target: target, MetricsURL: metricsURL, Keyring: kr, Progress: c.App.ErrWriter,
		ProgressBar: isTerminal(os.Stderr),
	}
	for _, w := range c.StringSlice("watch-pid") {
		name, pidText, ok := strings.Cut(w, "=")
		pid, err := strconv.Atoi(pidText)
		if !ok || name == "" || err != nil || pid <= 0 {
			return usageError("loadgen: --watch-pid %q: want NAME=PID", w)
		}
		if lc.Watch == nil {
			lc.Watch = map[string][]int{}
		}
		lc.Watch[name] = append(lc.Watch[name], pid)
	}
	if err := lc.Validate(); err != nil {
		return usageError("%v", err)
	}
	if c.Bool("seed-db") {
		if err := seedDB(c, cfg, lc); err != nil {
			return err
		}
	}
	report, err := loadgen.Run(c.Context, lc)
	if err != nil {
		return cli.Exit(fmt.Sprintf("octavia-health-manager: %v", err), exitRejected)
	}
	line, err := json.Marshal(report)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(c.App.Writer, string(line))
	return err
}

// seedDB creates loadgen's load balancers in [database] connection: COPY on
// PostgreSQL, multi-row INSERTs on MySQL/MariaDB (whose schema Octavia's
// octavia-db-manage built).
func seedDB(c *cli.Context, cfg *octaviaconf.Config, lc *loadgen.Config) error {
	var err error
	if cfg.Database.IsMySQL() {
		var db *sql.DB
		if db, err = migrations.OpenMySQL(cfg.Database.MySQL); err != nil {
			return cli.Exit("octavia-health-manager: "+err.Error(), exitUsage)
		}
		err = loadgen.SeedSQL(c.Context, db, lc)
		db.Close()
	} else {
		var pool *pgxpool.Pool
		if pool, err = openPool(c.Context, cfg); err != nil {
			return err
		}
		err = loadgen.Seed(c.Context, pool, lc)
		pool.Close()
	}
	if err != nil {
		return cli.Exit(fmt.Sprintf("octavia-health-manager: %v", err), exitRejected)
	}
	return nil
}

// isTerminal tells a terminal (progress bar) from a pipe or file (lines).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
