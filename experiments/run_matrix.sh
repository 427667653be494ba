#!/usr/bin/env bash
# The findings matrix end to end, in a scratch copy of this checkout so that the checkout's params and data stay as
# they are: apply a profile, reproduce the baseline and commit it, run every variant x seed of
# experiments/matrix.yaml as a DVC experiment, collect. Results land in experiments/results/<name>.{json,md,png}
# of this checkout; the scratch project ($WORK/project, WORK default a new temp folder) keeps the experiments for `dvc exp show`.
#   usage: experiments/run_matrix.sh PROFILE NAME [extra `findings run` arguments, e.g. --seeds 0 1]
#   e.g.   experiments/run_matrix.sh findings-cpu cpu        (2-core CPU, under 2 hours)
#          experiments/run_matrix.sh findings-gpu gpu        (one H100/H200)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
profile=$1 name=$2
shift 2
scratch=${WORK:-$(mktemp -d)}
work=$scratch/project
mkdir -p "$work"
git -C "$here" ls-files -z --cached --others --exclude-standard | (cd "$here" && tar --null -T - -cf -) | tar -xf - -C "$work"
[ -e "$here/../shared" ] && ln -sfn "$(cd "$here/../shared" && pwd)" "$scratch/shared"  # real-data tasks' ../shared
cd "$work"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
commit() { git add -A && git -c user.name=findings -c user.email=findings@localhost commit -qm "$1"; }
python -m curation.cli profile "$profile"
git init -q && commit "findings baseline: profile $profile"
echo "== $(date -u +%FT%TZ) baseline: dvc repro in $work"
dvc repro --quiet
commit "baseline reproduced"  # dvc.lock and the metrics: every experiment starts from them
echo "== $(date -u +%FT%TZ) experiments"
python -m experiments.findings run "$@"
python -m experiments.findings collect --output "$here/experiments/results/$name"
echo "== $(date -u +%FT%TZ) done: $here/experiments/results/$name.{json,md,png}; dvc exp show in $work"
