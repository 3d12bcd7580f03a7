package manager

// BatchesDone counts the health batches that have ended, committed or
// not; a batch's transitions are on the status page before it counts.
func (m *Manager) BatchesDone() uint64 { return m.life.batches.Load() }
