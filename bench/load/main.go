// Command load is Latchkey's load driver (issue 17, docs/performance.md).
// It drives a running `latchkey serve` on loopback with the workloads an
// identity broker lives on, and reports for each: operations per second at
// saturation, p50/p99 latency at saturation and at half that rate (open
// loop: latency counts from when a request was due, so a stalled server is
// not hidden), the server's CPU per operation (/proc/<pid>/stat), its peak
// and idle RSS (/proc/<pid>/status), and, measured by this process in the
// same run, the machine's raw ES256/RS256 signing rate and argon2id cost,
// so every result is also a ratio to the limit.
//
//	load -base http://127.0.0.1:5556 -pid 1234 -creds creds.json [-c 8] [-duration 5s]
//
// Pin it and the server to different cores (bench/run.sh does, with
// taskset). Every phase is bounded by -duration and -max-ops.
//
// Helpers for bench/run.sh: `load freeport`, `load wait URL`, `load pgdb
// create|drop URL`, `load cheaphash DIALECT DSN PASSWORD USER...`, `load
// redisclean ADDRS PREFIX`.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "freeport":
			exit(freePort())
			return
		case "wait":
			exit(waitReady(os.Args[2:]))
			return
		case "pgdb":
			exit(pgdb(os.Args[2:]))
			return
		case "cheaphash":
			exit(cheapHash(os.Args[2:]))
			return
		case "redisclean":
			exit(redisClean(os.Args[2:]))
			return
		}
	}
	exit(run())
}

func exit(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

type options struct {
	base        string
	pid         int
	credsFile   string
	concurrency int
	duration    time.Duration
	warmup      time.Duration
	maxOps      int
	fraction    float64
	only        string
	label       string
	jsonOut     string
	rawFor      time.Duration
	graceRounds int
}

func run() error {
	var o options
	flag.StringVar(&o.base, "base", "http://127.0.0.1:5556", "the issuer URL of the server (loopback)")
	flag.IntVar(&o.pid, "pid", 0, "the server's process id, for CPU and RSS figures")
	flag.StringVar(&o.credsFile, "creds", "", "JSON file with the clients and users bench/run.sh created")
	flag.IntVar(&o.concurrency, "c", 8, "concurrent connections (workers)")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "length of each measured phase")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured load before each scenario")
	flag.IntVar(&o.maxOps, "max-ops", 500_000, "at most this many operations per phase")
	flag.Float64Var(&o.fraction, "fraction", 0.5, "the latency phase runs at this fraction of the saturation rate")
	flag.StringVar(&o.only, "scenarios", "", "comma-separated scenarios to run (default all)")
	flag.StringVar(&o.label, "label", "", "names the run in the report (e.g. the store)")
	flag.StringVar(&o.jsonOut, "json", "", "also write the results as JSON to this file")
	flag.DurationVar(&o.rawFor, "raw", time.Second, "time per raw crypto measurement")
	flag.IntVar(&o.graceRounds, "grace-rounds", 10, "rounds of 20 parallel refreshes of one token (0: skip)")
	flag.Parse()

	u, err := url.Parse(o.base)
	if err != nil || u.Host == "" {
		return fmt.Errorf("-base %q is not a URL", o.base)
	}
	if o.concurrency < 1 || o.duration <= 0 || o.maxOps < 1 || o.fraction <= 0 || o.fraction > 1 {
		return errors.New("-c, -duration, -max-ops must be positive and -fraction in (0, 1]")
	}
	raw, err := os.ReadFile(o.credsFile)
	if err != nil {
		return fmt.Errorf("-creds: %w", err)
	}
	e := &env{addr: u.Host, host: u.Host, base: strings.TrimSuffix(o.base, "/")}
	if err := json.Unmarshal(raw, &e.creds); err != nil || len(e.creds.Users) == 0 {
		return fmt.Errorf("-creds %s: %v (users: %d)", o.credsFile, err, len(e.creds.Users))
	}
	e.ccAuth = basic(e.creds.CCClient, e.creds.CCSecret)
	e.appAuth = basic(e.creds.AppClient, e.creds.AppSecret)
	e.fedAuth = basic(e.creds.Upstream.AppClient, e.creds.Upstream.AppSecret)
	srv := server{pid: o.pid}
	if u := e.creds.Upstream; u.Addr != "" {
		op, err := startUpstream(u.Addr, u.ClientID, u.ClientSecret)
		if err != nil {
			return err
		}
		defer op.close()
	}

	rep := report{Label: o.label, Base: o.base, Concurrency: o.concurrency, Duration: o.duration.String(),
		Fraction: o.fraction, GOMAXPROCS: runtime.GOMAXPROCS(0), NumCPU: machineCPUs(), CPU: cpuModel(),
		LoadAvgStart: loadAvg(), Started: time.Now().UTC().Format(time.RFC3339)}
	rep.IdleRSSKB = srv.kb("VmRSS")
	fmt.Fprintf(os.Stderr, "load: %s: idle server RSS %d kB; measuring raw crypto rates\n", o.label, rep.IdleRSSKB)
	rawStart, err := measureRaw(o.rawFor)
	if err != nil {
		return err
	}
	if err := checkSetup(e); err != nil {
		return fmt.Errorf("setup check: %w", err)
	}

	want := map[string]bool{}
	for _, s := range strings.Split(o.only, ",") {
		if s = strings.TrimSpace(s); s != "" {
			want[s] = true
		}
	}
	for _, sc := range scenarios() {
		if len(want) > 0 && !want[sc.name] {
			continue
		}
		fmt.Fprintf(os.Stderr, "load: %s: %s (load average %s)\n", o.label, sc.name, loadAvg())
		res, err := runScenario(e, srv, sc, o)
		if err != nil {
			return fmt.Errorf("%s: %w", sc.name, err)
		}
		rep.Results = append(rep.Results, res)
	}
	if o.graceRounds > 0 && (len(want) == 0 || want["refresh"] || want["grace"]) {
		g, err := graceRace(e, o.graceRounds, 20)
		rep.Grace = &g
		if err != nil {
			fmt.Fprintf(os.Stderr, "load: grace window check: %v (%+v)\n", err, g)
		}
	}
	rawEnd, err := measureRaw(o.rawFor)
	if err != nil {
		return err
	}
	rep.RawStart, rep.RawEnd, rep.Raw = rawStart, rawEnd, rawStart.mean(rawEnd)
	rep.FinalRSSKB = srv.kb("VmRSS")
	rep.LoadAvgEnd = loadAvg()
	rep.finish()
	rep.print(os.Stdout)
	if o.jsonOut != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(o.jsonOut, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// phase is one measured stretch of a scenario.
type phase struct {
	Ops        int     `json:"ops"`
	Errors     int     `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
	Seconds    float64 `json:"seconds"`
	OpsPerSec  float64 `json:"ops_per_sec"`
	P50Ms      float64 `json:"p50_ms"`
	P99Ms      float64 `json:"p99_ms"`
	MaxMs      float64 `json:"max_ms"`
	// Server CPU per op (µs) and its use of its core (%), the load
	// generator's the same.
	ServerCPUUs  float64 `json:"server_cpu_us_per_op"`
	ServerUtil   float64 `json:"server_cpu_util_pct"`
	ClientCPUUs  float64 `json:"client_cpu_us_per_op"`
	ClientUtil   float64 `json:"client_cpu_util_pct"`
	PeakRSSKB    int64   `json:"peak_rss_kb"`
	TargetRate   float64 `json:"target_rate,omitempty"`
	StepP50Ms    []float64
	StepP99Ms    []float64
	lat          []time.Duration
	steps        [][]time.Duration
	RSSBeforeKB  int64 `json:"rss_before_kb"`
	RSSAfterKB   int64 `json:"rss_after_kb"`
	hwmResetOK   bool
	serverCPUSec float64
}

type result struct {
	Scenario   string   `json:"scenario"`
	Unit       string   `json:"unit"`
	Requests   int      `json:"requests_per_op"`
	Signs      int      `json:"es256_signs_per_op"`
	Verifies   int      `json:"es256_verifies_per_op"`
	Passwords  int      `json:"argon2id_per_op"`
	Target     string   `json:"target"`
	Steps      []string `json:"steps,omitempty"`
	Saturation phase    `json:"saturation"`
	Latency    phase    `json:"latency"`
}

func runScenario(e *env, srv server, sc *scenario, o options) (result, error) {
	res := result{Scenario: sc.name, Unit: sc.unit, Requests: sc.requests, Signs: sc.signs, Verifies: sc.verifies,
		Passwords: sc.passwords, Target: sc.target, Steps: sc.steps}
	if sc.setup != nil {
		if err := sc.setup(e); err != nil {
			return res, fmt.Errorf("setup: %w", err)
		}
	}
	workers := make([]worker, o.concurrency)
	for i := range workers {
		w, err := sc.newWorker(e)
		if err != nil {
			return res, err
		}
		workers[i] = w
	}
	// Warm up (connections, caches, the server's heap), unmeasured.
	closedLoop(workers, o.warmup, o.maxOps, len(sc.steps))
	res.Saturation = measurePhase(srv, o, func() phase { return closedLoop(workers, o.duration, o.maxOps, len(sc.steps)) })
	if res.Saturation.Ops == 0 {
		return res, fmt.Errorf("no operation succeeded: %s", res.Saturation.FirstError)
	}
	r := res.Saturation.OpsPerSec * o.fraction
	res.Latency = measurePhase(srv, o, func() phase { return openLoop(workers, r, o.duration, o.maxOps, len(sc.steps)) })
	res.Latency.TargetRate = r
	for _, p := range []*phase{&res.Saturation, &res.Latency} {
		for i := range p.steps {
			p.StepP50Ms = append(p.StepP50Ms, ms(percentile(p.steps[i], 0.50)))
			p.StepP99Ms = append(p.StepP99Ms, ms(percentile(p.steps[i], 0.99)))
		}
	}
	return res, nil
}

// measurePhase wraps a phase with the server's and our CPU and memory.
func measurePhase(srv server, o options, f func() phase) phase {
	hwm := resetPeakRSS(srv.pid)
	rss0 := srv.kb("VmRSS")
	s0, c0 := srv.sample(), selfCPU()
	p := f()
	s1, c1 := srv.sample(), selfCPU()
	p.hwmResetOK = hwm
	p.RSSBeforeKB, p.RSSAfterKB, p.PeakRSSKB = rss0, srv.kb("VmRSS"), srv.kb("VmHWM")
	n := float64(p.Ops + p.Errors)
	if n > 0 && s0.ok && s1.ok {
		p.serverCPUSec = (s1.cpu - s0.cpu).Seconds()
		p.ServerCPUUs = p.serverCPUSec * 1e6 / n
		p.ServerUtil = 100 * p.serverCPUSec / p.Seconds
	}
	if n > 0 {
		p.ClientCPUUs = (c1 - c0).Seconds() * 1e6 / n
		p.ClientUtil = 100 * (c1 - c0).Seconds() / p.Seconds
	}
	p.P50Ms, p.P99Ms, p.MaxMs = ms(percentile(p.lat, 0.5)), ms(percentile(p.lat, 0.99)), ms(percentile(p.lat, 1))
	return p
}

// tally collects one worker's outcomes.
type tally struct {
	ops, errs int
	first     string
	lat       []time.Duration
	steps     [][]time.Duration
}

func (t *tally) add(err error, d time.Duration, rec *stepTimes, nsteps int) {
	if err != nil {
		t.errs++
		if t.first == "" {
			t.first = err.Error()
		}
		return
	}
	t.ops++
	t.lat = append(t.lat, d)
	for i := range nsteps {
		t.steps[i] = append(t.steps[i], rec.d[i])
	}
}

func merge(ts []*tally, nsteps int, elapsed time.Duration) phase {
	p := phase{Seconds: elapsed.Seconds(), steps: make([][]time.Duration, nsteps)}
	for _, t := range ts {
		p.Ops += t.ops
		p.Errors += t.errs
		if p.FirstError == "" {
			p.FirstError = t.first
		}
		p.lat = append(p.lat, t.lat...)
		for i := range nsteps {
			p.steps[i] = append(p.steps[i], t.steps[i]...)
		}
	}
	p.OpsPerSec = float64(p.Ops) / p.Seconds
	return p
}

func newTally(nsteps int) *tally { return &tally{steps: make([][]time.Duration, nsteps)} }

// closedLoop runs every worker back to back for d (or maxOps ops in all).
func closedLoop(workers []worker, d time.Duration, maxOps, nsteps int) phase {
	var (
		wg     sync.WaitGroup
		budget atomic.Int64
		ts     = make([]*tally, len(workers))
	)
	budget.Store(int64(maxOps))
	start := time.Now()
	deadline := start.Add(d)
	for i, w := range workers {
		ts[i] = newTally(nsteps)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var rec stepTimes
			for time.Now().Before(deadline) && budget.Add(-1) >= 0 {
				t0 := time.Now()
				err := w.op(&rec)
				ts[i].add(err, time.Since(t0), &rec, nsteps)
			}
		}()
	}
	wg.Wait()
	return merge(ts, nsteps, time.Since(start))
}

// openLoop starts ops at a fixed rate for d, whether or not earlier ones
// have finished (each worker runs one at a time; a due op waits for a
// free worker). Latency counts from when the op was due.
func openLoop(workers []worker, rate float64, d time.Duration, maxOps, nsteps int) phase {
	n := min(int(rate*d.Seconds()), maxOps)
	if n < 1 {
		n = 1
	}
	due := make(chan time.Time, n)
	ts := make([]*tally, len(workers))
	var wg sync.WaitGroup
	start := time.Now()
	for i, w := range workers {
		ts[i] = newTally(nsteps)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var rec stepTimes
			for t := range due {
				if wait := time.Until(t); wait > 0 {
					time.Sleep(wait)
				}
				err := w.op(&rec)
				ts[i].add(err, time.Since(t), &rec, nsteps)
			}
		}()
	}
	interval := time.Duration(float64(time.Second) / rate)
	for i := range n {
		t := start.Add(time.Duration(i) * interval)
		// Hand out ops a little ahead of time so a worker is waiting
		// when one is due; the worker sleeps until then.
		if ahead := time.Until(t) - 2*time.Millisecond; ahead > 0 {
			time.Sleep(ahead)
		}
		due <- t
	}
	close(due)
	wg.Wait()
	return merge(ts, nsteps, time.Since(start))
}

func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// cpuModel is the CPU's model name.
func cpuModel() string {
	raw, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// machineCPUs counts the machine's CPUs (runtime.NumCPU counts those
// this process may use, one under taskset).
func machineCPUs() int {
	raw, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.NumCPU()
	}
	n := 0
	for _, l := range strings.Split(string(raw), "\n") {
		if k, _, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "processor" {
			n++
		}
	}
	return max(n, 1)
}

func freePort() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer l.Close()
	fmt.Println(l.Addr().(*net.TCPAddr).Port)
	return nil
}

// waitReady polls URL/readyz until it answers 200 (at most 60 s).
func waitReady(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: load wait BASE_URL")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(args[0], "/")+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after 60 s", args[0])
		case <-time.After(100 * time.Millisecond):
		}
	}
}
