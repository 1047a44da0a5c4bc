#!/usr/bin/env bash
# The TorchScript drop-in, end to end: Python exports a model, Node fine-tunes it with
# DropAttack, Python reloads it and checks the outputs.
#   bash examples/torchscript/run.sh [OUTDIR] [--examples N] [--epochs N]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=${1:-$(mktemp -d)}
shift || true
examples=2000
epochs=4
while [ $# -gt 0 ]; do
  case "$1" in
    --examples) examples=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
python=${DROPATTACK_PYTHON:-/usr/bin/python3}
"$python" "$root/examples/torchscript/export_model.py" "$out" --examples "$examples"
node "$root/dist/examples/torchscript/finetune.js" "$out" --epochs "$epochs"
"$python" "$root/examples/torchscript/check.py" "$out"
