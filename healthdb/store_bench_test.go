package healthdb

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkStore splits a batch's database work: the topology read for 512
// amphorae and the amphora_health upsert for 512 rows, on a fleet of 5,000
// load balancers (2 listeners, 2 pools, 10 members each).
func BenchmarkStore(b *testing.B) {
	const fleet, batch = 5000, 512
	db := openDB(b)
	benchFleet(b, db, fleet)
	s := NewStore(db)
	ids := make([]string, batch)
	for i := range ids {
		ids[i] = fmt.Sprintf("amp-%d", i*7%fleet)
	}
	b.Run("LoadTopologies512", func(b *testing.B) {
		cpu := startCPU(b, db)
		for b.Loop() {
			if _, err := s.LoadTopologies(context.Background(), ids); err != nil {
				b.Fatal(err)
			}
		}
		cpu.Report(b, b.N)
	})
	b.Run("ApplyHealth512", func(b *testing.B) {
		cpu := startCPU(b, db)
		for b.Loop() {
			if err := s.Apply(context.Background(), &Writes{Health: ids}); err != nil {
				b.Fatal(err)
			}
		}
		cpu.Report(b, b.N)
	})
}
