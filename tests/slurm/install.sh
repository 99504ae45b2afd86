#!/usr/bin/env bash
# Install Debian's single-node SLURM stack for tests/test_slurm.py (root only; idempotent).
#   slurmctld + slurmd (controller and compute daemon), slurm-client (sbatch, squeue, scontrol,
#   sacct), munge (authentication). No slurmdbd/MariaDB: the test polls job status with squeue.
# Exit codes: 0 installed (or already there), 3 not root, 4 apt could not install them.
# Daemons are NOT started here (policy-rc.d forbids it during the install); tests/slurm/cluster.sh
# starts and stops them.
set -euo pipefail

PKGS=(slurmctld slurmd slurm-client munge)

if [[ $(id -u) -ne 0 ]]; then
    echo "install.sh: must run as root to apt-get install ${PKGS[*]}" >&2
    exit 3
fi

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
    echo "install.sh: ${PKGS[*]} already installed"
    exit 0
fi

command -v apt-get >/dev/null || { echo "install.sh: no apt-get on this system" >&2; exit 4; }

# Keep apt's maintainer scripts from starting the daemons (101 = action forbidden);
# restore whatever policy was there before.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod +x "$policy"
    own_policy=1
fi
trap '[[ $own_policy -eq 1 ]] && rm -f "$policy"' EXIT

export DEBIAN_FRONTEND=noninteractive
apt_install() {
    apt-get install -y -q --no-install-recommends "${missing[@]}"
}
if ! apt_install; then
    apt-get update -q || true
    apt_install || { echo "install.sh: apt-get could not install ${missing[*]}" >&2; exit 4; }
fi
echo "install.sh: installed ${missing[*]}"
