"""``python -m programs.serve``: the offline engine behind the OpenAI protocol (``programs.lm.server``)."""

from programs.lm.server import main

if __name__ == "__main__":  # pragma: no cover
    main()
