#!/usr/bin/env bash
# Set up this project on a fresh machine: a virtualenv in .venv with the pinned environment
# (constraints.txt), the package installed editable with its test extras, and the Jupyter kernel
# "hybridbatch" that papermill runs the notebooks on, and TeX for the `paper` stage (Debian latexmk +
# texlive-latex-recommended, via apt-get when run as root; HYBRIDBATCH_NO_TEX=1 skips it). Idempotent; needs
# Python 3.11 (or 3.12) and pip.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for c in python3.11 python3.12 python3; do command -v "$c" >/dev/null 2>&1 && { PY=$c; break; }; done
fi
"$PY" -c 'import sys; assert sys.version_info[:2] in ((3, 11), (3, 12)), sys.version' \
  || { echo "setup.sh: Python 3.11 or 3.12 is required (set PYTHON=...)" >&2; exit 1; }
[ -x .venv/bin/python ] || "$PY" -m venv .venv
echo "setup.sh: installing the pinned environment into .venv (torch==2.13.0 CPU) ..."
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]'
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
