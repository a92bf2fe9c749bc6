#!/usr/bin/env bash
# Set up this project on a fresh machine: a virtualenv in .venv with the pinned environment
# (constraints.txt), the package installed editable with every extra (.[all,test]), and the Jupyter kernel
# "hybridbatch" that papermill runs the notebooks on, and TeX for the `paper` stage (Debian latexmk +
# texlive-latex-recommended, via apt-get when run as root; HYBRIDBATCH_NO_TEX=1 skips it). Idempotent; needs
# Python 3.11 (or 3.12) and pip.
#
#   bash setup.sh           the default (what CI runs): torch==2.13.0 as pip finds it. The CPU build comes from
#                           a local wheel "torch-2.13.0+cpu" where pip is configured to look for one (find-links,
#                           as on the project's build machines), or from PIP_EXTRA_INDEX_URL=
#                           https://download.pytorch.org/whl/cpu; without either, PyPI's Linux x86_64 wheel is
#                           the CUDA build (about 2.7 GB of wheels).
#   bash setup.sh --cuda    (or HYBRIDBATCH_CUDA=1) the CUDA 13.0 build of the same torch 2.13.0 from PyPI, with
#                           the CUDA runtime wheels pinned in constraints-cuda.txt (every other package as
#                           constraints.txt); needs Linux x86_64 and an NVIDIA driver for CUDA 13.0 (R580+).
#                           Re-running it on a CPU .venv swaps torch in place; back to CPU: rm -rf .venv and
#                           run without --cuda. Then: python benchmarks/gpu.py
set -euo pipefail
cd "$(dirname "$0")"
CUDA=${HYBRIDBATCH_CUDA:-}
case "$CUDA" in
  1|true|yes) CUDA=1 ;;
  ""|0|false|no) CUDA= ;;
  *) echo "setup.sh: HYBRIDBATCH_CUDA must be 1 or 0, got '$CUDA'" >&2; exit 2 ;;
esac
for arg in "$@"; do
  case "$arg" in
    --cuda) CUDA=1 ;;
    --cpu) CUDA= ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup.sh: unknown option '$arg' (use --cuda, --cpu or --help)" >&2; exit 2 ;;
  esac
done
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for c in python3.11 python3.12 python3; do command -v "$c" >/dev/null 2>&1 && { PY=$c; break; }; done
fi
"$PY" -c 'import sys; assert sys.version_info[:2] in ((3, 11), (3, 12)), sys.version' \
  || { echo "setup.sh: Python 3.11 or 3.12 is required (set PYTHON=...)" >&2; exit 1; }
[ -x .venv/bin/python ] || "$PY" -m venv .venv
if [ -z "$CUDA" ]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "setup.sh: note: an NVIDIA GPU is present ($(nvidia-smi -L 2>/dev/null | head -n 1)); this installs the" \
         "default torch build; for the CUDA build run: bash setup.sh --cuda" >&2
  fi
  echo "setup.sh: installing the pinned environment into .venv (torch==2.13.0 CPU) ..."
  .venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[all,test]'
else
  [ "$(uname -sm)" = "Linux x86_64" ] || echo "setup.sh: warning: constraints-cuda.txt was made for Linux x86_64," \
    "not $(uname -sm); trying anyway" >&2
  echo "setup.sh: installing the pinned environment into .venv (torch==2.13.0 CUDA 13.0 build from PyPI, about" \
       "2.7 GB of wheels) ..."
  .venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -c constraints-cuda.txt -e '.[all,test]'
  .venv/bin/python - <<'PY' || { echo "setup.sh: error: .venv did not get a CUDA build of torch" >&2; exit 1; }
import sys
import torch
if torch.version.cuda is None:
    sys.exit(f"setup.sh: torch {torch.__version__} in .venv is not a CUDA build")
if torch.cuda.is_available():
    print(f"setup.sh: torch {torch.__version__} (CUDA {torch.version.cuda}) sees {torch.cuda.device_count()} GPU(s), "
          f"cuda:0 = {torch.cuda.get_device_name(0)}")
else:
    print(f"setup.sh: warning: torch {torch.__version__} (CUDA {torch.version.cuda}) is installed but sees no GPU "
          "(no device, or a driver older than CUDA 13.0 needs: R580+); training and encoding will run on the CPU",
          file=sys.stderr)
PY
fi
.venv/bin/python -m ipykernel install --sys-prefix --name hybridbatch --display-name "Python (hybridbatch)" >/dev/null
if ! command -v latexmk >/dev/null 2>&1 && [ -z "${HYBRIDBATCH_NO_TEX:-}" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup.sh: installing latexmk + texlive-latex-recommended (the paper stage's PDF) ..."
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends latexmk texlive-latex-recommended >/dev/null; } \
      || echo "setup.sh: warning: could not install TeX with apt-get; the 'paper' stage needs latexmk" >&2
  else
    echo "setup.sh: latexmk not found; the 'paper' stage needs it: apt-get install latexmk texlive-latex-recommended" >&2
  fi
fi
echo "setup.sh: done. Activate with: . .venv/bin/activate"
