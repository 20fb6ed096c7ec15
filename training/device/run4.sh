#!/bin/bash
# Run 4 on one GPU: a teacher judge (train_judge.py --split train, never the evaluation judge), then two
# candidates continued from assets/spool-tiny side by side on the same GPU, each adding a class loss through
# that teacher: main on the one-step prediction x_t - t v at the training t, alt on frame 0 sampled as the
# app samples it. Everything runs in its own session so it outlives the call; watch with collect.sh.
# usage: bash training/device/run4.sh ROOT MINUTES
ROOT=${1:-/tmp/c4}; MIN=${2:-20}
mkdir -p "$ROOT/teach" "$ROOT/main" "$ROOT/alt"
nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader
cat > "$ROOT/go.sh" <<EOS
cd "$PWD"
python3 training/train_judge.py --out "$ROOT/teach" --minutes 2.5 --split train --seed 11 > "$ROOT/teach/stdout.txt" 2>&1
J="$ROOT/teach/judge.safetensors"
common="--init-assets assets/spool-tiny --gen-minutes $MIN --batch 128 --lr 4e-4 --warmup 200 --compile \
  --export-every 150 --p-uncond 0.15 --img-batch 256 --class-judge \$J"
python3 training/train.py --out "$ROOT/main" \$common --seed 5 --class-weight 0.1 > "$ROOT/main/stdout.txt" 2>&1 &
python3 training/train.py --out "$ROOT/alt" \$common --seed 6 --sample-class-weight 0.1 > "$ROOT/alt/stdout.txt" 2>&1 &
wait
EOS
PYTHONUNBUFFERED=1 setsid nohup bash "$ROOT/go.sh" > "$ROOT/go.log" 2>&1 < /dev/null &
echo "launched run 4 under $ROOT (teacher 2.5 min, then main and alt for $MIN min each)"
