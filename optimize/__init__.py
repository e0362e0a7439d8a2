"""Compile and tune the planner against simulated welfare: ``python -m optimize.planner`` (``docs/design.md`` §7).

Modules: ``situations`` (planner decision points from simulations), ``metric`` (welfare normalised by the
oracle), ``budget`` (LM-call budgets per optimizer and the call counter), ``writer`` (the rule-based
offline instruction writer), ``compile`` (DSPy optimizers by name), ``tune`` (Optuna study over the numeric
knobs), ``planner`` (the command line).
"""
