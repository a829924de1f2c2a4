"""tfspk.bin: the console scripts. Importing it readies the process for them (tfspk.cli)."""
from tfspk.cli import hide_optional_packages_from_keras, quiet_cuda_probe_without_gpu

hide_optional_packages_from_keras()
quiet_cuda_probe_without_gpu()
