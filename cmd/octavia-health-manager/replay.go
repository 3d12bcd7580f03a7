package main

import (
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/octavia-vpp/health/healthdb/manager"
)

func replayCommand() *cli.Command {
	return &cli.Command{
		Name:      "replay",
		Usage:     "apply a captured heartbeat stream to the database, in order",
		ArgsUsage: "FILE",
		Description: "FILE holds JSON lines, each with \"b64\" (one datagram, base64) and optionally\n" +
			"\"srcaddr\"; other fields are ignored. Every datagram is opened and applied in\n" +
			"file order, one at a time, through the daemon's own code path, with recv_time\n" +
			"the moment it is read: first the health update, then the statistics drivers of\n" +
			"[controller_worker] statistics_drivers, which see every accepted datagram (also\n" +
			"from zombie or unknown amphorae), as in Octavia. A summary follows. Exit 0 when\n" +
			"every line was read and applied.",
		Flags:  []cli.Flag{keyFlag()},
		Action: runReplay,
	}
}

func runReplay(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageError("replay needs exactly one FILE")
	}
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	kr, err := keyringFor(c, cfg, false)
	if err != nil {
		return err
	}
	f, err := os.Open(c.Args().First())
	if err != nil {
		return usageError("%v", err)
	}
	defer f.Close()
	logger, err := newLogger(c, cfg)
	if err != nil {
		return err
	}
	defer logger.Close()
	log := logger.Logger
	if cfg.Database.IsMySQL() {
		return replayMySQL(c, cfg, kr, f, log)
	}
	pool, err := openPool(c.Context, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	updater, err := manager.NewReplayUpdater(cfg, pool, log)
	if err != nil {
		return usageError("%v", err)
	}
	// The drivers serve opens, by the same registry and rules.
	stats, err := manager.NewReplayStats(cfg, pool, log)
	if err != nil {
		return usageError("%v", err)
	}

	return replayWith(c, &manager.Replayer{Keys: kr, Updater: updater, Stats: stats, Log: log}, f)
}

func replayWith(c *cli.Context, r *manager.Replayer, f io.Reader) error {
	sum, err := r.Run(c.Context, f)
	if err != nil {
		return usageError("read %s %v", c.Args().First(), err)
	}
	sum.Print(c.App.Writer)
	if applyErrors, statsErrors := sum.Failures(); applyErrors > 0 || statsErrors > 0 {
		return cli.Exit(fmt.Sprintf("octavia-health-manager: %d heartbeats could not be applied, statistics of %d not fully recorded",
			applyErrors, statsErrors), exitRejected)
	}
	return nil
}
