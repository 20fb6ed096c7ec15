#!/bin/bash
# Wait (up to SECS, or until no trainer is left), show each arm's last probes and steps, and copy each arm's
# latest export to $OUT as ARM_model.safetensors + ARM_config.json (a machine can go back between polls: copy
# at every one, and copy the files out here before the next call replaces them).
# usage: bash training/device/poll_arms.sh ROOT SECS      (ROOT holds one directory per arm)
R=$1; S=$2
end=$(( $(date +%s) + S ))
while [ "$(date +%s)" -lt $end ] && pgrep -f training/train.py > /dev/null; do sleep 10; done
for d in "$R"/*/; do
  n=$(basename "$d"); echo "== $n"
  grep -e "class probe" -e "val loss" -e "gen step" "$d/log.txt" | tail -4 | cut -c1-300
  tail -2 "$d/stdout.txt" | cut -c1-300
  if [ -f "$d/export/model.safetensors" ]; then
    cp "$d/export/model.safetensors" "$OUT/${n}_model.safetensors"
    cp "$d/export/config.json" "$OUT/${n}_config.json"
  fi
done
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
