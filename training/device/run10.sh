#!/bin/bash
# Run 10: procedural-v3 (objects about twice v2's area, training/README.md "Run 10"): one generator continued
# from the weights in assets/spool-tiny (run 9's f8c4 model, AE and config.json copied over the shipped ones in
# the uncommitted tree; nothing reset, no new AE), and optionally the evaluation judge fine-tuned to v3 on the
# same GPU. Each lease continues the previous lease's export the same way, with a new seed (new data).
# usage: bash training/device/run10.sh ROOT GEN_MINUTES SEED [JUDGE_MINUTES]   then collect.sh ROOT SECONDS [final]
ROOT=${1:-/tmp/c10}; GEN=${2:-24}; SEED=${3:-13}; JUDGE=${4:-0}
nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader
common="--init-assets assets/spool-tiny --gen-minutes $GEN --batch 128 --lr 4e-4 --warmup 200 --compile \
  --export-every 150 --p-uncond 0.15 --img-batch 256 --seed $SEED --plan-workers 6"
source "$(dirname "$0")/arms.sh"
launch_arms "$ROOT" "$common" "main:"
if [ "$JUDGE" != 0 ]; then
  mkdir -p "$ROOT/judge"
  PYTHONUNBUFFERED=1 setsid nohup python3 training/train_judge.py --out "$ROOT/judge" --minutes "$JUDGE" \
    --lr 1e-3 --init training/judge/judge.safetensors --seed "$SEED" > "$ROOT/judge/stdout.txt" 2>&1 < /dev/null &
fi
echo "launched run 10 under $ROOT (generator $GEN min, seed $SEED, judge $JUDGE min)"
