#!/usr/bin/env bash
# The GPU check (docs/gpu_check.md): install the carried wheels offline, then run benchmarks/gpu_check.py, whose
# figures land in OUT/gpu_check.json and OUT/gpu_check.md after every stage (a stage that fails, or a timeout,
# keeps what the earlier stages wrote). Under 8 minutes on one H100.
#
#   bash benchmarks/gpu_check.sh [OUT] [gpu_check.py options]     # OUT defaults to $OUT, else ./gpu_check_out
#   bash benchmarks/gpu_check.sh /tmp/smoke --device cpu --smoke   # the same path on the CPU, tiny model
#
# Environment: PYTHON (default python), GPU_CHECK_WHEELS (default .whl/gpu_check, made by benchmarks/gpu_wheels.sh;
# absent: the environment is used as it is), GPU_CHECK_TIMEOUT (seconds, default 470), QWEN_TTS_LIT_CACHE (default
# a fresh temporary folder: the tiny checkpoint is built there), GPU_CHECK_STANDINS=all (use every stand-in of
# benchmarks/gpu_env, ahead of the real packages: a rehearsal of the GPU machine on a full environment).
set -uo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
cd "$REPO"
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then TARGET="$1"; shift; else TARGET="${OUT:-gpu_check_out}"; fi
PYTHON="${PYTHON:-python}"
WHEELS="${GPU_CHECK_WHEELS:-.whl/gpu_check}"
WORK="$(mktemp -d -t gpu-check-XXXXXX)"
mkdir -p "$TARGET"
export QWEN_TTS_LIT_CACHE="${QWEN_TTS_LIT_CACHE:-$WORK/cache}" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"

# 1. The wheels, offline, into a folder ahead of site-packages (transformers 4.57.3 shadows the machine's 5.x).
if compgen -G "$WHEELS/*.whl" >/dev/null; then
  SITE="$WORK/site"
  if ! "$PYTHON" -m pip install --quiet --no-index --no-deps --target "$SITE" "$WHEELS"/*.whl; then
    echo "gpu check: pip could not install the wheels; unpacking them instead" >&2
    "$PYTHON" - "$SITE" "$WHEELS"/*.whl <<'PY'
import sys, zipfile
for wheel in sys.argv[2:]:
    zipfile.ZipFile(wheel).extractall(sys.argv[1])  # a wheel is a zip of its site-packages files
PY
  fi
  export PYTHONPATH="$SITE:$PYTHONPATH"
  echo "gpu check: installed $(ls "$WHEELS"/*.whl | wc -l) wheels from $WHEELS"
else
  echo "gpu check: no wheels in $WHEELS: using this environment as it is"
fi

# 2. Stand-ins (benchmarks/gpu_env) for what qwen_tts imports at module level and this machine lacks: only those.
STANDINS="$WORK/standins"
mkdir -p "$STANDINS"
for module in librosa soundfile sox; do
  if [ "${GPU_CHECK_STANDINS:-}" = all ] || ! "$PYTHON" -c "import $module" >/dev/null 2>&1; then
    cp -r "benchmarks/gpu_env/$module"* "$STANDINS/"
    cp benchmarks/gpu_env/_standin.py "$STANDINS/"
    echo "gpu check: $module: the stand-in from benchmarks/gpu_env is used"
  fi
done
if [ "${GPU_CHECK_STANDINS:-}" = all ]; then
  export PYTHONPATH="$STANDINS:$PYTHONPATH"
else
  export PYTHONPATH="$PYTHONPATH:$STANDINS"  # only missing modules are there: nothing real is shadowed
fi

# 3. The check itself, under a time limit; each stage's figures are already written when the next one starts.
timeout --signal=INT --kill-after=20 "${GPU_CHECK_TIMEOUT:-470}" "$PYTHON" benchmarks/gpu_check.py --out "$TARGET" "$@"
STATUS=$?
[ $STATUS -eq 124 ] && echo "gpu check: stopped at the time limit; the stages finished before it are in $TARGET" >&2
cat "$TARGET/gpu_check.md" 2>/dev/null
rm -rf "$WORK"
exit $STATUS
