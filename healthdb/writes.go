package healthdb

// Writes is the net effect of a batch of heartbeats on the database.
type Writes struct {
	// Health lists the amphorae whose amphora_health row is refreshed.
	Health []string
	// The new operating_status per id, for each table.
	LoadBalancers map[string]string
	Listeners     map[string]string
	Pools         map[string]string
	Members       map[string]string
}

// Empty reports whether there is nothing to write.
func (w *Writes) Empty() bool {
	return len(w.Health) == 0 && len(w.LoadBalancers) == 0 && len(w.Listeners) == 0 &&
		len(w.Pools) == 0 && len(w.Members) == 0
}
