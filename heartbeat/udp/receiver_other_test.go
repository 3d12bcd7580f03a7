//go:build !linux

package udp

const readBatchForTest = 32
