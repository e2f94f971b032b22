#!/usr/bin/env bash
# Mutation testing of one scoring module against its own tests: a wrong reward crashes nothing, so
# the tests around each rule must fail when the rule is changed. Usage:
#
#   bash scripts/mutation.sh services/regex_format/rules.py            # its tests, from the table below
#   bash scripts/mutation.sh services/regex_format/rules.py tests/...  # or the tests named here
#
# mutmut (pinned in pyproject's dev extra) runs in a scratch copy of the checkout, so the working
# tree is never mutated and several modules can be run one after another without a stale cache.
# It prints killed / survived / equivalent, the surviving mutants' diffs, and exits 1 when fewer
# than 95 % of the non-equivalent mutants are killed. Equivalent mutants (no input can tell them
# apart from the original) are listed, one a line with why, in tests/mutation-equivalents.md.
# MUTATION_KEEP=DIR keeps the scratch copy in DIR (`cd DIR && mutmut show NAME` to look further);
# DIR is emptied first.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=$(command -v python3)
MUTMUT="$(dirname "$PYTHON")/mutmut"

module=${1:?usage: scripts/mutation.sh MODULE.py [TEST_PATH...]}
shift
[ -f "$ROOT/$module" ] || { echo "no such module: $module (give a path from the repo root)" >&2; exit 2; }
[ -x "$MUTMUT" ] || { echo "mutmut is not installed: pip install -e '.[dev]'" >&2; exit 2; }

# The fast, HTTP-free tests that exercise each rule-bearing module; any other module needs its tests named.
if [ $# -gt 0 ]; then
    tests=("$@")
else
    case $module in
        services/regex_format/rules.py|services/regex_format/presets.py)
            tests=(tests/services/regex_format/test_rules.py tests/services/regex_format/test_presets.py) ;;
        services/common/tags.py)
            tests=(tests/services/common/test_tags.py tests/services/test_degenerate_text.py) ;;
        services/math_equiv/extract.py|services/math_equiv/numeric.py|services/math_equiv/words.py)
            tests=(tests/services/math_equiv/test_extract.py tests/services/math_equiv/test_words.py
                   tests/services/math_equiv/test_scorer.py) ;;
        services/vqa_accuracy/official.py|services/vqa_accuracy/metrics.py|services/vqa_accuracy/normalize.py)
            tests=(tests/services/vqa_accuracy/test_official.py tests/services/vqa_accuracy/test_metrics.py
                   tests/services/vqa_accuracy/test_boundaries.py tests/services/vqa_accuracy/test_scorer.py) ;;
        services/clip_cider/cider.py|services/clip_cider/text.py)
            tests=(tests/services/clip_cider/test_cider.py) ;;
        services/clip_cider/ptb.py)
            tests=(tests/services/clip_cider/test_ptb.py) ;;
        services/llm_judge/extract.py|services/llm_judge/precheck.py)
            tests=(tests/services/llm_judge/test_score_line.py tests/services/llm_judge/test_pieces.py) ;;
        services/gateway/combine.py)
            tests=(tests/services/gateway/test_combine.py tests/services/gateway/test_combine_lifecycle.py) ;;
        services/gateway/extract.py|proto/labels.py)
            tests=(tests/services/gateway/test_extract.py) ;;
        *) echo "no test selection for $module: name the tests after it" >&2; exit 2 ;;
    esac
fi

work=${MUTATION_KEEP:-$(mktemp -d)}
[ -n "${MUTATION_KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
# Always from scratch: mutmut keeps results and test coverage in mutants/ and would reuse them.
rm -rf "$work" && mkdir -p "$work"
# The checkout as git sees it (tracked and new files, nothing ignored), so no stale mutants/ or venv.
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard | xargs -0 tar -cf - 2>/dev/null) \
    | tar -xf - -C "$work"
quoted() { printf '"%s", ' "$@"; }
# Tests may read any file of the checkout (docs, recipes, data): mutmut runs them in mutants/.
others=()
for entry in "$work"/* "$work"/.[!.]*; do
    name=${entry##*/}
    case $name in proto|services|integrations|trainer|tests|pyproject.toml|mutants|'.[!.]*') ;; *) others+=("$name") ;; esac
done
cat >> "$work/pyproject.toml" <<EOF

[tool.mutmut]
source_paths = ["proto", "services", "integrations", "trainer"]
also_copy = [$(quoted "${others[@]}")]
only_mutate = ["$module"]
pytest_add_cli_args_test_selection = [$(quoted "${tests[@]}")]
pytest_add_cli_args = ["-p", "no:cacheprovider", "-q", "-x"]
use_git_change_detection = false
EOF

cd "$work"
started=$(date +%s)
# Two workers: the box has two cores and others use them too (hence nice in the callers).
"$MUTMUT" run --max-children 2 > "$work/mutmut-run.log" 2>&1 || {
    tail -40 "$work/mutmut-run.log" >&2; echo "mutmut run failed (log above)" >&2; exit 2; }
elapsed=$(( $(date +%s) - started ))

exec "$PYTHON" - "$module" "$ROOT/tests/mutation-equivalents.md" "$elapsed" "$MUTMUT" <<'PY'
import json, re, subprocess, sys
from pathlib import Path

module, equivalents_file, elapsed, mutmut = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
meta = json.loads(Path("mutants", module + ".meta").read_text())["exit_code_by_key"]
# mutmut's exit codes: 1 and 3 a failing test, 36/24/-24/152/255 a timeout (a mutant that hangs is caught).
killed_codes = {1, 3, 36, 24, -24, 152, 255}
listed = {}
for line in equivalents_file.read_text().splitlines():
    m = re.match(r"-\s+`([\w.]+__mutmut_\d+)`\s*:\s*(\S.*)", line)
    if m:
        listed[m.group(1)] = m.group(2)
killed = [k for k, c in meta.items() if c in killed_codes]
equivalent = [k for k, c in meta.items() if c not in killed_codes and k in listed]
survived = sorted((k for k, c in meta.items() if c not in killed_codes and k not in listed),
                  key=lambda k: (k.rsplit("_", 1)[0], int(k.rsplit("_", 1)[1])))
stale = sorted(k for k in listed if k in meta and meta[k] in killed_codes)
for name in survived:
    print(subprocess.run([mutmut, "show", name], capture_output=True, text=True).stdout.rstrip(), "\n")
for name in stale:
    print(f"listed as equivalent but killed now (take it out of {equivalents_file.name}): {name}")
scored = len(killed) + len(survived)
share = 100.0 * len(killed) / scored if scored else 100.0
print(f"{module}: killed {len(killed)} / survived {len(survived)} / equivalent {len(equivalent)}"
      f" / total {len(meta)} / {share:.1f}% killed / {elapsed} s")
sys.exit(0 if share >= 95.0 else 1)
PY
