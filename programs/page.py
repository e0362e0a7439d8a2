"""``report.html``: one interactive page of a run, built from the files the run wrote (``docs/design.md`` §7.1).

One page per run directory, from one builder per kind of run, registered here: ``programs.simulation.page``
(a ``programs.simulate`` run) and ``eval.page`` (an ``eval.compare`` run). The CLIs write the page when they
finish (:func:`write_html`), ``python -m eval.view RUN_DIR --html`` writes it for any existing run, and the
live viewer (``eval.view``) serves :func:`page_model` as JSON for the page to redraw itself as the run grows.
The model is plain JSON: Plotly figures (data + layout) and tables, so the browser only draws (``page.js``).

Plotly's JavaScript comes from the ``plotly`` Python package and is written beside the page
(``plotly.min.js``): the page opens offline from the file, with no CDN.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from programs.errors import ConfigError

__all__ = ["PAGE", "PLOTLY_JS", "PageKind", "KINDS", "register", "run_kind", "page_model", "model_version", "model_json",
           "render_html", "write_html", "plotly_js_path", "chart", "slider", "step_line", "income_top",
           "SCHEDULE_AXES"]

#: The page's file name, beside ``report.md`` / ``summary.json``.
PAGE = "report.html"
#: Plotly's bundled JavaScript, written beside the page.
PLOTLY_JS = "plotly.min.js"

@dataclass(frozen=True)
class PageKind:
    """A kind of run: how to recognise its directory and how to build its page model."""

    name: str
    files: tuple[str, ...]
    build: Callable[[Path], dict[str, Any]]


#: Kinds of run by name, in the order they are tried (registered by the modules that build their pages).
KINDS: dict[str, PageKind] = {}


def register(name: str, files: Sequence[str]) -> Callable[[Callable[[Path], dict[str, Any]]], Callable[[Path], dict[str, Any]]]:
    """Register ``build(run_dir) -> model`` for runs whose directory holds every one of ``files``."""

    def deco(build: Callable[[Path], dict[str, Any]]) -> Callable[[Path], dict[str, Any]]:
        KINDS[name] = PageKind(name, tuple(files), build)
        return build

    return deco


# ------------------------------------------------------------------------------------------------
# which run
# ------------------------------------------------------------------------------------------------
def run_kind(run_dir: str | Path) -> str:
    """The registered kind of the run in ``run_dir``; ``ConfigError`` naming the directory otherwise."""
    d = Path(run_dir)
    if not d.is_dir():
        raise ConfigError(f"run_dir={str(d)!r} is not a directory; give the --out of a programs.simulate or "
                          "eval.compare run")
    for kind in KINDS.values():
        if all((d / f).is_file() for f in kind.files):
            return kind.name
    wants = " or ".join(f"{' + '.join(k.files)} ({k.name})" for k in KINDS.values())
    raise ConfigError(f"run_dir={str(d)!r} is not a run: it needs {wants}")


def model_version(run_dir: str | Path) -> str:
    """A short digest of the run's files' names, sizes and times: it changes when the run writes anything
    (the page and its script excluded: writing them changes nothing the page shows)."""
    d = Path(run_dir)
    parts = []
    for p in sorted(d.iterdir()):
        if p.name.startswith(".") or p.name in (PAGE, PLOTLY_JS) or not p.is_file():
            continue
        st = p.stat()
        parts.append(f"{p.name}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:12]


def page_model(run_dir: str | Path) -> dict[str, Any]:
    """The page of the run in ``run_dir`` as JSON-ready data: title, engine, charts, tables."""
    d = Path(run_dir)
    kind = run_kind(d)
    version = model_version(d)
    model = KINDS[kind].build(d)
    model.update(kind=kind, version=version, run_dir=str(d))
    return _clean(model)


# ------------------------------------------------------------------------------------------------
# charts
# ------------------------------------------------------------------------------------------------
def chart(cid: str, title: str, engine: str, data: list[dict[str, Any]], layout: dict[str, Any] | None = None,
          *, slider: dict[str, Any] | None = None, note: str = "") -> dict[str, Any]:
    """One figure; its title always says which engine answered (never an offline result passed as an LLM's)."""
    lay = {"title": {"text": f"{title}<br><sup>answered by: {engine}{' · ' + note if note else ''}</sup>"},
           "margin": {"t": 70, "l": 70, "r": 20, "b": 60}, "legend": {"font": {"size": 10}}, "height": 420}
    lay.update(layout or {})
    return {"id": cid, "title": title, "data": data, "layout": lay, "slider": slider}


def step_line(cutoffs: Sequence[float], rates_pct: Sequence[float], top: float) -> tuple[list[float], list[float]]:
    """x (thousand $) and y (%) of a marginal-rate step function up to ``top`` dollars."""
    xs = [float(c) / 1000.0 for c in cutoffs] + [top / 1000.0]
    ys = [float(r) for r in rates_pct] + [float(rates_pct[-1])]
    return xs, ys


def income_top(cutoffs: Sequence[float]) -> float:
    """Where a schedule's chart ends: past the top cut-off, so the top bracket shows (this page and eval.plots)."""
    return max(float(cutoffs[-1]) * 1.6, 700_000.0)


#: The axes of a marginal-rate chart.
SCHEDULE_AXES = {"xaxis": {"title": {"text": "pre-tax income (thousand $ / year)"}},
                 "yaxis": {"title": {"text": "marginal tax rate (%)"}, "range": [-2, 102]}}


def slider(key: str, label: str, values: Sequence[int]) -> dict[str, Any]:
    """A slider over the traces whose ``meta[key]`` is one of ``values`` (the page shows one value at a time)."""
    return {"key": key, "label": label, "values": list(values)}


# ------------------------------------------------------------------------------------------------
# the page
# ------------------------------------------------------------------------------------------------
def _clean(obj: Any) -> Any:
    """JSON-ready: numpy scalars to Python, NaN/inf to null (Plotly draws a gap)."""
    if isinstance(obj, Mapping):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        return x if math.isfinite(x) else None
    return obj


def model_json(model: Mapping[str, Any]) -> str:
    """The model as JSON (strict: no NaN)."""
    return json.dumps(model, allow_nan=False, separators=(",", ":"), ensure_ascii=False)


def render_html(model: Mapping[str, Any], *, live: bool = False, plotly_src: str = PLOTLY_JS) -> str:
    """The page: the model embedded as JSON, drawn by a small script; ``live`` polls ``data.json``."""
    payload = model_json(model).replace("</", "<\\/")
    title = _esc(str(model.get("title", "run")))
    script = (resources.files("programs") / "page.js").read_text(encoding="utf-8")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.2em auto; max-width: 1100px; color: #222; padding: 0 1em; }}
.engine {{ padding: .5em .8em; border-radius: 4px; background: #eef4fb; }}
.engine.offline {{ background: #fff3cd; }}
.chart-box {{ border-top: 1px solid #ddd; margin-top: 1em; padding-top: .5em; }}
.slider {{ display: flex; gap: .8em; align-items: center; margin: .3em 0 0 4em; }}
.slider input {{ width: 50%; }}
table {{ border-collapse: collapse; font-size: .85em; margin: .5em 0; }}
td, th {{ border: 1px solid #ccc; padding: .2em .5em; text-align: left; vertical-align: top; }}
pre {{ background: #f6f6f6; padding: .6em; overflow-x: auto; font-size: .85em; }}
#status {{ color: #555; font-size: .9em; }}
</style>
<script src="{_esc(plotly_src)}"></script>
</head><body>
<h1 id="title">{title}</h1>
<p id="engine" class="engine"></p>
<p id="status"></p>
<ul id="facts"></ul>
<pre id="text" hidden></pre>
<div id="charts"></div>
<div id="tables"></div>
<script id="model" type="application/json">{payload}</script>
<script>const LIVE = {"true" if live else "false"};</script>
<script>
{script}
</script>
</body></html>
"""


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def plotly_js_path() -> Path:
    """Plotly's bundled ``plotly.min.js`` (shipped in the ``plotly`` Python package)."""
    path = Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))
    if not path.is_file():
        raise ConfigError("plotly: package_data/plotly.min.js is missing; reinstall plotly (pip install 'plotly>=6')")
    return path


def write_html(run_dir: str | Path) -> list[Path]:
    """Write ``report.html`` and ``plotly.min.js`` beside it for the run in ``run_dir``; return both paths."""
    from programs.simulation.runlog import replace_atomic, write_atomic

    d = Path(run_dir)
    # Without the live view's fields (a file-time digest, the absolute path): the same run gives the same page.
    html = render_html({k: v for k, v in page_model(d).items() if k not in ("version", "run_dir")})
    src = plotly_js_path()
    dst = d / PLOTLY_JS
    if not dst.is_file() or dst.stat().st_size != src.stat().st_size:
        replace_atomic(dst, lambda tmp: shutil.copyfile(src, tmp))
    write_atomic(d / PAGE, html)
    return [d / PAGE, dst]
