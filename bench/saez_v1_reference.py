"""Regenerate ``tests/economy/test_saez_v1.py``'s fixtures from the earlier implementation's own code.

    python bench/saez_v1_reference.py [--reference DIR]

DIR is a checkout of llm-economist-v1 (MIT; default ``../shared/reference/llm-economist-v1`` beside this
repository, then ``/work/shared/reference/llm-economist-v1``). Nothing of it is copied here: the script
loads ``llm_economist/utils/{common,bracket}.py`` from DIR and executes the body of
``FixedTaxPlanner.__init__`` (``llm_economist/agents/planner.py``) as written there, after its
``super().__init__`` call, with ``skills = [float(s) for s in Population.sample(n, seed=0).skill]``
(potential income / 40, as main.py:53) and ``args.elasticity`` the ``--elasticity`` default ``[0.4]``.
Where that default makes the reference raise (``SAEZ_FLAT`` on 3 or 7 brackets), the fixture is the
reference's output with ``--elasticity 0.4`` given once per bracket, as the test's table notes.

It prints the three tables of the test (rates in percent, as the reference returns them). The test does
not need DIR: it checks ``economy.saez_v1`` against these numbers and against the reference's formulas
written out there. Last run 2026-11-28 (numpy 2.4.6, scipy 1.17.1); re-run after a change of
``Population.sample`` (the test's skill-sum check fails first).
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import os
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from economy.population import Population  # noqa: E402

SETTINGS = {"three": "three", "us_federal_2024": "US_FED", "flat": "flat"}  # our preset -> the reference's
VARIANTS = {"saez": "SAEZ", "saez_flat": "SAEZ_FLAT", "saez_three": "SAEZ_THREE"}
N_AGENTS = (1000, 10000)


def _load(path: Path, name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _init_body(planner_py: Path) -> types.CodeType:
    """``FixedTaxPlanner.__init__``'s statements after ``super().__init__(...)``, compiled as written."""
    tree = ast.parse(planner_py.read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "FixedTaxPlanner")
    init = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    body = [s for s in init.body if "super()" not in ast.unparse(s)]
    return compile(ast.Module(body=body, type_ignores=[]), str(planner_py), "exec")


def reference_rates(ref: Path, n: int, setting: str, tax_type: str, elasticity: list[float]) -> list[float]:
    """The reference's ``FixedTaxPlanner(tax_type).tax_rates`` for ``n`` agents (seed 0)."""
    common = _load(ref / "llm_economist/utils/common.py", "v1_common")
    bracket = _load(ref / "llm_economist/utils/bracket.py", "v1_bracket")
    skills = [float(s) for s in Population.sample(n, seed=0).skill]
    self = types.SimpleNamespace(bracket_setting=setting)
    scope = {"self": self, "tax_type": tax_type, "args": types.SimpleNamespace(elasticity=elasticity),
             "skills": skills, "get_brackets": bracket.get_brackets, "get_num_brackets": bracket.get_num_brackets,
             "saez_optimal_tax_rates": common.saez_optimal_tax_rates}
    exec(_init_body(ref / "llm_economist/agents/planner.py"), scope)  # noqa: S102 - the reference's own code
    return [float(r) for r in self.tax_rates]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = next((d for d in (ROOT.parent / "shared/reference/llm-economist-v1",
                                Path("/work/shared/reference/llm-economist-v1")) if d.is_dir()), None)
    p.add_argument("--reference", type=Path, default=default, help="a checkout of llm-economist-v1")
    a = p.parse_args()
    if a.reference is None or not (a.reference / "llm_economist").is_dir():
        p.error("--reference must name a checkout of llm-economist-v1")
    print("REFERENCE_RATES = {")
    for n in N_AGENTS:
        for ours, setting in (("three", "three"), ("us_federal_2024", "US_FED")):
            k = 3 if setting == "three" else 7
            for variant, tax_type in VARIANTS.items():
                try:
                    rates = reference_rates(a.reference, n, setting, tax_type, [0.4])
                    note = ""
                except ValueError:
                    if variant != "saez_flat":
                        continue  # saez_three on 7 brackets: the reference raises, and so does saez_v1
                    rates = reference_rates(a.reference, n, setting, tax_type, [0.4] * k)
                    note = f"  # --elasticity {' '.join(['0.4'] * k)}"
                print(f"    ({n}, {ours!r}, {variant!r}): {rates},{note}")
    print("}")
    flat = {n: reference_rates(a.reference, n, "flat", "SAEZ", [0.4])[0] for n in N_AGENTS}
    print(f"REFERENCE_FLAT = {flat}")
    print(f"SKILL_SUM = { {n: float(Population.sample(n, seed=0).skill.sum()) for n in N_AGENTS} }")
    print(f"# numpy {sys.modules['numpy'].__version__}, scipy {__import__('scipy').__version__}, "
          f"reference {os.path.relpath(a.reference)}")


if __name__ == "__main__":
    main()
