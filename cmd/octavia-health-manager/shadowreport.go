package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/octavia-vpp/health/healthdb/manager"
	"github.com/octavia-vpp/health/healthdb/shadow"
)

func shadowReportCommand() *cli.Command {
	return &cli.Command{
		Name:  "shadow-report",
		Usage: "summarise shadow mode: heartbeats compared, disagreements by kind, top entities",
		Description: "Reads the counters of a running shadow from its /metrics ([health_manager]\n" +
			"metrics_bind, or --metrics-url) and the disagreements kept in\n" +
			"[health_manager] shadow_disagreement_file (or --file), and prints a summary.\n" +
			"See docs/shadow.md. Exit 0 when both could be read.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "metrics-url", Usage: "the shadow's metrics `URL` (default: http://[health_manager] metrics_bind/metrics; \"none\" skips them)"},
			&cli.StringFlag{Name: "file", Usage: "the disagreement `FILE` (default: [health_manager] shadow_disagreement_file)"},
		},
		Action: runShadowReport,
	}
}

func runShadowReport(c *cli.Context) error {
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	r := &shadow.Report{File: c.String("file")}
	if r.File == "" {
		r.File = manager.ShadowDisagreementFile(cfg)
	}
	if kept, err := shadow.ReadFile(r.File); errors.Is(err, fs.ErrNotExist) {
		// The shadow creates the file at its first disagreement.
		r.FileMissing = true
	} else if err != nil {
		r.FileError = err.Error()
	} else {
		r.Kept = kept
	}
	url := c.String("metrics-url")
	if url == "" && cfg.HealthManager.MetricsBind != "" {
		url = "http://" + cfg.HealthManager.MetricsBind + "/metrics"
	}
	if url != "" && url != "none" {
		client := &http.Client{Timeout: 10 * time.Second}
		resp, err := client.Get(url)
		if err == nil {
			err = r.ParseMetrics(url, resp.Body)
			resp.Body.Close()
		}
		if err != nil {
			r.MetricsError = fmt.Sprintf("%s: %v", url, err)
		}
	}
	r.Print(c.App.Writer)
	if r.FileError != "" || r.MetricsError != "" {
		return cli.Exit("octavia-health-manager: shadow-report: part of the summary could not be read", exitRejected)
	}
	return nil
}
