package oslolog

import (
	"github.com/urfave/cli/v2"

	"github.com/octavia-vpp/health/internal/octaviaconf"
)

// Flags are oslo.log's command-line options that override the config
// file's [DEFAULT] ones, with --log-format (json is use_json).
func Flags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "debug", Aliases: []string{"d"}, Usage: "log at DEBUG level ([DEFAULT] debug)"},
		&cli.StringFlag{Name: "log-file", Usage: "log to `PATH` ([DEFAULT] log_file); SIGHUP reopens it"},
		&cli.StringFlag{Name: "log-dir", Usage: "the `DIR` of --log-file ([DEFAULT] log_dir)"},
		&cli.BoolFlag{Name: "use-json", Usage: "log one JSON object per line ([DEFAULT] use_json)"},
		&cli.BoolFlag{Name: "use-journal", Usage: "log to journald, with its fields ([DEFAULT] use_journal)"},
		&cli.BoolFlag{Name: "use-syslog", Usage: "log to syslog as well ([DEFAULT] use_syslog)"},
		&cli.StringFlag{Name: "syslog-log-facility", Usage: "syslog `FACILITY`, e.g. LOG_LOCAL0 ([DEFAULT] syslog_log_facility)"},
		&cli.StringFlag{Name: "log-format", Value: "text", Usage: "log as `FORMAT`: text or json (json is --use-json)"},
	}
}

// FromCLI returns the options of the config file's [DEFAULT] section
// (debug and lg) with the flags of Flags that c was given on top.
func FromCLI(c *cli.Context, program string, debug bool, lg octaviaconf.Logging) Options {
	o := Options{Program: program, Debug: debug, Logging: lg, Format: c.String("log-format")}
	if c.IsSet("debug") {
		o.Debug = c.Bool("debug")
	}
	if c.IsSet("log-file") {
		o.LogFile = c.String("log-file")
	}
	if c.IsSet("log-dir") {
		o.LogDir = c.String("log-dir")
	}
	if c.IsSet("use-json") {
		o.UseJSON = c.Bool("use-json")
	}
	if c.IsSet("use-journal") {
		o.UseJournal = c.Bool("use-journal")
	}
	if c.IsSet("use-syslog") {
		o.UseSyslog = c.Bool("use-syslog")
	}
	if c.IsSet("syslog-log-facility") {
		o.SyslogLogFacility = c.String("syslog-log-facility")
	}
	return o
}
