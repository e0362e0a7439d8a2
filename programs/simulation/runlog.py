"""The run directory: ``config.json``, an append-only ``steps.jsonl`` and ``summary.json``.

One JSON line per simulation step, flushed and fsynced before the next step starts, so a killed run
loses at most the step in flight. On resume, a truncated last line (the kill landed mid-write) is
dropped and cut from the file; a damaged line before the last is an error. ``Simulation.replay``
rebuilds the state from the lines and the run continues; because every LM input depends only on
logged state, the final summary equals an unbroken run's (same seed, deterministic LM).

Nothing secret is written: the LM appears as its description (no keys), and every file written here passes
through ``programs.redact.redact`` (URL credentials and queries, quoted authorization headers).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from programs.lm import ConfigError
from programs.redact import redact

__all__ = ["RunLog", "read_steps", "read_run_config"]

CONFIG = "config.json"
STEPS = "steps.jsonl"
SUMMARY = "summary.json"


def _dump(obj: Any) -> str:
    # allow_nan=False: a NaN in a record is a bug upstream, not something to persist silently.
    return redact(json.dumps(obj, separators=(",", ":"), allow_nan=False))


def replace_atomic(path: Path, write: Callable[[str], None], *, suffix: str | None = None) -> None:
    """Have ``write(tmp)`` fill a unique temporary file beside ``path``, then rename it over ``path``.

    Readers never see a partial file, and processes writing the same path (a shared Optuna study)
    never write into each other's temporary file. The file gets the mode of any file the process creates
    (0644 under the usual umask 022), not ``mkstemp``'s private 0600: every output has the same mode.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix if suffix is None else suffix)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    """The process umask (reading it means setting it; restored at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: Path, text: str) -> None:
    """Write ``text``, redacted (``programs.redact``), to ``path`` atomically and durably (fsynced before the
    rename)."""
    text = redact(text)

    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())

    replace_atomic(path, write)


def read_steps(path: str | Path, *, repair: bool = False) -> list[dict[str, Any]]:
    """The complete step records of a ``steps.jsonl``.

    A last line without its newline or not parseable is a write cut short by a kill: it is ignored
    (and cut from the file when ``repair``). Any earlier damaged line raises ValueError.
    """
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    records: list[dict[str, Any]] = []
    good_end = 0
    pos = 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        line = data[pos:] if nl < 0 else data[pos:nl]
        end = len(data) if nl < 0 else nl + 1
        try:
            rec = json.loads(line) if nl >= 0 else None
        except ValueError:
            rec = None
        if rec is None or not isinstance(rec, dict):
            if end < len(data) and data[end:].strip():
                raise ValueError(f"{path}: line {len(records) + 1} is damaged and is not the last line; "
                                 "the log cannot be resumed")
            break
        records.append(rec)
        good_end = end
        pos = end
    if repair and good_end < len(data):
        with open(path, "r+b") as f:
            f.truncate(good_end)
            f.flush()
            os.fsync(f.fileno())
    return records


def read_run_config(out_dir: str | Path) -> dict[str, Any]:
    """The ``config.json`` of a ``programs.simulate`` run in ``out_dir``, or ``ConfigError`` saying why not.

    A resume needs a run to resume: a missing directory, a directory without ``config.json`` or one whose
    ``config.json`` another command wrote (``eval.compare``) is refused in one line, never started afresh.
    """
    d = Path(out_dir)
    path = d / CONFIG
    if not d.exists():
        raise ConfigError(f"--resume: out={str(d)!r} does not exist; there is no run to resume (drop --resume "
                          "to start one)")
    if not path.exists():
        if (d / STEPS).exists() and (d / STEPS).stat().st_size > 0:
            raise ConfigError(f"out={str(d)!r} has {STEPS} but no {CONFIG}; cannot resume")
        raise ConfigError(f"--resume: out={str(d)!r} holds no run ({CONFIG} missing); drop --resume to start one")
    try:
        doc = json.loads(path.read_text())
    except ValueError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc}); cannot resume") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("config"), dict) or not (d / STEPS).exists():
        raise ConfigError(f"--resume: {path} was not written by programs.simulate (an eval.compare or other "
                          "output directory?); choose the run's own --out")
    return doc


class RunLog:
    """An output directory holding one run.

    Use ``RunLog.create(out, config_dict, lm=...)`` for a new run (refuses a directory holding a log)
    or ``RunLog.open_resume(out, config_dict, resumable=...)`` to continue one, which returns the
    log and the records to replay.
    """

    def __init__(self, out_dir: str | Path) -> None:
        self.dir = Path(out_dir)
        self._fh = None
        self.n_steps = 0

    @property
    def steps_path(self) -> Path:
        return self.dir / STEPS

    @property
    def config_path(self) -> Path:
        return self.dir / CONFIG

    @property
    def summary_path(self) -> Path:
        return self.dir / SUMMARY

    def check_new(self, overwrite: bool = False) -> None:
        """``ConfigError`` when a new run here would replace a run log and ``overwrite`` is not given (checked
        before any LM is built; nothing is written)."""
        if not overwrite and self.steps_path.exists() and self.steps_path.stat().st_size > 0:
            raise ConfigError(f"out={str(self.dir)!r} already holds a run log; pass --resume to continue it, "
                              "--overwrite to replace it, or choose another --out")

    @classmethod
    def create(cls, out_dir: str | Path, config: dict[str, Any], *, lm: str = "",
               lm_settings: dict[str, Any] | None = None, overwrite: bool = False) -> "RunLog":
        """A new run in ``out_dir``; a directory holding a run log is refused unless ``overwrite``."""
        log = cls(out_dir)
        cls.check_new(out_dir, overwrite=overwrite)
        log.dir.mkdir(parents=True, exist_ok=True)
        log._write_config(config, lm, lm_settings)
        log.summary_path.unlink(missing_ok=True)
        (log.dir / "report.html").unlink(missing_ok=True)  # the page of the run this one replaces
        log._fh = open(log.steps_path, "w")
        return log

    @classmethod
    def check_new(cls, out_dir: str | Path, *, overwrite: bool = False) -> None:
        """Refuse (``ConfigError``) to start a new run where a run log is, unless ``overwrite``; writes nothing."""
        log = cls(out_dir)
        if not overwrite and log.steps_path.exists() and log.steps_path.stat().st_size > 0:
            raise ConfigError(f"out={str(log.dir)!r} already holds a run log; pass --resume to continue it, "
                              "--overwrite to replace it, or choose another --out")

    @classmethod
    def open_resume(cls, out_dir: str | Path, config: dict[str, Any], *, lm: str = "",
                    resumable: frozenset[str] | set[str] = frozenset(), lm_settings: dict[str, Any] | None = None,
                    lm_switch: dict[str, Any] | None = None) -> tuple["RunLog", list[dict[str, Any]]]:
        """Continue the run in ``out_dir``: check the settings match, repair a cut last line, return the
        records. Refuses a directory that holds no run to resume. ``lm_switch`` (a change of LM the user
        asked for explicitly) is appended to the log's ``lm_switches``."""
        log = cls(out_dir)
        old_doc = read_run_config(out_dir)
        old = old_doc["config"]
        for key in sorted(set(old) | set(config)):
            if key in resumable:
                continue
            if old.get(key) != config.get(key):
                raise ConfigError(f"resume: {key}={config.get(key)!r} differs from the stopped run's "
                                  f"{key}={old.get(key)!r} (only {', '.join(sorted(resumable))} may change)")
        try:
            records = read_steps(log.steps_path, repair=True)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        switches = list(old_doc.get("lm_switches") or [])
        if lm_switch is not None:
            switches.append({**lm_switch, "at_step": len(records)})
        log._write_config(config, lm, lm_settings, switches)
        log._fh = open(log.steps_path, "a")
        log.n_steps = len(records)
        return log, records

    def _write_config(self, config: dict[str, Any], lm: str, lm_settings: dict[str, Any] | None = None,
                      lm_switches: list[dict[str, Any]] | None = None) -> None:
        doc: dict[str, Any] = {"config": config, "lm": lm, "lm_settings": lm_settings or {}}
        if lm_switches:
            doc["lm_switches"] = lm_switches
        write_atomic(self.config_path, json.dumps(doc, indent=2) + "\n")

    def append(self, record: Any) -> None:
        """Write one step's record (a ``StepRecord`` or a JSON-ready dict) as one line, flushed and fsynced."""
        if self._fh is None:
            raise RuntimeError("the run log is closed")
        line = record.log_line() if hasattr(record, "log_line") else record
        self._fh.write(_dump(line) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.n_steps += 1

    def write_summary(self, summary: Any) -> None:
        """Write ``summary.json`` (a ``RunSummary`` or a JSON-ready dict) atomically."""
        if hasattr(summary, "model_dump"):
            summary = summary.model_dump(mode="json")
        write_atomic(self.summary_path, json.dumps(summary, indent=2, allow_nan=False) + "\n")

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> "RunLog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
