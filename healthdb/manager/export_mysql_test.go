package manager

// SetMySQLVersionCheck replaces the check of each MySQL connection's
// SELECT VERSION() for a test, until it ends.
func SetMySQLVersionCheck(t interface{ Cleanup(func()) }, check func(string) error) {
	old := checkMySQLVersion
	checkMySQLVersion = check
	t.Cleanup(func() { checkMySQLVersion = old })
}
