#!/bin/bash
# Run 3 on a two-GPU machine (nvidia-h100-x2): two candidates continued from assets/spool-tiny (run 2), side
# by side, each in its own session so it outlives the call. Both add the object-token loss weight, a batch
# of single frames (frame 0) per step and encoder histories made of the model's own reconstructions;
# B pushes the first two harder. The one that evaluates better ships.
# usage: bash training/device/run3.sh ROOT MINUTES
ROOT=${1:-/tmp/c3}; MIN=${2:-19}
mkdir -p "$ROOT"
nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader
go() { # name gpu args...
  local name=$1 gpu=$2; shift 2; mkdir -p "$ROOT/$name"
  CUDA_VISIBLE_DEVICES=$gpu PYTHONUNBUFFERED=1 setsid nohup python3 training/train.py --out "$ROOT/$name" \
    --init-assets assets/spool-tiny --gen-minutes "$MIN" --batch 128 --lr 4e-4 --warmup 200 --compile \
    --export-every 150 --p-uncond 0.15 "$@" > "$ROOT/$name/stdout.txt" 2>&1 < /dev/null &
  echo "launched $name on GPU $gpu: pid $!"
}
go main 0 --seed 3 --obj-weight 4 --img-batch 512 --img-weight 0.5 --p-self-ctx 0.5
[ "$(nvidia-smi -L | wc -l)" -ge 2 ] && go alt 1 --seed 4 --obj-weight 8 --img-batch 1024 --img-weight 1.0 --p-self-ctx 0.3
