"""How llama.cpp loads a GGUF model on this machine: the AMX repacking choice (``docs/design.md`` §6.6).

llama.cpp's CPU backend repacks weights into "extra" buffer types at load time when the CPU has a
faster kernel for them. On a CPU with AMX (Intel Sapphire Rapids and later, ``amx_int8`` in
``/proc/cpuinfo``) the AMX kernel crashes the process (SIGSEGV in ``ggml_backend_amx_mul_mat``) on
Q4_K_M weights such as the default Gemma package's (ggml-org/llama.cpp#20824; DSPy's own CI dropped
its AMX runners for it, stanfordnlp/dspy#10079). Loading with ``llama_model_params.use_extra_bufts =
False`` (llama.cpp's ``--no-repack``) keeps the weights in the ordinary CPU buffer and the model
answers. So repacking is off on a CPU with AMX and on elsewhere (where it is llama.cpp's default and
harmless); ``--repack on|off`` or ``LLM_ECONOMIST_LLAMA_REPACK=1|0`` overrides the detection, e.g. to
turn it back on once llama.cpp is fixed. The choice and its reason are recorded with each run.

llama-cpp-python 0.3.x has no argument for ``use_extra_bufts``: ``Llama.__init__`` builds its
``llama_model_params`` from ``llama_cpp.llama_model_default_params()`` and loads the model in the same
call. ``model_defaults`` wraps that function for the duration of a load (``load_llama``), or for a
whole process that does nothing but serve one model (``programs.lm.llama_server``).
"""

from __future__ import annotations

import contextlib
import os
import platform
import threading
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from programs.errors import ConfigError

__all__ = ["REPACK_ENV", "THREADS_ENV", "REPACK_CHOICES", "N_CTX", "N_CTX_MAX", "has_amx", "cpu_flags_text",
           "RepackChoice", "repack_choice", "n_threads", "LoadSettings", "model_defaults", "load_llama",
           "gpu_offload"]

#: Environment variable forcing weight repacking on (``1``) or off (``0``); unset: detected.
REPACK_ENV = "LLM_ECONOMIST_LLAMA_REPACK"
#: Environment variable overriding the number of llama.cpp threads.
THREADS_ENV = "LLM_ECONOMIST_LOCAL_THREADS"
#: Values of ``--repack``.
REPACK_CHOICES = ("auto", "on", "off")
#: Default context window. The simulation's longest prompt (the planner's, five years of history) is about
#: 1,500 tokens, but MIPROv2's instruction proposals reach ~4,500 (prompt + answer budget) and GEPA's reflections
#: grow with the traces; Gemma 3 270M was trained at 32,768. A window costs its KV cache up front (~18 KB/token).
N_CTX = 8192
#: Largest ``--n-ctx`` accepted (llama.cpp allocates the KV cache for the whole window up front).
N_CTX_MAX = 1 << 20
_TRUE = ("1", "on", "true", "yes")
_FALSE = ("0", "off", "false", "no")


def has_amx(cpuinfo: str, machine: str | None = None) -> bool:
    """Whether ``/proc/cpuinfo``'s text lists an AMX flag (``amx_int8``, ``amx_bf16``, ``amx_tile``) on
    an x86 machine. ``machine`` is ``platform.machine()`` (another architecture never has AMX)."""
    machine = (platform.machine() if machine is None else machine).lower()
    if machine not in ("x86_64", "amd64", "i686", "i386", "x86"):
        return False
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() == "flags" and any(f.startswith("amx_") for f in value.split()):
            return True
    return False


def cpu_flags_text(path: str = "/proc/cpuinfo") -> str:
    """The CPU description (empty where there is no ``/proc/cpuinfo``: then nothing is detected)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


@dataclass(frozen=True)
class RepackChoice:
    """Whether llama.cpp may repack weights into extra (AMX) buffers, and why."""

    repack: bool
    reason: str


def repack_choice(flag: str = "auto", environ: Mapping[str, str] | None = None, cpuinfo: str | None = None,
                  machine: str | None = None) -> RepackChoice:
    """The repacking choice: ``--repack on|off`` first, then ``LLM_ECONOMIST_LLAMA_REPACK``, else off on a
    CPU with AMX and on elsewhere. Raises ``ConfigError`` for a value that is neither."""
    if flag not in REPACK_CHOICES:
        raise ConfigError(f"repack={flag!r} must be one of {', '.join(REPACK_CHOICES)}")
    if flag != "auto":
        return RepackChoice(flag == "on", f"--repack {flag}")
    env = os.environ if environ is None else environ
    raw = env.get(REPACK_ENV, "").strip().lower()
    if raw:
        if raw not in _TRUE + _FALSE:
            raise ConfigError(f"{REPACK_ENV}={raw!r} must be 1 (repack) or 0 (do not repack)")
        return RepackChoice(raw in _TRUE, f"{REPACK_ENV}={raw}")
    if has_amx(cpu_flags_text() if cpuinfo is None else cpuinfo, machine):
        return RepackChoice(False, "CPU has AMX; llama.cpp's AMX kernel crashes on these weights, "
                                   "ggml-org/llama.cpp#20824")
    return RepackChoice(True, "no AMX on this CPU (llama.cpp's default)")


def n_threads(environ: Mapping[str, str] | None = None) -> int:
    """llama.cpp threads: ``LLM_ECONOMIST_LOCAL_THREADS`` if set, else the usable cores minus one (>= 1).

    llama.cpp's threads spin-wait for each other, so when another process takes a core they collapse;
    one core stays for this process's Python (DSPy, the simulation) and everything else.
    """
    env = os.environ if environ is None else environ
    raw = env.get(THREADS_ENV, "").strip()
    if raw:
        try:
            n = int(raw)
        except ValueError:
            n = 0
        if n < 1:
            raise ConfigError(f"{THREADS_ENV}={raw!r} must be an integer >= 1")
        return n
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


def gpu_offload() -> bool:
    """Whether this llama.cpp build has a GPU backend (False without llama-cpp-python)."""
    try:
        import llama_cpp
    except ImportError:
        return False
    return bool(llama_cpp.llama_supports_gpu_offload())


@dataclass(frozen=True)
class LoadSettings:
    """How a local model is loaded: context window, threads, GPU layers and weight repacking.

    ``None`` means "decide on this machine" (``resolved``): threads from ``n_threads``, GPU layers all
    (-1) when llama.cpp has a GPU backend and 0 otherwise, repacking from ``repack_choice``.
    """

    n_ctx: int = N_CTX
    n_threads: int | None = None
    n_gpu_layers: int | None = None
    repack: str = "auto"

    def check(self) -> None:
        """One-line ``ConfigError`` naming a setting outside its range (no model is loaded)."""
        def _int(v: Any) -> bool:
            return isinstance(v, int) and not isinstance(v, bool)

        if not _int(self.n_ctx) or not 16 <= self.n_ctx <= N_CTX_MAX:
            raise ConfigError(f"n_ctx={self.n_ctx!r} must be an integer in [16, {N_CTX_MAX}] (tokens of context)")
        if self.n_threads is not None and (not _int(self.n_threads) or not 1 <= self.n_threads <= 1024):
            raise ConfigError(f"n_threads={self.n_threads!r} must be an integer in [1, 1024] (or unset: "
                              f"{THREADS_ENV} or the usable cores minus one)")
        if self.n_gpu_layers is not None and (not _int(self.n_gpu_layers) or self.n_gpu_layers < -1):
            raise ConfigError(f"n_gpu_layers={self.n_gpu_layers!r} must be an integer >= -1 (-1: all layers; "
                              "0: CPU only)")
        if self.repack not in REPACK_CHOICES:
            raise ConfigError(f"repack={self.repack!r} must be one of {', '.join(REPACK_CHOICES)}")
        if self.n_threads is None:
            n_threads()  # a bad LLM_ECONOMIST_LOCAL_THREADS, now rather than at the first call

    def resolved(self) -> dict[str, Any]:
        """The settings as this machine will load them (what ``config.json`` records)."""
        self.check()
        choice = repack_choice(self.repack)
        gpu = self.n_gpu_layers if self.n_gpu_layers is not None else (-1 if gpu_offload() else 0)
        return {"n_ctx": self.n_ctx, "n_threads": self.n_threads or n_threads(), "n_gpu_layers": gpu,
                "repack": choice.repack, "repack_reason": choice.reason}

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_DEFAULTS_LOCK = threading.RLock()


@contextlib.contextmanager
def model_defaults(repack: bool) -> Iterator[None]:
    """Within the block, llama-cpp-python builds model parameters with ``use_extra_bufts = repack``.

    The only way to reach that field through ``Llama(...)`` in 0.3.x (its ``__init__`` reads
    ``llama_cpp.llama_model_default_params()`` and loads in the same call). Loads in this process are
    serialised by a lock so that no other load sees the wrapped function.
    """
    import llama_cpp.llama_cpp as C

    with _DEFAULTS_LOCK:
        original = C.llama_model_default_params

        def defaults():  # noqa: ANN202 - a ctypes struct
            params = original()
            params.use_extra_bufts = bool(repack)
            return params

        C.llama_model_default_params = defaults
        try:
            yield
        finally:
            C.llama_model_default_params = original


def load_llama(path: str, settings: LoadSettings | None = None, **kwargs: Any) -> Any:
    """A ``llama_cpp.Llama`` for the GGUF file ``path`` loaded with ``settings`` (resolved on this machine)."""
    from llama_cpp import Llama

    s = (settings or LoadSettings()).resolved()
    with model_defaults(s["repack"]):
        return Llama(model_path=path, n_ctx=s["n_ctx"], n_threads=s["n_threads"], n_threads_batch=s["n_threads"],
                     n_gpu_layers=s["n_gpu_layers"], verbose=False, **kwargs)
