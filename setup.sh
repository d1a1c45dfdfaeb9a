#!/usr/bin/env bash
# One-command set-up on a fresh Debian (bookworm) machine: system packages + Python venv.
# Idempotent: re-running only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
APT_PACKAGES=(lilypond fluidsynth fluid-soundfont-gm timgm6mb-soundfont opl3-soundfont csound-soundfont
              musescore-general-soundfont-small musescore-general-soundfont python3-venv git
              libgl1 libglib2.0-0            # OpenCV (augraphy's scanned-looking scores, issue 16) loads them
              slurm-wlm slurm-client munge)   # SLURM + munge: the single-node cluster of the cluster test
missing=()
for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# torch first and pinned: an unpinned torch would pull several GB of CUDA packages
.venv/bin/pip install -q --disable-pip-version-check torch==2.13.0
# every other package at the exact version of constraints.txt (byte-identical data across machines)
.venv/bin/pip install -q --disable-pip-version-check -c constraints.txt -e ".[test]"
echo "setup: done. Activate with: source .venv/bin/activate"
