"""The index of a shard dir: ``shards.list`` (header and one line per shard) read and checked against
the files (sizes here; sha256 and records in :mod:`tfspk.data.shards.verify`)."""
from __future__ import annotations

import dataclasses
import hashlib
import os

import numpy as np

from tfspk.errors import ToolError

LIST_NAME = "shards.list"
HEADER_TAG = "# tfspk-shards"
DTYPES = {"float32": (np.dtype("<f4"), 4), "float16": (np.dtype("<f2"), 2), "int16": (np.dtype("<i2"), 2)}


@dataclasses.dataclass
class ShardInfo:
    path: str          # absolute path
    num_utts: int
    num_bytes: int
    sha256: str


@dataclasses.dataclass
class ShardIndex:
    """The contents of a ``shards.list``."""
    list_path: str
    kind: str           # 'feats' or 'audio'
    dtype: str          # 'float32', 'float16' (feats) or 'int16' (audio)
    dim: int            # feature dimension (1 for audio)
    rate: int           # sample rate for audio, 0 for features
    num_classes: int
    num_utts: int
    seed: int
    shards: list

    @property
    def paths(self) -> list[str]:
        return [shard.path for shard in self.shards]


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_shard_list(path, check: bool = True) -> ShardIndex:
    """Read a ``shards.list`` (or the directory holding it). With ``check``, every shard must
    exist with the size the list gives (a truncated copy is a ToolError naming it)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, LIST_NAME)
    if not os.path.isfile(path):
        raise ToolError(f"shard list {path} not found (run steps/make_shards.sh; a directory without "
                        f"{LIST_NAME} was not packed completely)")
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    if not lines or not lines[0].startswith(HEADER_TAG):
        raise ToolError(f"{path}:1: expected a header '{HEADER_TAG} kind=... dtype=...'")
    header = {}
    for item in lines[0][len(HEADER_TAG):].split():
        name, _, value = item.partition("=")
        header[name] = value
    try:
        kind, dtype = header["kind"], header["dtype"]
        numbers = {name: int(header[name]) for name in ("dim", "rate", "num_classes", "num_utts", "seed")}
    except (KeyError, ValueError):
        raise ToolError(f"{path}:1: header lacks kind, dtype, dim, rate, num_classes, num_utts or seed: "
                        f"'{lines[0]}'") from None
    if kind not in ("feats", "audio") or dtype not in DTYPES:
        raise ToolError(f"{path}:1: unknown kind '{kind}' or dtype '{dtype}'")
    base = os.path.dirname(os.path.abspath(path))
    shards = []
    for number, line in enumerate(lines[1:], 2):
        fields = line.split()
        if len(fields) != 4 or not fields[1].isdigit() or not fields[2].isdigit():
            raise ToolError(f"{path}:{number}: expected 'shard num_utts num_bytes sha256', got '{line}'")
        shard = ShardInfo(os.path.join(base, fields[0]), int(fields[1]), int(fields[2]), fields[3])
        if check:
            check_shard_size(shard, path)
        shards.append(shard)
    if not shards:
        raise ToolError(f"{path}: lists no shards")
    if sum(s.num_utts for s in shards) != numbers["num_utts"]:
        raise ToolError(f"{path}: shard counts add up to {sum(s.num_utts for s in shards)}, "
                        f"the header says num_utts={numbers['num_utts']}")
    return ShardIndex(path, kind, dtype, shards=shards, **numbers)


def check_shard_size(shard: ShardInfo, list_path: str) -> None:
    if not os.path.isfile(shard.path):
        raise ToolError(f"shard {shard.path} (listed in {list_path}) not found")
    size = os.path.getsize(shard.path)
    if size != shard.num_bytes:
        state = "truncated" if size < shard.num_bytes else "longer than listed"
        raise ToolError(f"shard {shard.path} is {state}: {size} bytes, {list_path} says {shard.num_bytes}")


def as_index(shard_list) -> ShardIndex:
    return shard_list if isinstance(shard_list, ShardIndex) else read_shard_list(shard_list)
