#!/usr/bin/env bash
# Turns `go test -bench` output from pkg/cli/bench_test.go into a Markdown table.
# The raw lines go to stderr so nothing is lost.
set -euo pipefail
printf '| scenario | runs | median wall time | HTTP requests per run | Graph writes per run |\n'
printf '|---|---:|---:|---:|---:|\n'
while IFS= read -r line; do
  printf '%s\n' "$line" >&2
  case "$line" in
    Benchmark*)
      name=$(awk '{print $1}' <<<"$line" | sed -e 's/^Benchmark//' -e 's/-[0-9]*$//')
      runs=$(awk '{print $2}' <<<"$line")
      ms=$(grep -o '[0-9.]* ms-median' <<<"$line" | awk '{print $1}')
      req=$(grep -o '[0-9.]* requests/op' <<<"$line" | awk '{print $1}')
      wr=$(grep -o '[0-9.]* writes/op' <<<"$line" | awk '{print $1}')
      printf '| %s | %s | %s ms | %s | %s |\n' "$name" "$runs" "$ms" "$req" "$wr"
      ;;
    FAIL*|*panic*) echo "bench: failed: $line" >&2; exit 1 ;;
  esac
done
