#!/usr/bin/env bash
# Annotate a dataset on a running Ray cluster (see scripts/ray_cluster.yaml), one SAM 2 worker per GPU.
#   bash ray_annotate.sh /shared/ds/images 8      # data folder, number of workers (GPUs)
# Labels go to /shared/ds/labels (the "images" folder renamed). Rerunning resumes: done images are skipped.
set -euo pipefail
DATA=${1:?usage: ray_annotate.sh DATA_DIR [WORKERS]}
WORKERS=${2:-8}
export SAM2CLI_WEIGHTS_DIR=${SAM2CLI_WEIGHTS_DIR:-/shared/weights}   # downloaded once, read by every node
sam2 annotate data="$DATA" det_model=yolo11x.pt sam_model=sam2.1_b.pt \
    engine=ray ray_address=auto workers="$WORKERS" gpus_per_worker=1 device=cuda save_json=True
