#!/bin/bash
# Wait up to SECONDS (or until no training process is left), print progress, copy results to $OUT.
# usage: bash training/device/collect.sh ROOT SECONDS [weights|final]
#   ROOT holds one directory per run (main, alt, run 8's arms ...; judge* and teach are side runs).
#   running: poll.tar (each run's log and latest rollout strip, the side runs' logs)
#   final:   RUN_model.safetensors for each run + final.tar (configs, logs, a run's own AE, the judge);
#            also at every poll of a lease, so a machine that goes back early loses nothing copied
#   weights: the ablation models instead (abl_*)
# At most 8 files and 64 MiB come back per call, hence the tars; final mode brings each run's model
# (~12 MiB) as its own file, so it fits at most 4 runs.
ROOT=${1:-/tmp/c2}; SECS=${2:-60}; MODE=$3
# run 2's second judge stage (JUDGE2=1): once the ablation runs have left GPU 1, continue the judge there for 3 min
if [ "${JUDGE2:-0}" = 1 ] && [ -f "$ROOT/judge/judge.safetensors" ] && [ ! -d "$ROOT/judge2" ] \
    && ! pgrep -f "variant" > /dev/null; then
  mkdir -p "$ROOT/judge2"
  CUDA_VISIBLE_DEVICES=1 PYTHONUNBUFFERED=1 setsid nohup python3 training/train_judge.py --out "$ROOT/judge2" \
    --minutes 3 --lr 1e-3 --init "$ROOT/judge/judge.safetensors" --seed 4 > "$ROOT/judge2/stdout.txt" 2>&1 < /dev/null &
  echo "launched judge2"
fi
end=$(( $(date +%s) + SECS ))
while [ $(date +%s) -lt $end ]; do
  sleep 10
  if ! pgrep -f "train(_judge)?\.py" > /dev/null; then break; fi
done
for d in "$ROOT"/*/; do
  n=$(basename "$d"); echo "== $n"; tail -n 3 "$d/stdout.txt" 2>/dev/null | cut -c1-300
  grep -h -e "val loss" -e "class probe" "$d/log.txt" 2>/dev/null | tail -n 4
done
nvidia-smi --query-gpu=index,utilization.gpu,memory.used --format=csv,noheader
cd "$ROOT" || exit 1
runs=$(for d in */export; do [ -d "$d" ] && case "$d" in abl_*) ;; *) dirname "$d";; esac; done)
if [ "$MODE" = weights ]; then
  for v in scd fullres nonsep; do
    [ -f "abl_$v/export/model.safetensors" ] && cp "abl_$v/export/model.safetensors" "$OUT/abl_${v}_model.safetensors"
    [ -f "abl_$v/export/config.json" ] && cp "abl_$v/export/config.json" "$OUT/abl_${v}_config.json"
  done
elif [ "$MODE" = final ]; then
  files=""
  for n in $runs; do
    cp "$n/export/model.safetensors" "$OUT/${n}_model.safetensors" 2>/dev/null
    files="$files $n/export/config.json $n/log.txt"
    # a run that trained its own AE (phase 1) or whitened one has an AE of its own
    grep -q -e "whitened the latent" -e "AE done" "$n/log.txt" && files="$files $n/export/ae.safetensors"
  done
  J=judge; [ -f judge2/judge.safetensors ] && J=judge2; [ -d teach ] && J=teach
  tar cf "$OUT/final.tar" $files $J/judge.safetensors $J/judge.json 2>/dev/null
else
  files=""
  for n in $runs; do files="$files $n/log.txt $n/samples/rollout_latest.png"; done
  tar cf "$OUT/poll.tar" $files judge*/stdout.txt teach/stdout.txt teach/judge.json abl_*/log.txt \
    abl_*/stdout.txt abl_*/samples/rollout_latest.png abl_*/export/config.json 2>/dev/null
fi
ls -la "$OUT"
