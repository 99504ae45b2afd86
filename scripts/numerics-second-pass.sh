#!/usr/bin/env bash
# The numerics tests (`pytest -m numerics`: vectorised vs separate runs, hand-written backward vs
# autograd, resume and determinism) a second time, with PyTorch's CPU kernels switched to another
# instruction set than this CPU's best (ATEN_CPU_CAPABILITY): AVX-512 machine -> avx2, AVX2 machine ->
# default (the generic kernels). Other vector units sum in other orders, so a tolerance tuned to one
# CPU fails here, in CI, not on a user's machine (docs/reliability.md, "Numerics").
# `make test` runs it after the suite; extra arguments go to pytest. Exits non-zero when a test fails.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}

capability() { "$PYTHON" -c "import torch; print(torch.backends.cpu.get_cpu_capability())"; }
best=$(env -u ATEN_CPU_CAPABILITY "$PYTHON" -c "import torch; print(torch.backends.cpu.get_cpu_capability())")
case "$best" in
    AVX512*) second=avx2 ;;
    DEFAULT) echo "numerics second pass: this CPU has only the generic kernels; no other capability to test"
             exit 0 ;;
    *)       second=default ;;  # AVX2, or another architecture's vector unit (e.g. SVE on ARM)
esac
export ATEN_CPU_CAPABILITY=$second
got=$(capability)
if [ "$got" = "$best" ]; then
    echo "numerics second pass: ATEN_CPU_CAPABILITY=$second did not take effect (torch reports $got)" >&2
    exit 1
fi
echo "numerics second pass: ATEN_CPU_CAPABILITY=$second (torch reports $got; this CPU's best: $best)"
exec "$PYTHON" -m pytest -m numerics "$@"
