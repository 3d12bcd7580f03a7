package migrations

import "time"

// LockID is the migration lock's advisory key, for tests that hold it.
var LockID = lockID

// Tests wait for the migration lock in milliseconds, not seconds. Set
// before any test runs, so no test races on them.
func init() {
	lockRetryEvery = 20 * time.Millisecond
	lockLogEvery = 100 * time.Millisecond
}
