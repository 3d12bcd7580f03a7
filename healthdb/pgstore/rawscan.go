package pgstore

// A batch's topology read returns some twenty member rows per heartbeat;
// decoding them through pgx's scan plans cost the manager more than the
// rest of the batch's work. The helpers below read the wire values
// directly where their encoding is fixed, and the callers fall back to
// rows.Scan for anything else (a NULL).

// rawText is a varchar column's value: its text and binary encodings are
// both the string's bytes.
func rawText(v []byte) string { return string(v) }

// rawStatus is rawText for status columns, sharing the strings of the
// values Octavia uses instead of allocating one per row.
func rawStatus(v []byte) string {
	switch string(v) { // no allocation: the compiler compares in place
	case "ONLINE":
		return "ONLINE"
	case "OFFLINE":
		return "OFFLINE"
	case "DEGRADED":
		return "DEGRADED"
	case "ERROR":
		return "ERROR"
	case "NO_MONITOR":
		return "NO_MONITOR"
	case "DRAINING":
		return "DRAINING"
	}
	return string(v)
}

// nonNull reports whether every value is present.
func nonNull(values [][]byte) bool {
	for _, v := range values {
		if v == nil {
			return false
		}
	}
	return true
}
