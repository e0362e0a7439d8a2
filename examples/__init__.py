"""Worked examples of reusing the project's signatures, agents and economy in other economic agents.

- ``examples.eitc``: the unchanged ``ChooseLabor`` worker under an earned-income credit (negative
  marginal rates over its phase-in), swept over credit rates against the exact best response.
- ``examples.household``: a new agent built from the same parts (a typed signature, a module, the batch
  runner, fallbacks, the run log, any LM), plugged into the simulation as a registered scenario.

Each runs offline by default (``python -m examples.<name>``) and with ``--lm`` on any model
``programs.lm.build_lms`` builds. ``examples.common`` holds their shared command-line pieces.
"""
