#!/usr/bin/env bash
# The GPU check: nn's CuPy path on a real device, in one run of a few minutes.
#
#     bash benchmarks/gpu_check.sh LOGDIR
#
# Three parts, each with its own time limit so that one that hangs or fails leaves the
# others their turn; each writes its log into LOGDIR, and LOGDIR/summary.txt gathers them:
#
# 1. tests.txt      the test suite's CuPy cases: every test that takes a backend fixture, run
#                   with its "cupy" parameter (the marker "gpu"), among them
#                   test_cupy_training_steps_never_synchronise, which runs fp32 and mixed
#                   training steps under cupyx.allow_synchronize(False);
# 2. bench.txt      benchmarks/gpu.py --profile: float16 against float32 GEMM at 4096^2 as a
#                   share of the device's float16 peak, the LeNet-like and VGG-like training
#                   steps against PyTorch fp32 and autocast + GradScaler, and where the GPU
#                   time of each step goes;
# 3. practical.txt  the mixed_precision practical (its GPU rows: the step times on the GPU,
#                   fp32 against mixed training of LeNet).
#
# Without a GPU it runs as a dry run: the CuPy tests skip (the log says why), the benchmark
# runs its small CPU smoke test, and the practical runs on NumPy; the exit status is 0 if
# every part ran. The device needs numpy, numba, matplotlib, tqdm, pytest and CuPy; it uses
# pytest-xdist and pytest-timeout when they are installed. Nothing is downloaded.
#
# Environment: NN_GPU_CHECK_WORKERS (pytest processes, default: min(8, CPUs)),
# NN_GPU_CHECK_TESTS_S, NN_GPU_CHECK_BENCH_S, NN_GPU_CHECK_PRACTICAL_S (time limits in
# seconds, defaults 240, 150, 120), PYTHON (default python3).
set -u
LOG=${1:?usage: bash benchmarks/gpu_check.sh LOGDIR}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
mkdir -p "$LOG" || exit 2
LOG=$(cd "$LOG" && pwd)
cd "$ROOT" || exit 2
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg

has() { "$PY" -c "import $1" >/dev/null 2>&1; }
started=$(date +%s)
status=0

# -- 0. the machine -----------------------------------------------------------------------------
{
    date -u +"%Y-%m-%d %H:%M UTC"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
    "$PY" - <<'EOF'
import platform, numpy
print("python", platform.python_version(), "numpy", numpy.__version__)
for name in ("cupy", "numba", "torch", "xdist", "pytest_timeout"):
    try:
        module = __import__(name)
        print(name, getattr(module, "__version__", "(installed)"))
    except Exception as exc:
        print(name, "missing:", type(exc).__name__, exc)
from nn import backends
print("nn sees a GPU:", backends.available("cupy"))
EOF
} >"$LOG/env.txt" 2>&1
GPU=$("$PY" -c "from nn import backends; print(int(backends.available('cupy')))" 2>/dev/null || echo 0)

# -- 1. the CuPy cases of the test suite --------------------------------------------------------
workers=${NN_GPU_CHECK_WORKERS:-$(( $(nproc) < 8 ? $(nproc) : 8 ))}
args=(-m gpu -q -rfEs --tb=short -p no:cacheprovider --durations=15)
if has xdist && [ "$workers" -gt 1 ]; then args+=(-n "$workers"); fi
if has pytest_timeout; then args+=(--timeout 120); fi
timeout -k 10 "${NN_GPU_CHECK_TESTS_S:-240}" "$PY" -m pytest "${args[@]}" >"$LOG/tests.txt" 2>&1
rc=$?; echo "exit status $rc ($(( $(date +%s) - started )) s since start)" >>"$LOG/tests.txt"
[ "$rc" -eq 0 ] || status=1

# -- 2. the benchmark ---------------------------------------------------------------------------
t0=$(date +%s)
if [ "$GPU" = 1 ]; then bench=(--profile); else bench=(--cpu --steps 2 --repeat 1); fi
timeout -k 10 "${NN_GPU_CHECK_BENCH_S:-150}" "$PY" benchmarks/gpu.py "${bench[@]}" >"$LOG/bench.txt" 2>&1
rc=$?; echo "exit status $rc ($(( $(date +%s) - t0 )) s)" >>"$LOG/bench.txt"
[ "$rc" -eq 0 ] || status=1

# -- 3. the mixed_precision practical -----------------------------------------------------------
t0=$(date +%s)
timeout -k 10 "${NN_GPU_CHECK_PRACTICAL_S:-120}" "$PY" -m nn run mixed_precision >"$LOG/practical.txt" 2>&1
rc=$?; echo "exit status $rc ($(( $(date +%s) - t0 )) s)" >>"$LOG/practical.txt"
[ "$rc" -eq 0 ] || status=1

# -- summary ------------------------------------------------------------------------------------
{
    echo "nn GPU check, $(date -u +%Y-%m-%d), $(( $(date +%s) - started )) s; GPU: $([ "$GPU" = 1 ] && echo yes || echo 'no (dry run)')"
    sed -n '2,3p' "$LOG/env.txt"
    echo; echo "== tests"; grep -E " in [0-9.]+s" "$LOG/tests.txt" | tail -1
    grep -E "^(FAILED|ERROR) " "$LOG/tests.txt" | head -40
    echo; echo "== benchmark"; grep -vE "^ {6}" "$LOG/bench.txt" | head -40
    echo; echo "== practical"; grep -iE "GPU|cupy|accuracy|exit status" "$LOG/practical.txt" | head -20
} >"$LOG/summary.txt" 2>&1
cat "$LOG/summary.txt"
exit $status
