#!/usr/bin/env bash
# The Meta-DT Point-Robot study of BENCHMARKS.md: every variant × seeds, two runs at a time.
#   bash configs/meta-dt/run-study.sh [out-dir] [seeds...]
# A run that already finished (summary.json present) is skipped, an interrupted one resumed.
set -euo pipefail
out=${1:-runs/meta-dt-study}
shift || true
seeds=(${@:-0 1 2})
cfg=configs/meta-dt/point-robot.yaml
declare -A variants=(
  [meta-dt]=""
  [meta-dt-zs]="--set algo.prompt=none"
  [plain-dt]="--set algo.task_representation=none --set algo.prompt=none --set run.total_gradient_steps=6000"
  [prompt-dt]="--set algo.task_representation=none --set algo.prompt=random_segment --set algo.warm_train_steps=0 --set run.total_gradient_steps=6000"
  [no-z]="--set algo.task_representation=none"
  [random-segment]="--set algo.prompt=random_segment"
)
order=(meta-dt meta-dt-zs plain-dt prompt-dt no-z random-segment)
# Collect once before runs start side by side.
npx troupe collect configs/meta-dt/point-robot-collect.yaml --out runs/datasets/point-robot-mixed --no-progress >/dev/null
jobs_file=$(mktemp)
for seed in "${seeds[@]}"; do for v in "${order[@]}"; do echo "$v $seed" >>"$jobs_file"; done; done
run_one() {
  local v=$1 seed=$2 dir="$out/$1-$2"
  if [ -f "$dir/summary.json" ] && [ -f "$dir/task-inference.json" ]; then return; fi
  if [ -d "$dir/checkpoints" ]; then npx troupe train --resume "$dir" --no-progress >"$dir.log" 2>&1
  else mkdir -p "$out"; npx troupe train "$cfg" ${variants[$v]} --seed "$seed" --out "$dir" --no-progress >"$dir.log" 2>&1; fi
}
while read -r v seed; do
  run_one "$v" "$seed" &
  while [ "$(jobs -rp | wc -l)" -ge "${JOBS:-2}" ]; do sleep 5; done
done <"$jobs_file"
wait
rm -f "$jobs_file"
