// Package boundq is a bounded FIFO queue that, when full, discards its
// oldest item to make room for the newest. Under overload the health
// manager keeps the freshest heartbeats: an old one would be dropped as
// late anyway, and a new one supersedes it.
package boundq

import "sync/atomic"

// Queue is safe for any number of producers and consumers.
type Queue[T any] struct {
	ch      chan T
	dropped atomic.Uint64
}

// New returns a queue holding at most capacity items (at least 1).
func New[T any](capacity int) *Queue[T] {
	return &Queue[T]{ch: make(chan T, max(capacity, 1))}
}

// Put enqueues v, first discarding the oldest items while the queue is full.
// It returns the discarded items so the caller can count them by kind; most
// calls discard nothing. Put must not be called after Close.
func (q *Queue[T]) Put(v T) (discarded []T) {
	for {
		select {
		case q.ch <- v:
			return discarded
		default:
		}
		select {
		case old := <-q.ch:
			q.dropped.Add(1)
			discarded = append(discarded, old)
		default: // a consumer made room meanwhile
		}
	}
}

// C is the channel consumers receive from; it is closed by Close once
// drained.
func (q *Queue[T]) C() <-chan T { return q.ch }

// Len is the number of queued items.
func (q *Queue[T]) Len() int { return len(q.ch) }

// Cap is the queue's capacity.
func (q *Queue[T]) Cap() int { return cap(q.ch) }

// Dropped counts the items discarded since the queue was made.
func (q *Queue[T]) Dropped() uint64 { return q.dropped.Load() }

// Close ends the queue: consumers receive what is left, then see it closed.
func (q *Queue[T]) Close() { close(q.ch) }
