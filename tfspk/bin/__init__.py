"""tfspk.bin: the console scripts. Importing it readies the process for them (tfspk.cli)."""
from tfspk.cli import hide_optional_packages_from_keras

hide_optional_packages_from_keras()
