#!/usr/bin/env bash
# Benchmark of release profiles (issue "the first five minutes", specs/performance.md
# "Install profiles"): for each profile, a from-scratch `cargo build --release --locked` into its
# own target directory (what `cargo install --locked --path .` does), then the installed binary's
# size, start-up and memory.
#
#   examples/install_profiles.sh [OUT_DIR]          # every profile below
#   PROFILES="thin-16" examples/install_profiles.sh # one of them
#   REUSE=1 examples/install_profiles.sh            # keep builds already measured in OUT_DIR
#
# Per profile it records: the build's wall time, its CPU time (user + system: the figure that
# does not depend on what else the machine is doing), the peak memory of the largest compiler
# process (GNU time's "Maximum resident set size" of the children), the binary's size, the time
# from start to the `initialize` answer over real pipes (hyperfine, 30 runs) and that process's
# peak memory. Prints a Markdown table and writes OUT_DIR/install_profiles.json.
# Needs: GNU time (/usr/bin/time), hyperfine. Run it on an otherwise idle machine for wall times
# that mean something; nothing else here depends on the load.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT="${1:-target/install-profiles}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
PROFILES="${PROFILES:-fat-1 thin-16 off-16 off-16-o2}"
[ -x /usr/bin/time ] || { echo "needs GNU time: apt-get install time" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "needs hyperfine: apt-get install hyperfine" >&2; exit 1; }

# name -> the release profile's settings, as Cargo's CARGO_PROFILE_RELEASE_* overrides.
settings() {
  case "$1" in
    fat-1) echo "LTO=fat CODEGEN_UNITS=1 OPT_LEVEL=3" ;;
    thin-16) echo "LTO=thin CODEGEN_UNITS=16 OPT_LEVEL=3" ;;
    off-16) echo "LTO=false CODEGEN_UNITS=16 OPT_LEVEL=3" ;;
    off-16-o2) echo "LTO=false CODEGEN_UNITS=16 OPT_LEVEL=2" ;;
    *) echo "unknown profile $1" >&2; exit 1 ;;
  esac
}

INIT='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":1,"clientCapabilities":{}}}'
state="$(mktemp -d)"
trap 'rm -rf "$state"' EXIT
json="["
printf '| profile | build wall | build CPU (user+sys) | peak compiler memory | binary | start to `initialize` answer | its peak memory |\n'
printf '|---|---|---|---|---|---|---|\n'
for profile in $PROFILES; do
  env_args=()
  for kv in $(settings "$profile"); do env_args+=("CARGO_PROFILE_RELEASE_$kv"); done
  target="$OUT/target-$profile"
  bin="$target/release/punie"
  # REUSE=1 keeps a profile's earlier build (and its timing) when both are there.
  if [ "${REUSE:-0}" != 1 ] || [ ! -x "$bin" ] || [ ! -s "$OUT/$profile.time" ]; then
    rm -rf "$target"
    echo "== $profile: ${env_args[*]}" >&2
    env "${env_args[@]}" CARGO_INCREMENTAL=0 /usr/bin/time -v -o "$OUT/$profile.time" \
      cargo build --release --locked --quiet --target-dir "$target" >&2
  fi
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$OUT/$profile.time")
  cpu=$(awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} END {printf "%.0f", u + s}' "$OUT/$profile.time")
  peak_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$OUT/$profile.time")
  size=$(stat -c %s "$bin")
  hyperfine --runs 30 --warmup 3 --export-json "$OUT/$profile.start.json" \
    "printf '%s\n' '$INIT' | PUNIE_STATE_DIR=$state $bin --model http://127.0.0.1:9/v1" >/dev/null 2>&1
  start_ms=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print("%.1f ± %.1f" % (r["mean"] * 1000, r["stddev"] * 1000))' "$OUT/$profile.start.json")
  printf '%s\n' "$INIT" | PUNIE_STATE_DIR="$state" /usr/bin/time -v -o "$OUT/$profile.run.time" \
    "$bin" --model http://127.0.0.1:9/v1 >/dev/null
  run_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$OUT/$profile.run.time")
  printf '| %s | %s | %s s | %s MB | %s MB | %s ms | %s MB |\n' "$profile" "$wall" "$cpu" \
    "$((peak_kb / 1024))" "$(python3 -c "print(f'{$size/1e6:.1f}')")" "$start_ms" "$((run_kb / 1024))"
  json+="$([ "$json" = "[" ] || echo ,){\"profile\":\"$profile\",\"settings\":\"$(settings "$profile")\",\"build_wall\":\"$wall\",\"build_cpu_s\":$cpu,\"peak_compiler_kb\":$peak_kb,\"binary_bytes\":$size,\"start_ms\":\"$start_ms\",\"run_peak_kb\":$run_kb}"
done
echo "$json]" > "$OUT/install_profiles.json"
echo "wrote $OUT/install_profiles.json" >&2
