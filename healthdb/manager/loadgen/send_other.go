//go:build !linux

package loadgen

import "net"

// batchWriter writes one datagram per call where sendmmsg is not
// available.
type batchWriter struct{ conn *net.UDPConn }

func newBatchWriter(conn *net.UDPConn) (*batchWriter, error) { return &batchWriter{conn: conn}, nil }

func (w *batchWriter) write(datagrams [][]byte) {
	for _, d := range datagrams {
		_, _ = w.conn.Write(d)
	}
}

// processCPU is not measured here; the report shows 0.
func processCPU() float64 { return 0 }
