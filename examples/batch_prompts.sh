#!/usr/bin/env bash
# Generate and evaluate one run per prompt of a list, then compare them side by side.
#   examples/batch_prompts.sh [PROMPTS_FILE] [OUT_DIR] [extra `t3d generate` flags...]
# e.g. examples/batch_prompts.sh examples/prompts.txt runs/batch --method sds --steps 400
set -euo pipefail
PROMPTS="${1:-examples/prompts.txt}"
OUT="${2:-runs/batch}"
shift $(( $# > 2 ? 2 : $# ))
T3D="${T3D:-t3d}"
runs=()
while IFS= read -r prompt || [[ -n "$prompt" ]]; do
  [[ -z "${prompt// }" || "$prompt" == \#* ]] && continue
  slug=$(printf '%s' "$prompt" | tr '[:upper:]' '[:lower:]' | tr -cs 'a-z0-9' '-' | sed 's/^-//; s/-$//')
  $T3D generate "$prompt" --out "$OUT/$slug" --overwrite "$@"
  runs+=("$OUT/$slug")
done < "$PROMPTS"
(( ${#runs[@]} )) || { echo "no prompts in $PROMPTS" >&2; exit 2; }
$T3D evaluate "${runs[@]}" --compare "$OUT/compare.png"
