#!/bin/bash
# Run 8 on four GPUs: four arms continued from run 7's whitened weights (INIT: a dir with model.safetensors
# and ae.safetensors; run 8 put run 7's files in assets/spool-tiny's place, uncommitted, since the carried
# tree must stay within 64 MiB), one per GPU,
# same seed and budget, each changing one thing, to find which lever moves class identity:
#   ctl    nothing (more training alone)
#   shift1 --t-shift 1 (training noise levels uniform instead of shifted towards pure noise: more of the
#          middle range, where the shape is decided)
#   pool   --text-pool (the decoder's adaLN also takes the pooled text, a global path beside cross-attention;
#          the option was removed after this run, which showed no effect: check out 3ece24c to rerun it)
#   img    --img-batch 1024 --img-weight 2 --obj-weight 4 (frame 0, whose shape comes from the caption
#          alone, weighs as much as the clips; object tokens weigh more)
# usage: bash training/device/run8.sh ROOT MINUTES INIT   then watch with collect.sh ROOT SECONDS [final]
ROOT=${1:-/tmp/c8}; MIN=${2:-10}; INIT=${3:-assets/spool-tiny}
nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader
common="--init-assets $INIT --gen-minutes $MIN --batch 128 --lr 4e-4 --warmup 200 --compile \
  --export-every 150 --p-uncond 0.15 --img-batch 256 --seed 11 --plan-workers 6"
arms=("ctl:" "shift1:--t-shift 1" "img:--img-batch 1024 --img-weight 2 --obj-weight 4")  # pool: at 3ece24c only
source "$(dirname "$0")/arms.sh"
launch_arms "$ROOT" "$common" "${arms[@]}"
echo "launched run 8 under $ROOT: ${arms[*]%%:*} for $MIN min each"
