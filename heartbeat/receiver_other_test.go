//go:build !linux

package heartbeat

const readBatchForTest = 32
