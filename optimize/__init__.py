"""Compile and tune the planner against simulated welfare: ``python -m optimize.planner`` (``docs/design.md`` §7).

Modules: ``situations`` (planner decision points from simulations), ``metric`` (welfare normalised by the
oracle), ``budget`` (LM-call budgets, the call counter and the hard cap), ``optimizers`` (the registered
DSPy optimizers, one module each), ``compile`` (running one by name), ``scores`` (paired intervals of the
held-out gain), ``tune`` (Optuna study over the numeric knobs), and the command line ``planner`` with its
parts (``args``, ``config``, ``run_compile``, ``run_tune``, ``report``, ``dryrun``, ``quiet``,
``outputs``, ``cli``).
"""
