package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"

	"github.com/octavia-vpp/health/healthdb"
	"github.com/octavia-vpp/health/heartbeat"
	"github.com/octavia-vpp/health/statsdriver"
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

// replayLine is one captured datagram.
type replayLine struct {
	B64     *string `json:"b64"`
	SrcAddr string  `json:"srcaddr"`
}

// replaySummary is what replay prints at the end.
type replaySummary struct {
	lines, accepted int
	badLines        int
	rejected        map[string]int
	applied         healthdb.BatchResult
	applyErrors     int
	// statsWritten counts datagrams whose statistics every driver took;
	// statsDropped those Octavia drops before any driver runs (a listener
	// without "stats"); statsRefused those with values a driver refused as
	// Octavia's does (negative results, ids too long for the column);
	// statsErrors those a driver failed on otherwise (the database).
	statsWritten, statsDropped, statsRefused, statsErrors int
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
	log := newLogger(cfg)
	pool, err := openPool(c.Context, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	updater, err := newUpdater(cfg, pool, log)
	if err != nil {
		return err
	}
	// A config shared with serve may list our prometheus driver; replay
	// gives it a registry of its own, which nothing serves.
	stats, err := statsdriver.OpenAll(cfg.ControllerWorker.StatisticsDrivers,
		statsdriver.Deps{Pool: pool, Logger: log, Registerer: prometheus.NewRegistry()})
	if err != nil {
		return usageError("%v", err)
	}

	sum := replaySummary{rejected: map[string]int{}}
	sc := bufio.NewScanner(f)
	// A datagram is at most 64 KiB; base64 and JSON around it stay well
	// under 1 MiB.
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		sum.lines++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			sum.lines--
			continue
		}
		var line replayLine
		if err := json.Unmarshal([]byte(text), &line); err != nil || line.B64 == nil {
			sum.badLines++
			log.Warn("replay line skipped: not a JSON object with a \"b64\" field", "line", sum.lines)
			continue
		}
		datagram, err := base64.StdEncoding.DecodeString(*line.B64)
		if err != nil {
			sum.badLines++
			log.Warn("replay line skipped: b64 is not base64", "line", sum.lines, "err", err)
			continue
		}
		recvTime := time.Now()
		msg, _, err := kr.Open(datagram)
		if err != nil {
			sum.rejected[heartbeat.ReasonOf(err).String()]++
			log.Debug("heartbeat rejected", "line", sum.lines, "srcaddr", line.SrcAddr, "err", err)
			continue
		}
		msg.RecvTime = recvTime
		sum.accepted++
		res, err := updater.ApplyBatch(c.Context, []*heartbeat.Message{msg})
		sum.applied.Add(res)
		if err != nil {
			sum.applyErrors++
			log.Error("heartbeat not applied", "line", sum.lines, "amphora_id", msg.AmphoraID, "err", err)
		}
		sum.stats(c.Context, stats, msg, sum.lines, log)
	}
	if err := sc.Err(); err != nil {
		return usageError("read %s at line %d: %v", c.Args().First(), sum.lines+1, err)
	}
	sum.print(c.App.Writer)
	if sum.applyErrors > 0 || sum.statsErrors > 0 {
		return cli.Exit(fmt.Sprintf("octavia-health-manager: %d heartbeats could not be applied, statistics of %d not fully recorded",
			sum.applyErrors, sum.statsErrors), exitRejected)
	}
	return nil
}

// stats sends one accepted heartbeat to the statistics drivers. Like
// Octavia's, a driver's failure is logged and does not stop the replay.
func (s *replaySummary) stats(ctx context.Context, drivers *statsdriver.Fanout, msg *heartbeat.Message, line int, log *slog.Logger) {
	records, deltas, ok := statsdriver.FromMessage(msg)
	if !ok {
		s.statsDropped++
		log.Debug("statistics dropped: a listener has no stats", "line", line, "amphora_id", msg.AmphoraID)
		return
	}
	if err := drivers.Update(ctx, records, deltas); err != nil {
		if isOnlyRefusal(err) {
			s.statsRefused++
		} else {
			s.statsErrors++
		}
		log.Warn("statistics not fully recorded", "line", line, "amphora_id", msg.AmphoraID, "err", err)
		return
	}
	s.statsWritten++
}

// isOnlyRefusal tells whether every driver error in err is a refusal of
// the data (statsdriver.ErrNotRecorded), which Octavia's drivers make too,
// rather than a failure to reach the database.
func isOnlyRefusal(err error) bool {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			if !isOnlyRefusal(e) {
				return false
			}
		}
		return true
	}
	return errors.Is(err, statsdriver.ErrNotRecorded)
}

func (s *replaySummary) print(w io.Writer) {
	fmt.Fprintf(w, "datagrams: %d read, %d accepted, %d rejected, %d unreadable lines\n",
		s.lines-s.badLines, s.accepted, s.lines-s.badLines-s.accepted, s.badLines)
	for _, reason := range sortedKeys(s.rejected) {
		fmt.Fprintf(w, "  rejected %-10s %d\n", reason, s.rejected[reason])
	}
	a := &s.applied
	fmt.Fprintf(w, "health rows written: %d\n", a.Health[healthdb.HealthWrite])
	fmt.Fprintf(w, "not written: %d listener-count mismatch, %d dropped late, %d zombie, %d unknown amphora, %d aborted\n",
		a.Health[healthdb.HealthSkipCountMismatch], a.Health[healthdb.HealthSkipLate],
		a.Health[healthdb.HealthSkipZombie], a.Health[healthdb.HealthSkipUnknown], a.Health[healthdb.HealthSkipAborted])
	if a.ComputeDeletes > 0 || a.Aborted > 0 {
		fmt.Fprintf(w, "zombie compute deletions: %d (%d failed); processing stopped part-way: %d\n",
			a.ComputeDeletes, a.ComputeDeleteFailures, a.Aborted)
	}
	fmt.Fprintln(w, "status changes:")
	total := 0
	for _, entity := range []string{"load_balancer", "listener", "pool", "member"} {
		for _, status := range sortedKeys(a.Changes[entity]) {
			n := a.Changes[entity][status]
			total += n
			fmt.Fprintf(w, "  %-13s -> %-10s %d\n", entity, status, n)
		}
	}
	if total == 0 {
		fmt.Fprintln(w, "  none")
	}
	fmt.Fprintf(w, "statistics: %d recorded, %d dropped (listener without stats), %d refused in part, %d with driver errors\n",
		s.statsWritten, s.statsDropped, s.statsRefused, s.statsErrors)
	if s.applyErrors > 0 {
		fmt.Fprintf(w, "database errors: %d heartbeats not applied\n", s.applyErrors)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
