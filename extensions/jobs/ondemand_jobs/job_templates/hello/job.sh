#!/bin/bash
#SBATCH --job-name=hello
#SBATCH --ntasks=1
#SBATCH --time=00:05:00

# Runs in this job's folder (sbatch --chdir); its output goes to slurm-<job id>.out here.
echo "Hello from $(hostname), job ${SLURM_JOB_ID} of ${USER}"
echo "Started $(date)"
sleep 30
echo "Done $(date)"
