package healthdb

import (
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/octavia-vpp/health/heartbeat"
)

// memberLookup must find what a dict built from the reported members finds
// (the last of a repeated id) whichever of its three ways it takes.
func TestMemberLookupMatchesADict(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	for round := 0; round < 2000; round++ {
		n := r.IntN(3 * memberScanMax)
		db := make([]Member, n)
		for i := range db {
			db[i] = Member{ID: "m" + strconv.Itoa(1000+i)} // ascending
		}
		var reported []heartbeat.Member
		if round%7 == 6 && n > 1 { // rows that repeat an id, as no database has
			db[n-1].ID = db[0].ID
		}
		switch round % 3 {
		case 0: // the database's members in its order
			for i := range db {
				reported = append(reported, heartbeat.Member{ID: db[i].ID, Status: "S" + strconv.Itoa(i)})
			}
		default: // some of them, shuffled, with repeats and strangers
			for k := r.IntN(3*memberScanMax + 1); k > 0; k-- {
				id := "m" + strconv.Itoa(1000+r.IntN(n+5))
				reported = append(reported, heartbeat.Member{ID: id, Status: "S" + strconv.Itoa(k)})
			}
		}
		dict := map[string]*heartbeat.Member{}
		for i := range reported {
			dict[reported[i].ID] = &reported[i]
		}
		l := newMemberLookup(reported, db)
		for i := range db {
			if got, want := l.find(i, db[i].ID), dict[db[i].ID]; got != want {
				t.Fatalf("round %d: member %s found %+v, want %+v (reported %v)", round, db[i].ID, got, want, reported)
			}
		}
		l.release()
	}
}
