"""``python -m programs.simulate``: run one simulation (the code is ``programs.simulation.cli``)."""

from programs.simulation.cli import main

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
