#!/usr/bin/env bash
# The base install on its own: a fresh virtual environment with `pip install .` (no extras)
# must run the worker's imports and a backtest with the shipped model bundle, without torch,
# and say which extra `fraudstream build` needs. Prints the install's time and size.
#   bash scripts/check_base_install.sh [VENV_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
VENV="${1:-$(mktemp -d)/venv}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
start=$(date +%s.%N)
"$VENV/bin/python" -m pip install --quiet "$REPO"
seconds=$(python3 -c "print(f'{$(date +%s.%N) - $start:.0f}')")
size_mb=$(du -sm "$VENV" | cut -f1)
echo "base install: ${seconds} s, ${size_mb} MB ($VENV)"

cd "$WORK"  # away from the source tree: the installed package must stand alone
"$VENV/bin/python" - <<'PY'
import importlib.util
import sys

heavy = [m for m in ("torch", "transformers", "lightgbm", "onnx", "tensorrt")
         if importlib.util.find_spec(m) is not None]
assert not heavy, f"the base install brought {heavy}"
import stream.runtime.worker  # noqa: F401  the worker's whole import graph
import stream.runtime.app  # noqa: F401
from model.shipped import SHIPPED_DIR
from model.bundle import load_bundle

bundle = load_bundle(SHIPPED_DIR)  # verifies every file's sha256
assert "site-packages" in str(SHIPPED_DIR), SHIPPED_DIR
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers"))
assert not loaded, loaded
print(f"shipped bundle {bundle.version} verified at {SHIPPED_DIR}")
PY
"$VENV/bin/fraudstream" generate --users 150 --days 5 --seed 11 --out e.jsonl --labels-out l.jsonl >/dev/null
"$VENV/bin/fraudstream" backtest --events e.jsonl --alerts-out a.jsonl >stats.json 2>err.txt
grep -q "shipped default" err.txt || { cat err.txt; echo "backtest did not say it used the shipped bundle"; exit 1; }
grep -q '"model_version":"[0-9a-f]' stats.json || { cat stats.json; echo "the model did not score"; exit 1; }
"$VENV/bin/fraudstream" evaluate --labels l.jsonl --alerts a.jsonl --events e.jsonl >eval.json
grep -q '"by_history"' eval.json || { head -c 600 eval.json; echo "evaluate --events gave no churn table"; exit 1; }
if "$VENV/bin/fraudstream" build --events e.jsonl --labels l.jsonl --out b 2>build.txt; then
  echo "fraudstream build ran without the train extra"; exit 1
fi
grep -q "fraudstream\[train\]" build.txt || { cat build.txt; echo "build did not name the extra"; exit 1; }
echo "base install: worker imports, backtest with the shipped bundle, evaluate, build names [train]: ok"
