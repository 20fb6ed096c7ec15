#!/bin/bash
# Sourced by the multi-arm run scripts (run8.sh, run9.sh): launch_arms ROOT "COMMON ARGS" "name:extra args" ...
# starts one train.py per arm, arm i on GPU i, each in its own process session (it outlives the call).
launch_arms() {
  local root=$1 common=$2 i=0 arm n extra
  shift 2
  for arm in "$@"; do
    n=${arm%%:*}; extra=${arm#*:}
    mkdir -p "$root/$n"
    # shellcheck disable=SC2086  # the argument lists are meant to split
    CUDA_VISIBLE_DEVICES=$i PYTHONUNBUFFERED=1 setsid nohup python3 training/train.py --out "$root/$n" $common \
      $extra > "$root/$n/stdout.txt" 2>&1 < /dev/null &
    i=$((i + 1))
  done
}
