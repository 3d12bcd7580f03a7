package main

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/octavia-vpp/health/internal/testproc"
)

// With failover_driver octavia_api (the default), serve refuses to start
// unless [service_auth] can get a token, and names what is missing.
func TestServeRefusesIncompleteServiceAuth(t *testing.T) {
	tests := []struct {
		name     string
		conf     string
		want     []string // substrings of the error
		password bool     // the conf holds the password "hunter2", which must not be shown
	}{
		{"nothing set, default drivers", "",
			[]string{"[service_auth] lacks auth_url, username, password, project_name or project_id, user_domain_name or user_domain_id",
				"failover_driver = octavia_api", "compute_driver = compute_nova_driver", "refusing to start"}, false},
		{"password missing", "[service_auth]\nauth_url = http://keystone/v3\nusername = octavia\nproject_name = service\n" +
			"user_domain_name = Default\nproject_domain_name = Default\n",
			[]string{"[service_auth] lacks password,", "failover_driver = octavia_api"}, false},
		{"project domain missing", "[service_auth]\nauth_url = http://keystone/v3\nusername = octavia\npassword = hunter2\n" +
			"project_name = service\nuser_domain_name = Default\n",
			[]string{"lacks project_domain_name or project_domain_id,"}, true},
		{"noop failover, nova compute", "[health_manager]\nfailover_driver = noop\n",
			[]string{"[service_auth] lacks auth_url", "compute_driver = compute_nova_driver"}, false},
		{"unknown failover driver", "[health_manager]\nfailover_driver = amphora\n",
			[]string{`failover_driver "amphora" is not supported`}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf := testproc.WriteFile(t, "octavia.conf", []byte("[DEFAULT]\n[health_manager]\nheartbeat_key = k\n"+
				"[database]\nconnection = postgresql://nobody@127.0.0.1:1/none\n"))
			extra := testproc.WriteFile(t, "extra.conf", []byte(tt.conf))
			err := runDaemon(context.Background(), daemonOptions{files: []string{conf, extra}, logOutput: io.Discard})
			if err == nil {
				t.Fatal("serve started")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}

	// The binary exits with the usage code and says why on stderr.
	conf := testproc.WriteFile(t, "octavia.conf", []byte("[health_manager]\nheartbeat_key = k\n"))
	r := runBinary(t, nil, "--config-file", conf, "serve")
	if r.code != exitUsage || !strings.Contains(r.stderr, "[service_auth] lacks auth_url") {
		t.Errorf("exit %d, stderr %q; want %d and the missing options", r.code, r.stderr, exitUsage)
	}
}

// The daemon fails over a stale amphora through a (fake) Octavia API
// after the start-up grace, and leaves the one that heartbeats alone.
