"""The FP8 Loader's ``save_as``: the name's checks, the record of what produced a saved file, the atomic write.

A saved file's header metadata holds ``SOURCE_KEY``: JSON of the source's name as the node got it, the source's
fingerprint (size in bytes and a sha256 of its safetensors header and of the first and last MiB of its data) and
the node's quantization inputs. Re-running a graph whose ``save_as`` already holds the same record skips the
save; any other file under that name is refused, never overwritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Mapping

import torch

from .checkpoint import PICKLE_SUFFIXES

SOURCE_KEY = "taylor_fp8_source"
NAME_MAX_BYTES = 255
"""Longest file name (UTF-8 bytes) of the common file systems (ext4, NTFS, APFS)."""
FILE_MODE = 0o644
_FORBIDDEN = re.compile(r'[/\\:<>"|?*\x00-\x1f]')
_RESERVED = re.compile(r"(con|prn|aux|nul|com\d|lpt\d)(\..*)?", re.IGNORECASE)  # Windows device names
_SAMPLE_BYTES = 1 << 20


def check_output_name(name: str) -> str:
    """A plain ``.safetensors`` file name for ``save_as`` (the suffix is added when missing). ValueError for
    anything that could leave the folder (separators, drive or absolute paths, ``..``), hide a file, or that a
    common file system refuses (a character such as ``<>:"|?*``, a control character, a Windows device name, a
    trailing dot or space, more than ``NAME_MAX_BYTES``)."""
    name = name.strip()
    if not name or _FORBIDDEN.search(name) or name.startswith(".") or os.path.isabs(name):
        raise ValueError(f"save_as must be a plain file name inside the diffusion model folder (no folders, "
                         f"'..', drive letters, leading '.' or any of <>:\"|?*), got {name!r}")
    suffix = os.path.splitext(name)[1].lower()
    if suffix in PICKLE_SUFFIXES or suffix == ".sft":
        raise ValueError(f"save_as writes .safetensors files, got {name!r}")
    name = name if suffix == ".safetensors" else f"{name}.safetensors"
    if _RESERVED.fullmatch(name) or name[:-len(".safetensors")].endswith((".", " ")):
        raise ValueError(f"save_as {name!r} is a name some file systems refuse (a device name, or a trailing "
                         "dot or space)")
    if len(name.encode("utf-8")) > NAME_MAX_BYTES:
        raise ValueError(f"save_as is too long: {len(name.encode('utf-8'))} bytes with its suffix, file systems "
                         f"take at most {NAME_MAX_BYTES} ({name[:40]!r}...)")
    return name


def fingerprint(path: str) -> dict[str, object]:
    """A cheap identity of a safetensors file: ``{"size": bytes, "sha256": hex digest of its header and of the
    first and last MiB of its data}`` (about 2 MiB read, whatever the file's size)."""
    size = os.path.getsize(path)
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        header_bytes = int.from_bytes(handle.read(8), "little")
        digest.update(handle.read(min(header_bytes, size) + _SAMPLE_BYTES))
        handle.seek(max(size - _SAMPLE_BYTES, 0))
        digest.update(handle.read(_SAMPLE_BYTES))
    return {"size": size, "sha256": digest.hexdigest()}


def source_record(source_name: str, path: str, options: Mapping[str, object]) -> str:
    """The ``SOURCE_KEY`` value for a file quantized from ``path`` (named ``source_name`` in the node) with the
    node's quantization ``options`` (input name -> value)."""
    return json.dumps({"source": source_name, **fingerprint(path), "options": dict(options)}, sort_keys=True)


def saved_record(path: str) -> str | None:
    """The ``SOURCE_KEY`` value in the header of the file ``path``, or None (no such key, or not safetensors)."""
    from safetensors import safe_open

    try:
        with safe_open(path, framework="pt", device="cpu") as handle:
            return (handle.metadata() or {}).get(SOURCE_KEY)
    except Exception:  # safetensors raises its own error types for a file that is not safetensors
        return None


def _parsed(record: str | None) -> dict | None:
    """A ``SOURCE_KEY`` record as a dict; None for none or one that is not a JSON object."""
    try:
        parsed = json.loads(record) if record is not None else None
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def differences(saved: str | None, wanted: str) -> str:
    """What tells the record ``saved`` (None: no record) from ``wanted``, in words for an error message."""
    old, new = _parsed(saved), json.loads(wanted)
    if saved is None:
        return "it was not saved by the FP8 Loader"
    if old is None:
        return "its record is unreadable"
    old_options = old["options"] if isinstance(old.get("options"), dict) else {}
    new_options = new["options"]
    changed = [f"{key} {old_options.get(key)!r} (this graph: {value!r})" for key, value in new_options.items()
               if old_options.get(key) != value]
    if old.get("source") != new["source"]:
        changed.insert(0, f"source {old.get('source')!r} (this graph: {new['source']!r})")
    elif (old.get("size"), old.get("sha256")) != (new["size"], new["sha256"]):
        changed.insert(0, f"source {new['source']!r} as it was then (its content has changed since)")
    return "it holds another model: " + ", ".join(changed)


def existing_target(folder: str, name: str, record: str, others: list[str]) -> bool:
    """Whether ``name`` already holds the result ``record`` describes (then the save is skipped): False when no
    file of that name is in ``folder`` or ``others`` (the other model folders). ValueError naming ``save_as``
    when one is there and holds anything else; it is never overwritten."""
    found = [os.path.join(f, name) for f in [folder, *others] if os.path.lexists(os.path.join(f, name))]
    if not found:
        return False
    saved = saved_record(found[0])
    if _parsed(saved) == json.loads(record):
        return True
    raise ValueError(f"FP8 Loader: save_as {name!r} already exists in the diffusion_models folders and "
                     f"{differences(saved, record)}. FP8 Loader never overwrites: choose another save_as name (or "
                     "load that file with UNETLoader)")


def save_new_file(state_dict: Mapping[str, torch.Tensor], metadata: Mapping[str, str], folder: str,
                  name: str) -> str:
    """Write a safetensors file ``folder/name`` (mode ``FILE_MODE``) atomically and never over an existing
    file: a temporary file in ``folder``, then a hard link to the final name (fails if it exists), then the
    temporary is removed. ValueError if ``name`` exists; on any error nothing is left behind. Returns the path."""
    from safetensors.torch import save_file

    target = os.path.join(folder, name)
    if os.path.lexists(target):
        raise ValueError(f"{target!r} already exists; FP8 Loader never overwrites: choose another save_as name")
    handle, temporary = tempfile.mkstemp(prefix=".fp8_loader_", suffix=".tmp", dir=folder)
    os.close(handle)
    try:
        save_file(dict(state_dict), temporary, metadata=dict(metadata))
        os.chmod(temporary, FILE_MODE)
        try:
            os.link(temporary, target)  # atomic, and refuses an existing name
        except FileExistsError as exc:
            raise ValueError(f"{target!r} already exists; FP8 Loader never overwrites: choose another save_as "
                             "name") from exc
        except OSError:  # no hard links on this file system: rename (checked just before; a tiny race remains)
            if os.path.lexists(target):
                raise ValueError(f"{target!r} already exists; FP8 Loader never overwrites") from None
            os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return target
