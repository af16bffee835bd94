#!/usr/bin/env bash
# Turns `go test -bench` output from pkg/cli/bench_test.go into a Markdown table: per
# scenario the median wall time, what a target compares it with (from the same run,
# interleaved), the ratio and the target, the HTTP requests and Graph writes per run.
# The raw lines go to stderr so nothing is lost.
set -euo pipefail
printf '| scenario | runs | median wall time | compared with | ratio | target | met | HTTP requests per run | Graph writes per run |\n'
printf '|---|---:|---:|---|---:|---:|:-:|---:|---:|\n'
metric() { grep -o "[-0-9.e+]* $1" <<<"$2" | awk '{print $1}' || true; }
while IFS= read -r line; do
  printf '%s\n' "$line" >&2
  case "$line" in
    Benchmark*)
      name=$(awk '{print $1}' <<<"$line" | sed -e 's/^Benchmark//' -e 's/-[0-9]*$//')
      runs=$(awk '{print $2}' <<<"$line")
      med=$(metric ms-median "$line"); req=$(metric requests/op "$line"); wr=$(metric writes/op "$line")
      bound=$(metric bound-ms "$line"); ratio=$(metric ratio "$line"); target=$(metric target "$line")
      floor=$(metric floor-ms "$line"); nolat=$(metric nolatency-ms "$line"); bare=$(metric bare-ms "$line")
      if [ -n "$floor" ]; then
        printf '| Floor (go-keyring Get of the same item, testdata/floor) | %s | %s ms | | | | | 0 | 0 |\n' "$runs" "$floor"
      fi
      if [ -n "$bare" ]; then
        printf '| Bare start (a Go program that only starts and prints, testdata/bare) | %s | %s ms | | | | | 0 | 0 |\n' "$runs" "$bare"
      fi
      what=""
      case "$name" in
        TokenCached) what="floor" ;;
        TokenCachedKernel) what="bare start" ;;
        TokenCold50ms) what="2 × 50 ms + 1 RSA signature" ;;
        Verify|MigrateRerun) what="3 × 100 ms + the run without latency (${nolat} ms)" ;;
      esac
      if [ -n "$bound" ]; then
        met=$(awk -v r="$ratio" -v t="$target" 'BEGIN{print (r <= t) ? "yes" : "no"}')
        printf '| %s | %s | %s ms | %s: %s ms | %.2f× | ≤ %.1f× | %s | %s | %s |\n' "$name" "$runs" "$med" "$what" "$bound" "$ratio" "$target" "$met" "$req" "$wr"
      else
        printf '| %s | %s | %s ms | | | | | %s | %s |\n' "$name" "$runs" "$med" "$req" "$wr"
      fi
      ;;
    FAIL*|*panic*) echo "bench: failed: $line" >&2; exit 1 ;;
  esac
done
