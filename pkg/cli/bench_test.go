package cli_test

import (
	"sort"
	"testing"
	"time"

	"github.com/entraclaw/entraclaw-cli/pkg/certs"
	"github.com/entraclaw/entraclaw-cli/pkg/entratest"
	"github.com/entraclaw/entraclaw-cli/pkg/keystore"
	"github.com/entraclaw/entraclaw-cli/pkg/tpmkey"
)

// Benchmarks exec the real binaries against the fake and report, per scenario, the median
// wall time of one run and the HTTP requests one run makes. `make bench` prints them as a
// table (scripts/bench-table.sh). Targets are in README "Performance".

type sample struct {
	wall     []time.Duration
	requests int
	writes   int
}

func (s *sample) report(b *testing.B) {
	sort.Slice(s.wall, func(i, j int) bool { return s.wall[i] < s.wall[j] })
	median := s.wall[len(s.wall)/2]
	b.ReportMetric(float64(median.Microseconds())/1000, "ms-median")
	b.ReportMetric(float64(s.requests)/float64(len(s.wall)), "requests/op")
	b.ReportMetric(float64(s.writes)/float64(len(s.wall)), "writes/op")
	b.ReportMetric(0, "ns/op")
}

func totalRequests(f *fakeEnv) int {
	n := 0
	for route, c := range f.Server.Counts() {
		if route != "GET /_fake/state" {
			n += c
		}
	}
	return n
}

// timedRun runs one binary, fails the benchmark on a non-zero exit, and records it.
func (s *sample) timedRun(b *testing.B, f *fakeEnv, name string, args ...string) {
	f.Server.ResetCounts()
	start := time.Now()
	_, stderr, code := f.run(b, name, args...)
	s.wall = append(s.wall, time.Since(start))
	if code != 0 {
		b.Fatalf("%s exited %d: %s", name, code, stderr)
	}
	s.requests += totalRequests(f)
	s.writes += f.Server.WriteCalls()
}

func BenchmarkTokenCold(b *testing.B) {
	f := startFake(b, "migrated")
	var s sample
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.timedRun(b, f, "entraclaw-provisioner-token", "-no-cache")
	}
	s.report(b)
}

func BenchmarkTokenCached(b *testing.B) {
	f := startFake(b, "migrated")
	f.run(b, "entraclaw-provisioner-token")
	var s sample
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.timedRun(b, f, "entraclaw-provisioner-token")
	}
	s.report(b)
}

func BenchmarkVerify(b *testing.B) {
	f := startFake(b, "migrated")
	var s sample
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.timedRun(b, f, "entraclaw-verify")
	}
	s.report(b)
}

// BenchmarkMigrateFirstRun: the legacy scenario with 100 ms latency per request and a 10 s
// propagation delay; the wall time should be the delay plus a few seconds, not a fixed sleep.
func BenchmarkMigrateFirstRun(b *testing.B) {
	var s sample
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		f := startFake(b, "legacy")
		f.Server.SetLatency(100 * time.Millisecond)
		f.Server.SetPropagationDelay(10 * time.Second)
		b.StartTimer()
		s.timedRun(b, f, "entraclaw-migrate")
	}
	s.report(b)
}

// BenchmarkMigrateRerun: a migrated machine, 100 ms latency; no write calls, only reads.
func BenchmarkMigrateRerun(b *testing.B) {
	f := startFake(b, "legacy")
	f.Server.SetPropagationDelay(0)
	if _, stderr, code := f.run(b, "entraclaw-migrate"); code != 0 {
		b.Fatalf("first migrate: %s", stderr)
	}
	f.Server.SetLatency(100 * time.Millisecond)
	var s sample
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.timedRun(b, f, "entraclaw-migrate")
	}
	s.report(b)
}

// BenchmarkTokenColdTPM: BenchmarkTokenCold with the private key in a software TPM (swtpm):
// the assertion is signed in the TPM (open, re-create the storage key, load, sign, flush).
func BenchmarkTokenColdTPM(b *testing.B) {
	f := startFake(b, "migrated")
	sw := entratest.StartSoftwareTPM(b)
	bundle, err := tpmkey.Generate(sw.Socket, time.Now(), certs.DefaultLifetime)
	if err != nil {
		b.Fatal(err)
	}
	sc := f.Scenario
	if err := f.Server.AddKeyCredential(sc.TenantID, sc.ClientID, bundle.Cert, bundle.Cert.NotBefore, bundle.Cert.NotAfter); err != nil {
		b.Fatal(err)
	}
	if err := keystore.New(f.Service).PutBundle(sc.TenantID, bundle.PEM()); err != nil {
		b.Fatal(err)
	}
	f.Env = append(f.Env, tpmkey.EnvTPM+"="+sw.Socket)
	var s sample
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.timedRun(b, f, "entraclaw-provisioner-token", "-no-cache")
	}
	s.report(b)
}
