#!/bin/bash
#SBATCH --job-name=python
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=1
#SBATCH --time=00:30:00

# Runs in this job's folder (sbatch --chdir); edit main.py next to this script.
python3 main.py
