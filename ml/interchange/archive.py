"""A projector folder uploaded as a .zip: unpacked safely, with the dataset uploads' own checks.

The archive is untrusted: its declared sizes, entry count and compression ratios are checked
before anything is read (ml.datasets.archive's limits), each entry's bytes are counted as they
are read, and an entry with an unsafe path (absolute, .., a link) refuses the whole archive, since
a projector folder has no reason to hold one.
"""
from __future__ import annotations

import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from ml.datasets.archive import ArchiveError, ZipLimits, _check_declared, _entry_problem, _read_member
from ml.interchange.projector_config import CONFIG_FILE
from ml.interchange.table import InterchangeError


def unpack_projector_zip(source: BinaryIO, target: Path, limits: ZipLimits) -> Path:
    """Unpack the archive into `target` (an empty folder); returns the folder holding projector_config.pbtxt."""
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError):
        raise InterchangeError("the upload is not a .zip archive (a projector folder is uploaded zipped)") from None
    with archive:
        members = archive.infolist()
        try:
            _check_declared(members, limits)
            budget = limits.max_total_uncompressed_bytes
            for member in members:
                if member.is_dir():
                    continue
                problem = _entry_problem(member)
                if problem is not None:
                    raise InterchangeError(f"{member.filename}: {problem}; the archive is refused")
                data = _read_member(archive, member, budget)
                budget -= len(data)
                path = target.joinpath(*PurePosixPath(member.filename).parts)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
        except ArchiveError as exc:
            raise InterchangeError(str(exc)) from None
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
            raise InterchangeError(f"a corrupt .zip archive ({exc})") from None
    configs = sorted(target.rglob(CONFIG_FILE))
    if not configs:
        raise InterchangeError(f"the archive holds no {CONFIG_FILE}: not a TensorBoard projector export")
    if len(configs) > 1:
        raise InterchangeError(f"the archive holds {len(configs)} {CONFIG_FILE} files; zip one projector folder")
    return configs[0].parent
