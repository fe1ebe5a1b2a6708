package notify

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

const benchWaiters = 10_000

// fleet is benchWaiters agents long-polling, each in its own goroutine (standing in for
// the HTTP handler's), each waiting again as soon as it is answered.
type fleet struct {
	n        *Notifier
	names    []string
	answered []chan time.Time // per agent: when a changed answer arrived
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

func startFleet(b *testing.B, n *Notifier) *fleet {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &fleet{n: n, cancel: cancel}
	for i := range benchWaiters {
		f.names = append(f.names, fmt.Sprint("cluster-", i))
		f.answered = append(f.answered, make(chan time.Time, 1))
	}
	for i := range benchWaiters {
		f.wg.Go(func() {
			since := n.Current(f.names[i])
			for {
				a, err := n.Wait(ctx, f.names[i], since)
				if err != nil {
					return
				}
				since = a.Revision
				if a.Changed {
					f.answered[i] <- time.Now()
				}
			}
		})
	}
	deadline := time.Now().Add(time.Minute)
	for n.Waiting() < benchWaiters {
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d waiters blocked", n.Waiting(), benchWaiters)
		}
		time.Sleep(time.Millisecond)
	}
	return f
}

func (f *fleet) stop() {
	f.cancel()
	f.wg.Wait()
}

// heapInUse returns the live heap after a GC.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// BenchmarkPublishOne measures a publish for one cluster while 10 000 agents wait:
// the time until that agent is answered (ns/op, p50/p99 latency), with every other
// agent left asleep. It also reports the memory per waiting agent, goroutine stack
// included.
func BenchmarkPublishOne(b *testing.B) {
	n, err := New(Config{Timeout: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	n.PublishAll("rev-0")
	before := heapInUse()
	f := startFleet(b, n)
	defer f.stop()
	perWaiter := float64(heapInUse()-before) / benchWaiters

	var lat []time.Duration
	i := 0
	for b.Loop() {
		c := i % benchWaiters
		start := time.Now()
		n.Publish(fmt.Sprint("rev-", i+1), []string{f.names[c]})
		at := <-f.answered[c]
		lat = append(lat, at.Sub(start))
		i++
	}
	slices.Sort(lat)
	b.ReportMetric(perWaiter, "B/waiter")
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
	if w := n.Waiting(); w < benchWaiters-1 {
		b.Fatalf("%d agents left waiting, want %d: a publish woke others", w, benchWaiters)
	}
}

// BenchmarkPublishAll measures a publish for every cluster while 10 000 agents wait:
// the time until all of them are answered.
func BenchmarkPublishAll(b *testing.B) {
	n, err := New(Config{Timeout: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	n.PublishAll("rev-0")
	f := startFleet(b, n)
	defer f.stop()
	i := 0
	for b.Loop() {
		i++
		n.PublishAll(fmt.Sprint("rev-", i))
		for _, ch := range f.answered {
			<-ch
		}
		// Let the fleet block again before the next round.
		for n.Waiting() < benchWaiters {
			runtime.Gosched()
		}
	}
}
