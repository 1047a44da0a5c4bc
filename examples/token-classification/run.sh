#!/usr/bin/env bash
# Token classification end to end: Python exports a small Transformer tagger, Node
# fine-tunes it with DropAttack (token-level cross-entropy, parameter groups), Python
# reloads it and checks the outputs.
#   bash examples/token-classification/run.sh [OUTDIR] [--examples N] [--epochs N]
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
"$python" "$root/examples/token-classification/export_model.py" "$out" --examples "$examples"
node "$root/dist/examples/token-classification/finetune.js" "$out" --epochs "$epochs"
"$python" "$root/examples/token-classification/check.py" "$out"
