#!/bin/bash
# Several nodes under SLURM: one `pte train` per node, each starting torchrun on its GPUs; the
# nodes meet at the first node's address (c10d rendezvous).
#   sbatch examples/slurm-multinode.sh /path/to/Qwen2.5-3B-Instruct dapo-math.jsonl
# The output folder must be on storage every node sees: rank 0 writes the checkpoints and every
# rank resumes from rank 0's latest one (a node that cannot see it stops with a message).
#SBATCH --job-name=pte
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=32
#SBATCH --time=24:00:00
set -euo pipefail
model=${1:?model folder}
data=${2:?training data (JSONL with prompt and answer)}
export PTE_MODEL=$model PTE_DATA=$data PTE_OUT=${PTE_OUT:-$PWD/runs/paper-multinode}
export PTE_HEAD=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
# prompts_per_step is per GPU: 2 nodes x 8 GPUs x 8 prompts x group 8 = 1024 completions a step
# (the start-up line prints the global batch); halve prompts_per_step to keep the paper's 512.
srun --export=ALL bash -c 'pte train --config examples/paper-gpu.yaml --model "$PTE_MODEL" --data "$PTE_DATA" \
  --output-dir "$PTE_OUT" --nproc-per-node "$SLURM_GPUS_ON_NODE" --nnodes "$SLURM_NNODES" \
  --node-rank "$SLURM_NODEID" --rdzv-endpoint "$PTE_HEAD:29500" --resume'
