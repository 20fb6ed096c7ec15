#!/bin/bash
# Run 9: the f8c4 autoencoder layout (training/README.md "Runs 7–8"): a new AE (phase 1), then the generator
# continued from assets/spool-tiny's (phase 2). main whitens the new latent after phase 1; on a machine with
# a second GPU, alt trains the same without whitening (which of the two helps is then measured, not guessed).
# usage: bash training/device/run9.sh ROOT AE_MINUTES GEN_MINUTES [INIT]   then collect.sh ROOT SECONDS [final]
#   INIT: the dir whose model.safetensors starts the generator (default assets/spool-tiny, run 2's)
ROOT=${1:-/tmp/c9}; AE=${2:-4.5}; GEN=${3:-22}; INIT=${4:-assets/spool-tiny}
nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader
common="--ae-layout f8c4 --init-gen $INIT --ae-minutes $AE --gen-minutes $GEN --batch 128 --lr 4e-4 \
  --warmup 200 --compile --export-every 150 --p-uncond 0.15 --img-batch 256 --seed 12 --plan-workers 6"
arms=("main:--whiten")
[ "$(nvidia-smi -L | wc -l)" -ge 2 ] && arms+=("alt:")
source "$(dirname "$0")/arms.sh"
launch_arms "$ROOT" "$common" "${arms[@]}"
echo "launched run 9 under $ROOT: ${arms[*]%%:*} (AE $AE min, generator $GEN min)"
