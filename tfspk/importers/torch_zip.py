"""Read the tensors of a PyTorch checkpoint (``torch.save``) without PyTorch, and without running it.

Format (PyTorch >= 1.6, the default of every ``torch.save`` since): a zip file whose entries sit
under one top-level folder (``archive/`` for files written by ``torch.save`` to a file object;
older versions used the file's stem):

* ``<top>/data.pkl``: a pickle (protocol 2) of the saved object. Tensors appear as calls of
  ``torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
  backward_hooks[, metadata])`` whose ``storage`` is a *persistent id*
  ``("storage", <storage class e.g. torch.FloatStorage>, key, location, numel)``;
* ``<top>/data/<key>``: the raw bytes of that storage (``numel`` elements of the storage's dtype,
  in the byte order of ``<top>/byteorder``, little-endian when the entry is absent);
* ``<top>/version``, ``<top>/.data/...``: not needed to read the tensors.

Unpickling an arbitrary pickle runs whatever callables it names, so :class:`RestrictedUnpickler`
resolves only the names of :data:`ALLOWED_GLOBALS` -- to functions of this module that rebuild
numpy arrays, never to PyTorch's -- and refuses every other global with a :class:`ToolError` naming
it, before anything is called. Containers, numbers and strings need no global. The legacy
(pre-zip) format is refused with an error saying how to convert the file.
"""
from __future__ import annotations

import collections
import io
import pickle
import zipfile

import numpy as np

from tfspk.errors import ToolError

#: storage class name -> numpy dtype of its elements ("bfloat16" is decoded to float32 below)
STORAGE_DTYPES = {
    "FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2", "BFloat16Storage": "bfloat16",
    "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1",
    "ByteStorage": "u1", "BoolStorage": "?", "UntypedStorage": "u1",
}


class _StorageRef:
    """A storage named by the pickle; its bytes are read when a tensor uses it."""

    def __init__(self, dtype: str, key: str, numel: int):
        self.dtype, self.key, self.numel = dtype, key, numel


def _rebuild_tensor(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                    metadata=None):
    """What ``torch._utils._rebuild_tensor_v2`` rebuilds: a strided view of the storage (copied)."""
    return _PendingTensor(storage, int(storage_offset), tuple(int(s) for s in size),
                          tuple(int(s) for s in stride))


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    """``torch._utils._rebuild_parameter``: an ``nn.Parameter`` is its tensor here."""
    return data


class _PendingTensor:
    """A tensor whose storage bytes are resolved by :class:`TorchCheckpoint` after unpickling."""

    def __init__(self, storage: _StorageRef, offset: int, size: tuple, stride: tuple):
        if not isinstance(storage, _StorageRef):
            raise ToolError("a tensor in the pickle is built on something that is not a storage")
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride


#: (module, name) the pickle may name -> what it resolves to. Nothing else is resolved.
ALLOWED_GLOBALS = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only :data:`ALLOWED_GLOBALS` and torch storage classes (see module doc)."""

    def __init__(self, stream, where: str):
        super().__init__(stream)
        self.where = where

    def find_class(self, module, name):
        if (module, name) in ALLOWED_GLOBALS:
            return ALLOWED_GLOBALS[(module, name)]
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageClass(name)
        raise ToolError(f"{self.where}: the checkpoint's pickle names '{module}.{name}', which is not a tensor "
                        "rebuild or a plain container; refused without running it (only state dicts of tensors "
                        "are read)")

    def persistent_load(self, pid):
        if (not isinstance(pid, tuple) or len(pid) != 5 or pid[0] != "storage"
                or not isinstance(pid[1], _StorageClass)):
            raise ToolError(f"{self.where}: unexpected persistent id {pid!r:.80} in the pickle (a storage "
                            "reference ('storage', torch.<Type>Storage, key, location, numel) expected)")
        return _StorageRef(STORAGE_DTYPES[pid[1].name], str(pid[2]), int(pid[4]))


class _StorageClass:
    """Stands for ``torch.<Type>Storage`` in persistent ids; calling it is refused."""

    def __init__(self, name: str):
        self.name = name

    def __call__(self, *args, **kwargs):
        raise ToolError(f"the checkpoint's pickle calls torch.{self.name}; refused")


def _decode(raw: bytes, dtype: str, big_endian: bool) -> np.ndarray:
    if dtype == "bfloat16":
        bits = np.frombuffer(raw, dtype=">u2" if big_endian else "<u2").astype(np.uint32) << 16
        return bits.view(np.float32)
    array = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder(">") if big_endian else dtype)
    return array.astype(array.dtype.newbyteorder("="), copy=False)


class TorchCheckpoint:
    """The object of a ``torch.save`` zip file, tensors as numpy arrays.

    ``TorchCheckpoint(path).obj`` is the unpickled object (dicts, lists, numbers, strings and
    float32/float64/int64/... arrays); :meth:`state_dict` finds the tensor dict in it.
    """

    def __init__(self, path: str):
        self.path = path
        try:
            archive = zipfile.ZipFile(path)
        except FileNotFoundError:
            raise ToolError(f"{path}: no such checkpoint file") from None
        except IsADirectoryError:
            raise ToolError(f"{path}: is a directory, a checkpoint file expected") from None
        except zipfile.BadZipFile:
            raise ToolError(self._not_zip_message()) from None
        except OSError as err:
            raise ToolError(f"{path}: cannot read: {err.strerror or err}") from None
        with archive:
            names = archive.namelist()
            pickles = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
            if len(pickles) != 1:
                raise ToolError(f"{path}: a zip file but not a PyTorch checkpoint (no <folder>/data.pkl entry)")
            top = pickles[0][:-len("data.pkl")]
            big_endian = False
            if f"{top}byteorder" in names:
                order = archive.read(f"{top}byteorder").decode("ascii", "replace").strip()
                if order not in ("little", "big"):
                    raise ToolError(f"{path}: unknown byte order '{order}' in {top}byteorder")
                big_endian = order == "big"
            try:
                obj = RestrictedUnpickler(io.BytesIO(archive.read(pickles[0])), path).load()
            except ToolError:
                raise
            except Exception as err:  # corrupt pickles raise assorted types; name the file
                raise ToolError(f"{path}: cannot read {pickles[0]}: {type(err).__name__}: {err}") from None
            storages: dict[str, np.ndarray] = {}

            def materialise(value):
                if isinstance(value, _PendingTensor):
                    return self._tensor(archive, top, value, storages, big_endian)
                if isinstance(value, dict):
                    for key in list(value):
                        value[key] = materialise(value[key])
                    return value
                if isinstance(value, list):
                    return [materialise(v) for v in value]
                if isinstance(value, tuple):
                    return tuple(materialise(v) for v in value)
                return value

            self.obj = materialise(obj)

    def _not_zip_message(self) -> str:
        try:
            with open(self.path, "rb") as handle:
                head = handle.read(16)
        except OSError as err:
            return f"{self.path}: cannot read: {err.strerror or err}"
        if head[:1] == b"\x80":
            return (f"{self.path}: a legacy (pre-1.6, non-zip) torch.save file, which tfspk does not read; "
                    "convert it once with PyTorch: torch.save(torch.load(old), new)")
        return f"{self.path}: not a PyTorch checkpoint (not a zip file)"

    def _tensor(self, archive, top, pending: _PendingTensor, storages, big_endian) -> np.ndarray:
        ref = pending.storage
        if ref.key not in storages:
            entry = f"{top}data/{ref.key}"
            try:
                raw = archive.read(entry)
            except KeyError:
                raise ToolError(f"{self.path}: storage {entry} named in the pickle is missing") from None
            item = 2 if ref.dtype == "bfloat16" else np.dtype(ref.dtype).itemsize
            if len(raw) < ref.numel * item:
                raise ToolError(f"{self.path}: storage {entry} has {len(raw)} bytes, {ref.numel} elements of "
                                f"{item} bytes expected (truncated file?)")
            storages[ref.key] = _decode(raw[:ref.numel * item], ref.dtype, big_endian)
        data = storages[ref.key]
        size, stride, offset = pending.size, pending.stride, pending.offset
        if len(size) != len(stride) or any(s < 0 for s in size) or any(s < 0 for s in stride):
            raise ToolError(f"{self.path}: a tensor of storage {ref.key} has size {size} and stride {stride}")
        last = offset + sum((n - 1) * s for n, s in zip(size, stride)) if all(size) else offset - 1
        if offset < 0 or last >= data.size:
            raise ToolError(f"{self.path}: a tensor of size {size} at offset {offset} does not fit in storage "
                            f"{ref.key} of {data.size} elements")
        if not all(size):
            return np.zeros(size, data.dtype)
        view = np.lib.stride_tricks.as_strided(data[offset:], shape=size,
                                               strides=[s * data.itemsize for s in stride], writeable=False)
        return np.array(view)

    def state_dict(self, keys=("state_dict", "model", "model_state_dict")) -> "collections.OrderedDict[str, np.ndarray]":
        """The tensor dict: the object itself when it maps names to arrays, else its first entry named in
        ``keys`` that does (checkpoints that wrap the weights with optimizer state, epochs, ...)."""
        def is_tensor_dict(value):
            return (isinstance(value, dict) and value
                    and all(isinstance(k, str) and isinstance(v, np.ndarray) for k, v in value.items()))
        if is_tensor_dict(self.obj):
            return collections.OrderedDict(self.obj)
        if isinstance(self.obj, dict):
            for key in keys:
                if is_tensor_dict(self.obj.get(key)):
                    return collections.OrderedDict(self.obj[key])
            found = ", ".join(repr(k) for k in list(self.obj)[:10])
            raise ToolError(f"{self.path}: no dict of tensors in the checkpoint (top-level keys: {found}; "
                            f"looked in {', '.join(keys)})")
        raise ToolError(f"{self.path}: the checkpoint holds a {type(self.obj).__name__}, not a dict of tensors")


def read_state_dict(path: str) -> "collections.OrderedDict[str, np.ndarray]":
    """Names -> numpy arrays of the state dict saved in ``path`` (see :class:`TorchCheckpoint`)."""
    return TorchCheckpoint(path).state_dict()
