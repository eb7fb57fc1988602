#!/usr/bin/env bash
# Make sure Debian's SLURM (slurmctld, slurmd, sbatch) and munge are installed (idempotent).
#
#   bash tools/ensure_slurm.sh
#
# Only installs: tests/scale/slurm_cluster.py writes its own slurm.conf and munge key
# and starts munged, slurmctld and slurmd itself (no systemd needed), then stops them.
# Exits 0 when sbatch, slurmctld, slurmd and munged are on PATH.
set -euo pipefail

say() { echo "[ensure_slurm] $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

SUDO=""
[ "$(id -u)" = 0 ] || { command -v sudo >/dev/null 2>&1 && SUDO="sudo"; }

have_all() {
    for cmd in sbatch squeue scontrol slurmctld slurmd munged; do
        command -v "$cmd" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin" command -v "$cmd" >/dev/null 2>&1 || return 1
    done
}

if ! have_all; then
    command -v apt-get >/dev/null 2>&1 || die "SLURM not found and apt-get unavailable"
    export DEBIAN_FRONTEND=noninteractive
    say "apt-get install slurm-wlm munge (slurmctld, slurmd, slurm-client)"
    $SUDO apt-get update -qq
    # policy-rc.d: the packages' postinst scripts must not try to start services (no systemd here)
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod +x /usr/sbin/policy-rc.d
        trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    $SUDO apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge \
        >/tmp/react-eval-apt-slurm.log 2>&1 \
        || { tail -n 20 /tmp/react-eval-apt-slurm.log >&2; die "apt-get install slurm-wlm munge failed"; }
fi
have_all || die "SLURM installed but its commands are not on PATH"
say "slurmctld $(dpkg-query -W -f='${Version}' slurmctld 2>/dev/null || echo '?') and munge $(dpkg-query -W -f='${Version}' munge 2>/dev/null || echo '?') present"
