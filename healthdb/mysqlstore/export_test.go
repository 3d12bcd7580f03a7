package mysqlstore

// SetBeforeCommit makes every COMMIT of s call f first; an error from f
// is returned as COMMIT's, after a rollback (injected Galera certification
// failures).
func SetBeforeCommit(s *Store, f func() error) { s.beforeCommit = f }

// SetAfterCommit makes f's result replace every COMMIT's (a COMMIT that
// took effect but whose answer was lost).
func SetAfterCommit(s *Store, f func(error) error) { s.afterCommit = f }
