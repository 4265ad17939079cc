#!/bin/sh
# Install Ponder as a uv tool, with the llama-cpp-python build this machine can use.
#
#   sh install.sh            detect the machine, then run the install command
#   sh install.sh --dry-run  print the command and change nothing
#   sh install.sh --backend cpu|cuda|metal   skip the detection
#
# It finds Apple Silicon (Metal), an NVIDIA driver (the newest CUDA wheel it runs) or
# neither (CPU), then runs `uv tool install` with the exact llama-cpp-python pin from that
# backend's wheel index and --no-build-package, so a missing wheel is an error rather than
# a silent CPU-only compile (llama-cpp-python #1872). Afterwards `ponder setup` checks the
# build and picks a model. The values between the markers come from app/ponder/backends.py
# (`python packaging/sync.py` rewrites them; a test keeps them equal).
set -eu

# --- generated from ponder.backends: do not edit by hand ---
PIN="0.3.36"
INDEX="https://abetlen.github.io/llama-cpp-python/whl"
CUDA_VARIANTS="cu130:580.65.6:13.0 cu125:555.42.2:12.5 cu124:550.54.14:12.4 cu123:545.23.6:12.3 cu122:535.54.3:12.2 cu121:530.30.2:12.1"
BLACKWELL_MIN_CUDA="13.0"
# --- end of generated values ---

SPEC="${PONDER_SPEC:-ponder}"
DRY_RUN=0
BACKEND=auto

say() { printf 'install.sh: %s\n' "$*" >&2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --backend) shift; BACKEND="${1:-}" ;;
    --backend=*) BACKEND="${1#--backend=}" ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) say "unknown option: $1 (try --help)"; exit 2 ;;
  esac
  shift
done

# version_ge A B: true when dotted version A >= B, compared number by number.
version_ge() {
  awk -v a="$1" -v b="$2" 'BEGIN {
    n = split(a, x, "."); m = split(b, y, "."); if (m > n) n = m
    for (i = 1; i <= n; i++) { if (x[i] + 0 > y[i] + 0) exit 0; if (x[i] + 0 < y[i] + 0) exit 1 }
    exit 0 }'
}

# cuda_variant DRIVER GPU_NAME: the newest CUDA wheel index the driver runs, or nothing.
cuda_variant() {
  blackwell=0
  if printf '%s\n' "$2" | grep -Eiq 'RTX 50[0-9]0|RTX PRO [0-9]+ Blackwell|(^| )B[12]00( |$)|GB10'; then
    blackwell=1
  fi
  for entry in $CUDA_VARIANTS; do
    tag="${entry%%:*}"; rest="${entry#*:}"; driver="${rest%%:*}"; cuda="${rest#*:}"
    if [ "$blackwell" = 1 ] && ! version_ge "$cuda" "$BLACKWELL_MIN_CUDA"; then
      continue
    fi
    if version_ge "$1" "$driver"; then
      printf '%s\n' "$tag"
      return 0
    fi
  done
}

detect() {
  system=$(uname -s)
  machine=$(uname -m)
  if [ "$system" = Darwin ] && [ "$machine" = arm64 ]; then
    say "Apple Silicon: the Metal build"
    echo metal
    return
  fi
  if [ "$system" = Linux ] && command -v nvidia-smi >/dev/null 2>&1; then
    gpu=$(nvidia-smi --query-gpu=driver_version,name --format=csv,noheader 2>/dev/null | head -n 1 || true)
    driver=$(printf '%s' "$gpu" | cut -d, -f1 | tr -d ' ')
    name=$(printf '%s' "$gpu" | cut -d, -f2- | sed 's/^ *//')
    if [ -n "$driver" ]; then
      variant=$(cuda_variant "$driver" "$name")
      if [ -n "$variant" ]; then
        say "NVIDIA $name, driver $driver: the CUDA build ($variant)"
        echo "$variant"
        return
      fi
      say "NVIDIA $name, driver $driver: no prebuilt CUDA wheel runs on it; the CPU build"
      say "(update the driver, or build with CUDA: CMAKE_ARGS=\"-DGGML_CUDA=on\" and no --no-build-package)"
    else
      say "nvidia-smi found no working driver: the CPU build"
    fi
  else
    say "no Apple Silicon or NVIDIA driver found: the CPU build"
  fi
  echo cpu
}

case "$BACKEND" in
  auto) VARIANT=$(detect) ;;
  cpu|metal) VARIANT="$BACKEND" ;;
  cuda) VARIANT=$(cuda_variant "$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' ')" "")
        [ -n "$VARIANT" ] || { say "--backend cuda: no NVIDIA driver that a CUDA wheel runs on"; exit 1; } ;;
  *) say "--backend takes cpu, cuda or metal (ROCm and Vulkan: see packaging/backends.md)"; exit 2 ;;
esac

set -- uv tool install "$SPEC" --with "llama-cpp-python==$PIN" \
  --index "$INDEX/$VARIANT" --no-build-package llama-cpp-python

if [ "$DRY_RUN" = 1 ]; then
  printf 'uv tool install %s --with "llama-cpp-python==%s" --index %s/%s --no-build-package llama-cpp-python\n' \
    "$SPEC" "$PIN" "$INDEX" "$VARIANT"
  exit 0
fi
if ! command -v uv >/dev/null 2>&1; then
  say "uv is not installed: see https://docs.astral.sh/uv/getting-started/installation/"
  say "then run this again (or run: pipx install $SPEC, then ponder setup)"
  exit 1
fi
"$@"
say "done: run 'ponder setup' to check the build and pick a model"
