package healthdb

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/octavia-vpp/health/heartbeat"
)

// Run closes a batch when it reaches BatchSize, or BatchDelay after its
// first message, and stops when its input closes.
func TestUpdaterRunBatches(t *testing.T) {
	db := openDB(t)
	f := &fixture{t: t, db: db}
	f.lb("lb-1", "ACTIVE", "ONLINE", true)
	f.amphora("amp-1", "lb-1", "ALLOCATED", "c-1")
	u, err := NewUpdater(UpdaterConfig{
		Store: NewStore(db), Deleter: noopDeleter{}, Rules: Rules{HeartbeatInterval: time.Hour},
		BatchSize: 4, BatchDelay: 20 * time.Millisecond, Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	in := make(chan *heartbeat.Message)
	var mu sync.Mutex
	var sizes []int
	finished := make(chan struct{})
	go func() {
		u.Run(context.Background(), in, func(r BatchResult, err error) {
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			sizes = append(sizes, r.Messages)
			mu.Unlock()
		})
		close(finished)
	}()
	send := func(n int) {
		for range n {
			in <- hb("amp-1", nil)
		}
	}
	send(9)                 // two full batches of 4, then one waiting
	time.Sleep(time.Second) // the delay closes the batch of 1
	send(2)
	close(in) // closing the input ends Run; the last 2 are applied first
	<-finished
	mu.Lock()
	defer mu.Unlock()
	total := 0
	for _, n := range sizes {
		if n > 4 {
			t.Errorf("a batch of %d exceeds BatchSize 4", n)
		}
		total += n
	}
	if total != 11 || len(sizes) < 4 || sizes[0] != 4 || sizes[1] != 4 || sizes[2] != 1 {
		t.Errorf("batch sizes %v, want 4, 4, 1 then the last 2", sizes)
	}
}
