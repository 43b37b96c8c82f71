package main

import (
	"fmt"
	"io"
	"strings"
)

// report is one run: the machine, the raw limits and every scenario.
type report struct {
	Label        string       `json:"label"`
	Base         string       `json:"base"`
	Started      string       `json:"started"`
	CPU          string       `json:"cpu"`
	NumCPU       int          `json:"num_cpu"`
	GOMAXPROCS   int          `json:"load_gomaxprocs"`
	Concurrency  int          `json:"concurrency"`
	Duration     string       `json:"phase_duration"`
	Fraction     float64      `json:"latency_phase_fraction"`
	LoadAvgStart string       `json:"loadavg_start"`
	LoadAvgEnd   string       `json:"loadavg_end"`
	IdleRSSKB    int64        `json:"idle_rss_kb"`
	FinalRSSKB   int64        `json:"final_rss_kb"`
	Raw          rawRates     `json:"raw"`
	RawStart     rawRates     `json:"raw_start"`
	RawEnd       rawRates     `json:"raw_end"`
	Results      []result     `json:"results"`
	Grace        *graceResult `json:"grace,omitempty"`
	Verdicts     []verdict    `json:"verdicts"`
}

// verdict is one target of issue 17 against this run.
type verdict struct {
	Target   string  `json:"target"`
	Measured string  `json:"measured"`
	Ratio    float64 `json:"ratio"` // measured / target, oriented so that >= 1 is met
	Met      bool    `json:"met"`
	Note     string  `json:"note,omitempty"`
}

// capacity is what one whole core would do: 1 / server CPU per op.
func (p phase) capacity() float64 {
	if p.ServerCPUUs <= 0 {
		return 0
	}
	return 1e6 / p.ServerCPUUs
}

// limit is the crypto bound of an op on one core: its signatures, its
// verifications and its password hash, nothing else.
func (r report) limit(res result) float64 {
	us := 0.0
	if res.Signs > 0 {
		us += float64(res.Signs) * 1e6 / r.Raw.ES256Sign.PerCPUSecond
	}
	if res.Verifies > 0 {
		us += float64(res.Verifies) * 1e6 / r.Raw.ES256Verify.PerCPUSecond
	}
	us += float64(res.Passwords) * r.Raw.Argon2idMs * 1000
	if us == 0 {
		return 0
	}
	return 1e6 / us
}

func (r *report) finish() {
	add := func(target, measured string, ratio float64, note string) {
		r.Verdicts = append(r.Verdicts, verdict{Target: target, Measured: measured, Ratio: ratio, Met: ratio >= 1, Note: note})
	}
	rateVerdict := func(res result, want float64, target string) {
		s := res.Saturation
		add(fmt.Sprintf("%s %s", res.Scenario, target),
			fmt.Sprintf("%.0f/s measured (server used %.0f%% of its core); %.0f/s per whole core by CPU", s.OpsPerSec, s.ServerUtil, s.capacity()),
			s.OpsPerSec/want, fmt.Sprintf("by CPU: %.2f of the target", s.capacity()/want))
	}
	for _, res := range r.Results {
		switch res.Scenario {
		case "discovery", "jwks":
			rateVerdict(res, 15000, ">= 15,000/s")
		case "client_credentials":
			want := 0.5 * r.Raw.ES256Sign.PerCPUSecond
			rateVerdict(res, want, fmt.Sprintf(">= 50%% of raw ES256 (%.0f/s)", want))
		case "refresh":
			rateVerdict(res, 1500, ">= 1,500/s")
		case "introspection":
			rateVerdict(res, 5000, ">= 5,000/s")
		case "login_fasthash":
			cpuMs := res.Saturation.ServerCPUUs / 1000
			add("login CPU without the password hash <= 2 ms",
				fmt.Sprintf("%.2f ms per login (argon2id at 64 KiB, t=1: about 0.1 ms of it)", cpuMs), 2/cpuMs, "")
		}
		if res.Unit == "login" {
			for i, name := range res.Steps {
				if i == 2 {
					continue // the password hash alone takes longer than the bound
				}
				p99 := res.Latency.StepP99Ms[i]
				add(fmt.Sprintf("p99 at %.0f%% load <= 10 ms: %s %s", 100*r.Fraction, res.Scenario, name), fmt.Sprintf("%.2f ms", p99), 10/p99, "")
			}
			continue
		}
		p99 := res.Latency.P99Ms
		add(fmt.Sprintf("p99 at %.0f%% load <= 10 ms: %s", 100*r.Fraction, res.Scenario), fmt.Sprintf("%.2f ms", p99), 10/p99, "")
	}
	if r.IdleRSSKB > 0 {
		add("idle RSS <= 40 MB", fmt.Sprintf("%.1f MB", float64(r.IdleRSSKB)/1024), 40*1024/float64(r.IdleRSSKB), "")
	}
	if r.Grace != nil {
		ok := 0.0
		if r.Grace.Errors == 0 && r.Grace.Mismatches == 0 {
			ok = 1
		}
		add("no errors with 20 parallel refreshes of one token",
			fmt.Sprintf("%d rounds x %d: %d errors, %d rounds with >1 successor", r.Grace.Rounds, r.Grace.Parallel, r.Grace.Errors, r.Grace.Mismatches),
			ok, r.Grace.FirstError)
	}
}

func mb(kb int64) string { return fmt.Sprintf("%.1f", float64(kb)/1024) }

func (r report) print(w io.Writer) {
	fmt.Fprintf(w, "\n## Load: %s\n\n", r.Label)
	fmt.Fprintf(w, "%s, %d CPUs; load generator GOMAXPROCS %d, %d connections, %s per phase, latency phase at %.0f%% of saturation.\n",
		r.CPU, r.NumCPU, r.GOMAXPROCS, r.Concurrency, r.Duration, 100*r.Fraction)
	fmt.Fprintf(w, "Load average: %s at the start, %s at the end. Server RSS: idle %s MB, at the end %s MB.\n\n",
		r.LoadAvgStart, r.LoadAvgEnd, mb(r.IdleRSSKB), mb(r.FinalRSSKB))
	fmt.Fprintf(w, "Raw limits on one core (this run, start/end averaged, per CPU-second): ES256 sign %.0f/s (%.1f µs), "+
		"RS256 sign %.0f/s (%.0f µs), ES256 verify %.0f/s (%.1f µs), argon2id (m=19 MiB, t=2) %.1f ms.\n\n",
		r.Raw.ES256Sign.PerCPUSecond, 1e6/r.Raw.ES256Sign.PerCPUSecond, r.Raw.RS256Sign.PerCPUSecond, 1e6/r.Raw.RS256Sign.PerCPUSecond,
		r.Raw.ES256Verify.PerCPUSecond, 1e6/r.Raw.ES256Verify.PerCPUSecond, r.Raw.Argon2idMs)

	fmt.Fprintln(w, "| scenario | ops/s | p50 ms | p99 ms | server CPU µs/op | per core by CPU | crypto limit/s | of limit | server / client core use | @50%: ops/s | p50 ms | p99 ms | peak RSS MB | errors |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, res := range r.Results {
		s, l := res.Saturation, res.Latency
		lim, of := "-", "-"
		if x := r.limit(res); x > 0 {
			lim = fmt.Sprintf("%.0f", x)
			of = fmt.Sprintf("%.0f%%", 100*s.capacity()/x)
		}
		name := res.Scenario
		if res.Unit != "request" {
			name += fmt.Sprintf(" (%s = %d requests)", res.Unit, res.Requests)
		}
		fmt.Fprintf(w, "| %s | %.0f | %.2f | %.2f | %.0f | %.0f | %s | %s | %.0f%% / %.0f%% | %.0f | %.2f | %.2f | %s | %d |\n",
			name, s.OpsPerSec, s.P50Ms, s.P99Ms, s.ServerCPUUs, s.capacity(), lim, of, s.ServerUtil, s.ClientUtil,
			l.OpsPerSec, l.P50Ms, l.P99Ms, mb(s.PeakRSSKB), s.Errors+l.Errors)
	}
	for _, res := range r.Results {
		if len(res.Steps) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s steps, p50 / p99 ms at saturation and at %.0f%%:", res.Scenario, 100*r.Fraction)
		for i, name := range res.Steps {
			fmt.Fprintf(w, " %s %.2f / %.2f, %.2f / %.2f;", name, res.Saturation.StepP50Ms[i], res.Saturation.StepP99Ms[i],
				res.Latency.StepP50Ms[i], res.Latency.StepP99Ms[i])
		}
		fmt.Fprintln(w)
	}
	for _, res := range r.Results {
		for _, p := range []phase{res.Saturation, res.Latency} {
			if p.FirstError != "" {
				fmt.Fprintf(w, "\n%s: first error: %s\n", res.Scenario, p.FirstError)
				break
			}
		}
	}
	fmt.Fprintln(w, "\n| target (issue 17) | measured | ratio | |")
	fmt.Fprintln(w, "|---|---|---:|---|")
	for _, v := range r.Verdicts {
		status := "met"
		if !v.Met {
			status = fmt.Sprintf("missed by %.0f%%", 100*(1-v.Ratio))
		}
		note := ""
		if v.Note != "" {
			note = " (" + strings.ReplaceAll(v.Note, "|", "/") + ")"
		}
		fmt.Fprintf(w, "| %s | %s | %.2f | %s%s |\n", v.Target, v.Measured, v.Ratio, status, note)
	}
}
