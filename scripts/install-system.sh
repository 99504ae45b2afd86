#!/usr/bin/env bash
# Debian packages for the browser test (chromium + chromedriver) and the real-SLURM test.
# Installs only what is missing; without root or apt it says so and the tests that need them skip.
set -euo pipefail
need=()
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
if ((${#need[@]})); then
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    echo "install-system: not root or no apt-get; missing: ${need[*]} (their tests will skip)" >&2
    exit 0
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if [[ -f tests/slurm/install.sh ]]; then bash tests/slurm/install.sh; fi
