import os
import platform

print(f"Python {platform.python_version()} on {platform.node()}")
print(f"Slurm job {os.environ.get('SLURM_JOB_ID')}, {os.environ.get('SLURM_CPUS_ON_NODE')} CPUs")
