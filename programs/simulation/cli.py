"""Command line: run one simulation and write its run directory.

    python -m programs.simulate --agents 100 --years 5 --steps-per-year 25 --scenario rational \\
        --workers llm --lm offline --seed 0 --out results/run1 [--resume]

Writes ``DIR/config.json``, ``DIR/steps.jsonl`` (one line per step: schedule, hours, utilities, welfare,
fallbacks) and ``DIR/summary.json``. ``--resume`` continues a stopped run in ``DIR`` (only ``--years``
and ``--concurrency`` may change). A new run refuses an ``--out`` that already holds files (another
run's) unless ``--overwrite``. Tax years are numbered from 0 (year 0 runs the initial schedule). A bad setting exits with status 2 and one line naming it, before
any LM call; so does an ``--api-base`` that does not answer ``GET /models`` (the pre-flight). Keys are
read from the environment only (e.g. OPENAI_API_KEY) and never written.

A served model (``--lm openai/NAME --api-base http://HOST:PORT/v1``, repeatable to spread agents over
several servers) gets at most ``--concurrency`` requests in flight per endpoint; a failed request (429,
5xx, timeout, broken or non-JSON reply) is retried ``--num-retries`` times with doubling back-off from
``--retry-backoff`` seconds (or the server's Retry-After), then the agent falls back to its last valid
action. Every step's requests, retries and errors are logged and summed in ``summary.json["requests"]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from collections.abc import Sequence

from economy import PRESETS, SWFS, parse_kappa
from programs.cli import (EXIT_FALLBACKS, EXIT_INTERRUPTED, OVERWRITE_HELP, YEARS_NOTE, DefaultsOnceFormatter, OneLineParser,
                          add_answer_args, add_fallback_args, add_price_args, check_out_dir, check_program_file,
                          lm_interrupted, usage_line)
from programs.lm import (  # the programs package keeps LiteLLM off the network (programs/__init__.py)
    OFFLINE,
    ConfigError,
    build_lms,
    check_lm_config,
    describe_lm,
)
from programs.lm.backends import backend_settings
from programs.lm.models import lm_record, probe_lm
from programs.lm.cost import check_prices, estimate_cost
from programs.lm.reasoning import reasoning_plan
from programs.lm.structured import structured_summary
from programs.redact import redact, redact_logs
from programs.simulation import RESUMABLE_CHANGES, Simulation, load_config
from programs.simulation.guard import FallbackStop, make_guard
from programs.simulation.page import write_html


#: The LM-written personas of a ``--personas lm`` run, beside its run log (reused on --resume).
PERSONAS = "personas.json"

def parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m programs.simulate", description=__doc__.split("\n\n")[0],
                      formatter_class=DefaultsOnceFormatter, epilog=YEARS_NOTE + ".")
    g = p.add_argument_group("economy")
    g.add_argument("--agents", type=int, default=100, help="number of workers")
    g.add_argument("--years", type=int, default=5, help="tax years")
    g.add_argument("--steps-per-year", type=int, default=25, help="worker steps per tax year")
    g.add_argument("--scenario", default="rational", help="rational | bounded | democratic")
    g.add_argument("--workers", default="llm", help="llm (LM agents) | rational (exact best response)")
    g.add_argument("--personas", default="template",
                   help="template (a sentence from the census cell) | lm (written by the LM from the census "
                        "attributes once before step 0, stored in the run directory and reused on --resume)")
    g.add_argument("--brackets", default="us_federal_2024", help=f"bracket preset: {', '.join(sorted(PRESETS))}")
    g.add_argument("--initial-rates", type=float, nargs="+", default=None, metavar="PCT",
                   help="marginal rates in percent for tax year 0, one per bracket (default: the preset's)")
    g.add_argument("--swf", default="inverse_skill", help=f"social welfare function: {', '.join(SWFS)}")
    g.add_argument("--kappa", type=parse_kappa, default="calibrated", help="labor cost: calibrated | paper | number")
    g.add_argument("--skill-floor", default="min_wage", metavar="V",
                   help="floor on the skill in the inverse_skill/paper welfare weights, $/year per weekly hour: a "
                        "number >= 0, min_wage (default: FLSA $7.25/h x 52 = 377, a full-time $15,080/yr) or none (= 0, "
                        "raw weights)")
    g.add_argument("--utility-mix", nargs=3, type=float, default=None, metavar=("EGO", "ALT", "ADV"),
                   help="shares of egotistical, altruistic, adversarial workers (default: all egotistical)")
    g.add_argument("--seed", type=int, default=0,
                   help="seed of the population, the elections and the offline engine: same seed, same results")
    a = p.add_argument_group("agents")
    a.add_argument("--module", dest="module_type", default="predict", help="predict | cot")
    a.add_argument("--history-len", type=int, default=5, help="recent steps/years shown in prompts")
    a.add_argument("--best-k", type=int, default=3, help="best past entries shown in prompts")
    a.add_argument("--election-every", type=int, default=2, help="years between elections (democratic)")
    a.add_argument("--candidates", dest="n_candidates", type=int, default=3, help="candidates per election")
    a.add_argument("--voting", default="plurality", help="plurality | irv")
    a.add_argument("--planner", default=None, metavar="JSON", help="a saved/compiled PlannerAgent program")
    m = p.add_argument_group("language model")
    m.add_argument("--lm", default=None, help="offline (the offline engine, not a language model) | local | "
                   "local:PATH.gguf (a GGUF model run in-process by llama.cpp; pip install -e \".[local]\") | "
                   "provider/model (DSPy/LiteLLM model string); default offline, or with --resume the LM the run "
                   "started with")
    m.add_argument("--api-base", action="append", default=None, metavar="URL",
                   help="OpenAI-compatible endpoint; repeat to spread agents over several")
    m.add_argument("--temperature", type=float, default=0.7, help="LM sampling temperature, in [0, 2]")
    m.add_argument("--concurrency", type=int, default=8, help="LM requests in flight per endpoint")
    m.add_argument("--num-retries", type=int, default=3, help="retries of a failed request (429, 5xx, timeout, "
                   "broken or non-JSON reply) before the agent falls back to its last valid action")
    m.add_argument("--retry-backoff", type=float, default=1.0, metavar="S",
                   help="first back-off in seconds, doubling per retry (a server's Retry-After wins)")
    m.add_argument("--timeout", type=float, default=60.0,
                   help="seconds to wait for the server's next byte (per attempt)")
    m.add_argument("--no-cache", action="store_true", help="do not use DSPy's response cache for a served model")
    add_answer_args(m)
    add_fallback_args(m)
    add_price_args(m)
    o = p.add_argument_group("output")
    o.add_argument("--out", default="results/simulate", help="run directory")
    o.add_argument("--resume", action="store_true", help="continue the stopped run in --out, with the LM it "
                   "started with (read from its config.json)")
    o.add_argument("--switch-lm", action="store_true", help="with --resume: continue with the --lm/--api-base "
                   "given although they differ from the run's (the switch is recorded in config.json)")
    o.add_argument("--overwrite", action="store_true", help=f"replace what --out holds; {OVERWRITE_HELP}")
    o.add_argument("--no-progress", action="store_true", help="no progress bar")
    o.add_argument("--dry-run", action="store_true", help="print the LM answers by role and the estimated tokens "
                   "of this configuration, then exit 0 without building or calling any LM or writing anything")
    return p


def _fail(message: str) -> int:
    print(f"error: {redact(message)}", file=sys.stderr)
    return 2


def _resolve_lm(args) -> dict | None:
    """Fill ``args.lm``/``args.api_base``; on ``--resume``, from the run unless a switch is asked for.

    Returns the switch to record (from, to) or None. Raises ConfigError on an unrequested change.
    """
    from programs.simulation.runlog import read_run_config

    if args.switch_lm and not args.resume:
        raise ConfigError("--switch-lm only applies with --resume")
    if not args.resume:
        args.lm = OFFLINE if args.lm is None else args.lm
        return None
    stored = read_run_config(args.out).get("lm_settings") or {}
    if args.reasoning_effort is None and isinstance(stored.get("reasoning"), dict):
        args.reasoning_effort = stored["reasoning"].get("effort")  # the run keeps its effort
    if not stored:  # a log from before LM settings were recorded: the user must say which LM
        if args.lm is None:
            raise ConfigError(f"--resume: {args.out}/config.json does not record the run's LM; pass the --lm "
                              "(and --api-base) it started with")
        return None
    was = {"lm": stored.get("lm", OFFLINE), "api_base": stored.get("api_base") or None}
    given = {"lm": args.lm, "api_base": args.api_base}
    if given["lm"] is None and given["api_base"] is None:
        args.lm, args.api_base = was["lm"], was["api_base"]
        return None
    now = {"lm": given["lm"] or was["lm"], "api_base": given["api_base"] or None}
    same = now["lm"] == was["lm"] and [redact(b) for b in now["api_base"] or []] == (was["api_base"] or [])
    args.lm, args.api_base = now["lm"], now["api_base"]
    if same:
        return None
    if not args.switch_lm:
        raise ConfigError(f"--resume: --lm {now['lm']!r} / --api-base {now['api_base']} differ from the run's "
                          f"{was['lm']!r} / {was['api_base']}; omit them to continue with the run's LM, or add "
                          "--switch-lm to change it (recorded in config.json)")
    return {"from": was, "to": {"lm": now["lm"], "api_base": [redact(b) for b in now["api_base"] or []]}}


def _lm_settings(args) -> dict:
    """What identifies the run's LM, without secrets (URLs redacted; keys are never read here): the
    temperature it runs at (1.0 for a reasoning model under OpenAI's rule), for a reasoning model its effort
    (``programs.lm.reasoning``), and its backend's own settings as this machine resolved them (``--lm local``:
    window, threads, GPU layers, weight repacking and why)."""
    plan = reasoning_plan(args.lm, args.api_base, args.reasoning_effort)
    out = {"lm": args.lm, "api_base": [redact(b) for b in args.api_base or []] or None,
           "temperature": plan.temperature(args.temperature)}
    if plan.reasons:
        out["reasoning"] = plan.to_dict()
    own = lm_record(args.lm, backend_settings(args))
    if own is not None:
        out["backend"] = own
    return out


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    redact_logs()
    args = parser().parse_args(argv)
    args.argv = argv
    try:
        switch = _resolve_lm(args)
    except ConfigError as exc:
        return _fail(str(exc))
    mix = None
    if args.utility_mix is not None:
        mix = dict(zip(("egotistical", "altruistic", "adversarial"), args.utility_mix))
    try:
        cfg = load_config(agents=args.agents, years=args.years, steps_per_year=args.steps_per_year,
                          scenario=args.scenario, workers=args.workers, personas=args.personas,
                          brackets=args.brackets,
                          initial_rates=args.initial_rates, swf=args.swf, kappa=args.kappa, utility_mix=mix,
                          skill_floor=args.skill_floor,
                          history_len=args.history_len, best_k=args.best_k, seed=args.seed,
                          election_every=args.election_every, n_candidates=args.n_candidates,
                          voting=args.voting, module_type=args.module_type, temperature=args.temperature,
                          concurrency=args.concurrency)
        check_lm_config(args.lm, args.api_base, temperature=args.temperature, concurrency=args.concurrency,
                        num_retries=args.num_retries, timeout=args.timeout, retry_backoff=args.retry_backoff,
                        structured=args.structured, max_tokens=args.max_tokens, settings=backend_settings(args),
                        reasoning_effort=args.reasoning_effort)
        guard = make_guard(args)
        check_prices(args.price_in, args.price_out)
    except ConfigError as exc:
        return _fail(str(exc))
    if args.dry_run:
        from programs.simulation.dryrun import calls_by_role, dry_run
        from programs.simulation.scenarios import scenario_class

        plan = dry_run(calls_by_role(cfg), module_type=cfg.module_type, max_tokens=args.max_tokens,
                       n_brackets=len(cfg.initial_tax_schedule().rates),
                       at_least=scenario_class(cfg.scenario).calls_at_least(cfg),
                       reasoning=reasoning_plan(args.lm, args.api_base, args.reasoning_effort))
        for line in plan.lines(f"{cfg.years} tax years x {cfg.steps_per_year} steps, {cfg.agents} agents, "
                               f"scenario {cfg.scenario}, workers {cfg.workers}"):
            print(line)
        print(plan.cost_line(args.lm, args.api_base, args.price_in, args.price_out))
        return 0
    if args.planner is not None:
        try:
            check_program_file(args.planner, "planner")
        except ConfigError as exc:
            return _fail(str(exc))
    try:
        # The run directory before any work: a file, an unwritable path or another run's files are one line.
        if args.resume:
            check_out_dir(args.out, overwrite=True, create=False)
        elif not (os.path.isfile(os.path.join(args.out, "steps.jsonl")) and not args.overwrite):
            check_out_dir(args.out, overwrite=args.overwrite, create=False)
        else:
            from programs.simulation.runlog import RunLog

            RunLog.check_new(args.out, overwrite=args.overwrite)
    except ConfigError as exc:
        return _fail(str(exc))
    try:
        # Pre-flight last (it touches the network or loads a model): an unreachable server or a model that
        # crashes llama.cpp is one line now, and the run directory is made only after the LMs are built.
        probe_lm(args.lm, args.api_base, timeout=min(args.timeout, 5.0), settings=backend_settings(args))
        lms = build_lms(args.lm, args.api_base, temperature=args.temperature, seed=args.seed,
                        concurrency=args.concurrency, num_retries=args.num_retries, timeout=args.timeout,
                        retry_backoff=args.retry_backoff, cache=False if args.no_cache else None,
                        structured=args.structured, max_tokens=args.max_tokens, settings=backend_settings(args),
                        reasoning_effort=args.reasoning_effort)
    except ConfigError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return lm_interrupted()
    reasoning = reasoning_plan(args.lm, args.api_base, args.reasoning_effort)
    label = describe_lm(args.lm, args.api_base, temperature=reasoning.temperature(args.temperature))
    if reasoning.reasons:
        label += f", {reasoning.describe()}"

    from programs.simulation.runlog import RunLog

    try:
        if args.resume:
            log, records = RunLog.open_resume(args.out, cfg.model_dump(), lm=label, resumable=RESUMABLE_CHANGES,
                                              lm_settings=_lm_settings(args), lm_switch=switch)
        else:
            log, records = RunLog.create(args.out, cfg.model_dump(), lm=label, lm_settings=_lm_settings(args),
                                         overwrite=args.overwrite), []
    except ConfigError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"out={args.out!r}: {exc.strerror or exc}")
    if len(records) > cfg.total_steps:
        log.close()
        return _fail(f"years={cfg.years}: the log in {args.out} already holds {len(records)} steps, more than "
                     f"{cfg.total_steps} = years x steps-per-year")

    print(f"LM: {label}")
    planner = None
    if args.planner is not None:
        from programs.agents.tax_planner import PlannerAgent

        try:
            planner = PlannerAgent.load(args.planner, history_len=cfg.history_len, best_k=cfg.best_k)
        except (ValueError, KeyError, OSError) as exc:
            log.close()
            return _fail(f"planner={args.planner!r}: {exc}")
    personas_path = os.path.join(args.out, PERSONAS)
    stored = None
    if cfg.personas == "lm" and args.resume:
        from programs.agents.persona import PersonaSet

        try:
            with open(personas_path, encoding="utf-8") as f:
                stored = PersonaSet.model_validate_json(f.read())
        except (OSError, ValueError) as exc:
            log.close()
            return _fail(f"personas=lm: the run's {PERSONAS} cannot be read ({' '.join(str(exc).split())[:120]}); "
                         "the LM-written personas are part of the run")
    try:
        sim = Simulation(cfg, lms=lms, planner=planner, personas=stored)
    except ConfigError as exc:
        log.close()
        return _fail(str(exc))
    if sim.persona_set is not None and stored is None:
        from programs.simulation.runlog import write_atomic

        write_atomic(Path(personas_path), sim.persona_set.model_dump_json(indent=2) + "\n")
        print(f"personas: written by the LM ({cfg.agents} answers; fallbacks to the template: "
              f"{sim.persona_set.fallbacks or 'none'}), stored in {personas_path}")
    try:
        if records:
            sim.replay(records)
            print(f"resumed at step {sim.t} of {cfg.total_steps} (tax year {sim.year}, counted from 0)")
        t0 = time.perf_counter()
        summary = sim.run(progress=not args.no_progress, log=log, guard=guard)
        dt = time.perf_counter() - t0
        answers = structured_summary(lms)
        if answers is not None:
            # How the real model's answers came back in this process (structured or plain, truncated, cached);
            # the tokens are the run's usage (one total, over every logged step).
            summary = summary.model_copy(update={"answers": answers})
        summary = _with_cost(summary, args)
        log.write_summary(summary)
        write_html(args.out)  # report.html (programs.page), built from the files the run wrote
    except FallbackStop as stop:
        print(stop.line(_resume_command(args)), file=sys.stderr)
        return EXIT_FALLBACKS
    except ValueError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        print(f"\ninterrupted: {log.n_steps} of {cfg.total_steps} steps are saved in {args.out}/steps.jsonl; "
              f"resume with: {_resume_command(args)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        log.close()
        sim.close()
    _report(summary.model_dump(), args.out, dt)
    return 0


def _with_cost(summary, args: argparse.Namespace):
    """The summary with its usage's estimated cost (``programs.lm.cost``: prices given, LiteLLM's, or unknown)."""
    if summary.usage is None:
        return summary
    cost = estimate_cost(summary.usage.total.model_dump(), args.lm, args.api_base, price_in=args.price_in,
                         price_out=args.price_out, tokens_estimated=summary.usage.source == "estimated")
    return summary.model_copy(update={"usage": summary.usage.model_copy(update={"cost": cost})})


def _resume_command(args: argparse.Namespace) -> str:
    """The command that continues this run: the command line it started with (every setting a resume must
    keep), without --overwrite/--switch-lm, with --resume; credentials redacted (give them again)."""
    import shlex

    words = [w for w in args.argv if w not in ("--overwrite", "--switch-lm", "--resume")]
    return redact(shlex.join(["python", "-m", "programs.simulate", *words, "--resume"]))


def _report(s: dict, out: str, seconds: float) -> None:
    def fmt(xs: list) -> str:
        return ", ".join("-" if x is None else f"{x:.4g}" for x in xs)

    print(f"welfare by tax year (years 0..{len(s['welfare_by_year']) - 1}): {fmt(s['welfare_by_year'])}")
    print(f"median |hours - best response| after the first / last step of each year: "
          f"{fmt(s['gap_median_first_by_year'])} / {fmt(s['gap_median_last_by_year'])}")
    print(f"final rates (%): {fmt(s['final']['rates_percent'])}")
    print(f"fallbacks: {s['fallbacks'] or 'none'}")
    a = s.get("answers")
    if a:
        how = f"{a.get('structured', 0)} structured, {a.get('plain', 0)} plain"
        if a["backed_off"]:
            how += f" (server rejected the schema: {'; '.join(a['reasons'])})"
        print(f"answers this session ({a['mode']} structured output): {how}; {a.get('truncated', 0)} truncated; "
              f"{a.get('cached', 0)} replayed from DSPy's cache")
    line = usage_line(s.get("usage"))
    if line:
        print(line)
    r = s.get("requests")
    if r:
        errors = ", ".join(f"{k} {v}" for k, v in r["errors"].items()) or "none"
        print(f"requests: {r['calls']} LM calls, {r['attempts']} attempts, {r['retries']} retries "
              f"({r['backoff_s']:.1f} s backing off), {r['failed']} failed after retries; errors: {errors}; "
              f"at most {r['max_in_flight']} in flight per endpoint")
    print(f"wrote {out}/config.json, steps.jsonl, summary.json, report.html, plotly.min.js ({seconds:.1f} s)")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
