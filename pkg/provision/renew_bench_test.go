package provision_test

import (
	"context"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/entraclaw/entraclaw-cli/pkg/entratest"
	"github.com/entraclaw/entraclaw-cli/pkg/provision"
)

// BenchmarkFleetRenewal: 50 machines on one app renew in the same moment, with reads
// lagging writes (300 ms) and new certificates accepted after 300 ms, each with a token
// loop running (make bench). Each round must end with 0 failed token calls and exactly
// one certificate per machine, its new one, on the app. Reported per round: the fleet's
// wall time (ms-median over rounds), Graph requests and writes per renewal, and the most
// reads one renewal made.
func BenchmarkFleetRenewal(b *testing.B) {
	const n = 50
	f, ms := newMachines(b, n, entratest.WithReadLag(300*time.Millisecond), entratest.WithPropagationDelay(300*time.Millisecond))
	var walls []float64
	var requests, writes, renewals, maxReads int
	var calls, failures atomic.Int64
	for b.Loop() {
		ctx, stop := context.WithCancel(context.Background())
		var loops, wg sync.WaitGroup
		for _, mc := range ms {
			loops.Add(1)
			go func() { defer loops.Done(); tokenLoop(ctx, mc, &calls, &failures) }()
		}
		start := time.Now()
		sums := make([]*provision.Summary, n)
		errs := make([]error, n)
		for i, mc := range ms {
			wg.Add(1)
			go func() { defer wg.Done(); sums[i], _, errs[i] = mc.renew(true) }()
		}
		wg.Wait()
		walls = append(walls, float64(time.Since(start).Microseconds())/1000)
		stop()
		loops.Wait()
		for i, err := range errs {
			if err != nil {
				b.Fatalf("%s: %v", ms[i].name, err)
			}
			r := sums[i].Renewal
			requests += r.GraphRequests
			writes += r.GraphWrites
			maxReads = max(maxReads, r.GraphRequests-r.GraphWrites)
			renewals++
		}
		app := f.app(f.sc.ClientID)
		if len(app.KeyCredentials) != n {
			b.Fatalf("the app holds %d certificates after the round, want %d", len(app.KeyCredentials), n)
		}
		for _, mc := range ms {
			if !slices.Contains(thumbs(app), mc.thumb()) {
				b.Fatalf("%s's certificate is not on the app", mc.name)
			}
		}
	}
	if failures.Load() != 0 {
		b.Fatalf("%d of %d token calls failed during the renewals", failures.Load(), calls.Load())
	}
	sort.Float64s(walls)
	b.ReportMetric(walls[len(walls)/2], "ms-median")
	b.ReportMetric(float64(requests)/float64(renewals), "requests/op")
	b.ReportMetric(float64(writes)/float64(renewals), "writes/op")
	b.ReportMetric(float64(maxReads), "max-reads")
	b.ReportMetric(float64(calls.Load()), "token-calls")
	b.ReportMetric(float64(failures.Load()), "token-failures")
}
