#!/bin/bash
# Run 2 campaign on a two-GPU machine (nvidia-h100-x2), every process in its own session so it outlives
# the call. GPU 0: the shipped model, continued from assets/spool-tiny with CFG caption dropout.
# GPU 1: the class/background judge, then the three ablation variants from scratch, side by side with the
# same wall-clock budget on the same GPU (a compute-matched comparison), all with the shipped AE.
# usage: bash training/device/campaign.sh ROOT MAIN_MIN ABL_MIN JUDGE_MIN
ROOT=${1:-/tmp/c2}; MAIN=${2:-19}; ABL=${3:-16}; JUDGE=${4:-5}
mkdir -p "$ROOT"
nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader
go() { # name gpu args...
  local name=$1 gpu=$2; shift 2; mkdir -p "$ROOT/$name"
  CUDA_VISIBLE_DEVICES=$gpu PYTHONUNBUFFERED=1 setsid nohup python3 "$@" > "$ROOT/$name/stdout.txt" 2>&1 < /dev/null &
  echo "launched $name on GPU $gpu: pid $!"
}
go main 0 training/train.py --out "$ROOT/main" --init-assets assets/spool-tiny --gen-minutes "$MAIN" \
   --batch 128 --lr 4e-4 --warmup 200 --compile --export-every 150 --p-uncond 0.15 --seed 2
go judge 1 training/train_judge.py --out "$ROOT/judge" --minutes "$JUDGE"
for v in scd fullres nonsep; do
  go "abl_$v" 1 training/train.py --out "$ROOT/abl_$v" --variant "$v" --init-assets assets/spool-tiny --fresh-gen \
     --gen-minutes "$ABL" --batch 64 --compile --export-every 300 --p-uncond 0.15 --seed 7
done
