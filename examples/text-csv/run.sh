#!/usr/bin/env bash
# Text classification from a CSV file: export a CSV (a stand-in for your data), then
# train and compare plain training with DropAttack on it through the CLI.
#   bash examples/text-csv/run.sh [MAX_MESSAGES] [--set key=value ...]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
max=${1:-2000}
shift || true
dir=$(mktemp -d)
node "$root/examples/text-csv/export-csv.js" "$dir/mail.csv" "$max"
cat >"$dir/run.json" <<JSON
{
  "name": "csv-text",
  "data": { "source": "csv", "path": "$dir/mail.csv", "textColumn": "text", "labelColumn": "label",
            "validation": 0.2, "maxLength": 128, "minFreq": 2, "removeStopwords": true, "batchSize": 64, "seed": 1 },
  "model": { "kind": "textcnn", "embedDim": 64, "numFilters": 32, "kernelSizes": [3, 4, 5], "dropout": 0.3 },
  "optimizer": { "type": "adam", "lr": 0.002 },
  "attack": { "method": "dropattack", "seed": 5,
              "groups": [{ "targets": "embed.weight", "epsilon": 5, "p": 0.5 }, { "targets": "convs.*.weight", "epsilon": 0.5, "p": 0.5 }] },
  "training": { "epochs": 3, "seed": 1, "threads": 2 },
  "output": { "dir": "$dir/runs" }
}
JSON
node "$root/dist/lib/app/cli.js" compare --config "$dir/run.json" --methods none,dropattack "$@"
