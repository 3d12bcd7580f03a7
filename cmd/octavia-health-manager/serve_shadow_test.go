package main

import (
	"context"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/octavia-vpp/health/healthdb/manager"
	"github.com/octavia-vpp/health/internal/testproc"
)

// serve --shadow runs in shadow mode whatever the files say, and needs no
// [service_auth]: it fails nothing over and deletes nothing.
func TestServeShadowFlag(t *testing.T) {
	conf := testproc.WriteFile(t, "octavia.conf", []byte("[health_manager]\nheartbeat_key = k\nbind_ip = 127.0.0.1\nbind_port = 0\n"+
		"metrics_bind =\nshadow_disagreement_file = "+filepath.Join(t.TempDir(), "d.jsonl")+"\n"+
		"[database]\nconnection = postgresql://nobody@127.0.0.1:1/none\n"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	shadowMode := make(chan bool, 1)
	err := runDaemon(ctx, daemonOptions{files: []string{conf}, logOutput: io.Discard, shadow: true,
		ready: func(m *manager.Manager) {
			shadowMode <- m.Shadow() != nil
			cancel()
		}})
	if err != nil {
		t.Fatalf("serve --shadow: %v", err)
	}
	if !<-shadowMode {
		t.Error("serve --shadow did not run in shadow mode")
	}
}
