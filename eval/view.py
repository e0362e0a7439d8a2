"""``python -m eval.view RUN_DIR``: see a run in the browser (``docs/design.md`` §7.1).

``--html`` writes ``report.html`` for any existing run (``eval.page.write_html``, the page ``eval.compare`` and
``programs.simulate`` write themselves). Without it, a read-only viewer serves the same page on 127.0.0.1 and
follows a run in progress: the page polls ``data.json`` each second and redraws when the run's files change
(new lines in ``steps.jsonl``, a summary). Standard library ``http.server``; nothing is written to the run.
"""

from __future__ import annotations

import argparse
import errno
import json
import sys
import threading
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from eval.page import model_json, model_version, page_model, plotly_js_path, render_html, run_kind, write_html
from programs.cli import EXIT_CONFIG, OneLineParser
from programs.errors import ConfigError

DEFAULT_PORT = 8765


class _Pages:
    """The run's page model, rebuilt only when the run's files change (the page polls every second)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self._lock = threading.Lock()
        self._version: str | None = None
        self._json = b""

    def data(self) -> bytes:
        with self._lock:
            v = model_version(self.run_dir)
            if v != self._version:
                try:
                    self._json = model_json(page_model(self.run_dir)).encode()
                except ValueError:
                    # A file mid-write (a CSV being replaced): keep serving the last good page.
                    if not self._json:
                        raise
                    return self._json
                self._version = v
            return self._json

    def html(self) -> bytes:
        return render_html(json.loads(self.data()), live=True).encode()


def make_server(run_dir: Path, host: str, port: int) -> ThreadingHTTPServer:
    """A read-only server of ``run_dir``'s page; ``OSError`` if the address is taken."""
    pages = _Pages(run_dir)
    js = plotly_js_path()

    class Handler(BaseHTTPRequestHandler):
        server_version = "eval.view"

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            path = urlsplit(self.path).path
            if path in ("/", "/report.html"):
                self._send(pages.html(), "text/html; charset=utf-8")
            elif path == "/data.json":
                self._send(pages.data(), "application/json")
            elif path == "/plotly.min.js":
                self._send(js.read_bytes(), "text/javascript; charset=utf-8", cache=True)
            else:
                self.send_error(HTTPStatus.NOT_FOUND, "the viewer serves /, /data.json and /plotly.min.js")

        def do_POST(self) -> None:  # noqa: N802
            self.send_error(HTTPStatus.METHOD_NOT_ALLOWED, "the viewer is read-only")

        do_PUT = do_DELETE = do_PATCH = do_POST

        def _send(self, body: bytes, ctype: str, *, cache: bool = False) -> None:
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "max-age=3600" if cache else "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # a poll a second would flood the terminal
            pass

    ThreadingHTTPServer.daemon_threads = True
    return ThreadingHTTPServer((host, port), Handler)


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m eval.view", description=(
        "See a run (the --out of programs.simulate or eval.compare) in the browser: serve its page on "
        "127.0.0.1 and follow it while it runs, or write report.html with --html."))
    p.add_argument("run_dir", help="the run's directory (its --out)")
    p.add_argument("--html", action="store_true", help="write RUN_DIR/report.html (and plotly.min.js) and exit")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to serve on (default {DEFAULT_PORT}; 0: any free)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1, this machine only; the viewer is read-only)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if not 0 <= args.port <= 65535:
            raise ConfigError(f"--port={args.port}: must be in 0..65535")
        kind = run_kind(args.run_dir)
        if args.html:
            print("wrote " + ", ".join(str(p) for p in write_html(args.run_dir)))
            return 0
    except ConfigError as exc:
        print(f"eval.view: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        server = make_server(Path(args.run_dir), args.host, args.port)
    except OSError as exc:
        why = "is in use; pass another --port" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        print(f"eval.view: --port={args.port} on {args.host}: {why}", file=sys.stderr)
        return EXIT_CONFIG
    host, port = server.server_address[:2]
    try:  # from the printed address on: a Ctrl-C right after it is a clean stop too
        print(f"eval.view: {kind} in {args.run_dir} at http://{host}:{port}/ (read-only; Ctrl-C stops)", flush=True)
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        print("eval.view: stopped", file=sys.stderr)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
