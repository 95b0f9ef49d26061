#!/usr/bin/env bash
# Generate one run per prompt of a list, keep going past failures, and say which failed.
#
#   examples/batch.sh examples/prompts.txt [extra t3d generate flags...]
#   METHOD=esd OUT=runs/batch examples/batch.sh prompts.txt --steps 400
#   EVALUATE=1 examples/batch.sh prompts.txt     # then `t3d evaluate` the runs and compare them
#
# t3d exits 2 on bad input (one line on stderr), 1 if training diverged, 130 if interrupted;
# an interrupt stops the whole batch, any other failure is recorded and the batch goes on.
set -u
list=${1:?usage: batch.sh PROMPTS_FILE [t3d generate flags...]}
shift
method=${METHOD:-sds}
out_root=${OUT:-runs/batch}
t3d=${T3D:-t3d}
failed=0
done_runs=()
while IFS= read -r prompt || [ -n "$prompt" ]; do
  case "$prompt" in ''|'#'*) continue ;; esac
  name=$(printf '%s' "$prompt" | tr 'A-Z' 'a-z' | tr -cs 'a-z0-9' '-' | sed 's/^-//; s/-$//')
  echo "== $prompt -> $out_root/$name-$method"
  "$t3d" generate "$prompt" --method "$method" --out "$out_root/$name-$method" "$@" </dev/null
  code=$?
  if [ "$code" -eq 130 ]; then echo "interrupted"; exit 130; fi
  if [ "$code" -ne 0 ]; then echo "FAILED ($code): $prompt"; failed=$((failed + 1));
  else done_runs+=("$out_root/$name-$method"); fi
done < "$list"
if [ "${EVALUATE:-0}" != 0 ] && [ "${#done_runs[@]}" -gt 0 ]; then
  "$t3d" evaluate "${done_runs[@]}" --compare "$out_root/compare-$method.png" </dev/null || failed=$((failed + 1))
fi
echo "done: $failed failed"
[ "$failed" -eq 0 ]
