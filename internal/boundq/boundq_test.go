package boundq

import (
	"reflect"
	"sync"
	"testing"
)

func TestDropsOldestWhenFull(t *testing.T) {
	q := New[int](3)
	var discarded []int
	for i := 1; i <= 5; i++ {
		discarded = append(discarded, q.Put(i)...)
	}
	if !reflect.DeepEqual(discarded, []int{1, 2}) || q.Dropped() != 2 || q.Len() != 3 {
		t.Fatalf("discarded %v, dropped %d, len %d", discarded, q.Dropped(), q.Len())
	}
	q.Close()
	var got []int
	for v := range q.C() {
		got = append(got, v)
	}
	if !reflect.DeepEqual(got, []int{3, 4, 5}) {
		t.Errorf("kept %v, want the newest three", got)
	}
}

func TestConcurrentProducersNeverBlockOrLose(t *testing.T) {
	q := New[int](16)
	const producers, each = 8, 10000
	var wg sync.WaitGroup
	var mu sync.Mutex
	discarded := 0
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				n := len(q.Put(p*each + i))
				mu.Lock()
				discarded += n
				mu.Unlock()
			}
		}()
	}
	received := 0
	done := make(chan struct{})
	go func() {
		for range q.C() {
			received++
		}
		close(done)
	}()
	wg.Wait()
	q.Close()
	<-done
	if received+discarded != producers*each || uint64(discarded) != q.Dropped() {
		t.Errorf("received %d + discarded %d != %d (dropped %d)", received, discarded, producers*each, q.Dropped())
	}
}
