"""Prefix reuse and forced answer prefixes of ``--lm local`` (``programs.lm.llama_prefix``), on a fake
context: which prefix is restored, what is evicted, what the grammar admits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from programs.errors import ConfigError
from programs.lm.llama_prefix import (
    DEFAULT_PREFIX_MB,
    PREFIX_ENV,
    PrefixCache,
    PrefixReuse,
    SlotMask,
    answer_plan,
    common_prefix,
    prefix_bytes,
)


class FakeKV:
    """A context whose state is its token list (4 bytes a token, like a tiny KV cache)."""

    def __init__(self) -> None:
        self.tokens = np.zeros(0, dtype=np.int32)
        self.restores: list[list[int]] = []

    def live(self) -> np.ndarray:
        return self.tokens

    def save(self) -> bytes:
        return self.tokens.tobytes()

    def restore(self, tokens: np.ndarray, state: bytes) -> None:
        assert np.frombuffer(state, dtype=np.int32).tolist() == list(tokens)  # a state is its own tokens
        self.tokens = np.asarray(tokens, dtype=np.int32).copy()
        self.restores.append(list(tokens))

    def run(self, reuse: PrefixReuse, prompt: list[int]) -> int:
        """One call: prepare, 'evaluate' the prompt plus one generated token, remember."""
        n = reuse.prepare(prompt)
        self.tokens = np.asarray(prompt + [999], dtype=np.int32)
        reuse.remember()
        return n


def test_common_prefix():
    a = np.array([1, 2, 3, 4])
    assert common_prefix(a, np.array([1, 2, 9])) == 2
    assert common_prefix(a, np.array([1, 2])) == 2
    assert common_prefix(a, a) == 4
    assert common_prefix(a, np.array([7])) == 0
    assert common_prefix(a, np.array([], dtype=int)) == 0


def test_longest_prefix_wins_and_ties_go_to_the_most_recent():
    c = PrefixCache(1 << 20)
    k1 = c.put([1, 2, 3, 4], b"a")
    k2 = c.put([1, 2, 5], b"b")
    assert c.best(np.array([1, 2, 3, 9])) == (k1, 3)
    assert c.best(np.array([1, 2, 5, 6])) == (k2, 3)
    assert c.best(np.array([1, 2, 7])) == (k2, 2)  # both share 2: the more recent
    c.get(k1)
    assert c.best(np.array([1, 2, 7])) == (k1, 2)  # now k1 is the more recent
    assert c.best(np.array([8])) == (None, 0)


def test_the_bound_evicts_least_recently_used_first():
    c = PrefixCache(max_bytes=10)
    a = c.put([1], b"xxxx")
    b = c.put([2], b"xxxx")
    c.get(a)  # a used after b: b is now the least recently used
    d = c.put([3], b"xxxx")
    assert c.nbytes == 8 and len(c) == 2 and c.evictions == 1
    assert c.best(np.array([2]))[0] is None
    assert c.best(np.array([1]))[0] == a and c.best(np.array([3]))[0] == d
    assert c.put([4], b"x" * 11) is None and len(c) == 2  # larger than the bound: not kept, nothing lost
    with pytest.raises(ValueError):
        PrefixCache(-1)


def test_an_entry_that_is_a_prefix_of_a_newer_one_is_dropped():
    c = PrefixCache(1 << 20)
    c.put([1, 2], b"ab")
    c.put([1, 3], b"cd")
    k = c.put([1, 2, 3], b"efg")
    assert len(c) == 2 and c.nbytes == 5
    assert c.best(np.array([1, 2]))[0] == k


def test_reuse_restores_an_agents_previous_prompt_and_evaluates_only_the_rest():
    kv = FakeKV()
    reuse = PrefixReuse(kv, max_bytes=1 << 20)
    system = list(range(100))
    a1, b1 = system + [500, 501, 1], system + [600, 601, 1]
    a2 = system + [500, 501, 2, 3]  # agent a's next prompt
    assert kv.run(reuse, a1) == 0
    assert kv.run(reuse, b1) == 100  # the context holds a1: the shared instructions
    assert kv.restores == []
    assert kv.run(reuse, a2) == 102  # a1 restored from the cache: beats b1's 100 in the context
    assert kv.restores[-1] == a1 + [999]
    # The whole prompt known: its last token is still evaluated (its logits are sampled).
    assert kv.run(reuse, a2) == len(a2) - 1


def test_without_reuse_every_prompt_is_evaluated_in_full():
    kv = FakeKV()
    reuse = PrefixReuse(kv, max_bytes=0)
    assert kv.run(reuse, [1, 2, 3]) == 0
    assert kv.run(reuse, [1, 2, 3]) == 0 and kv.restores[-1] == []
    assert len(reuse.cache) == 0


def test_the_bound_comes_from_the_environment():
    assert prefix_bytes({}) == DEFAULT_PREFIX_MB << 20
    assert prefix_bytes({PREFIX_ENV: "0"}) == 0
    assert prefix_bytes({PREFIX_ENV: " 64 "}) == 64 << 20
    for bad in ("-1", "lots", "1.5"):
        with pytest.raises(ConfigError, match=PREFIX_ENV):
            prefix_bytes({PREFIX_ENV: bad})


# ───────────────────────────── forced answer prefix ─────────────────────────────

llama_grammar = pytest.importorskip("llama_cpp.llama_grammar")


def _schema(props: dict) -> dict:
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


HOURS = _schema({"hours": {"type": "integer", "enum": list(range(101))}})


def _accepts(grammar: str, text: str) -> bool:
    """Whether the GBNF ``grammar`` generates exactly ``text`` (a small backtracking matcher over the
    subset llama-cpp-python's converter emits for these schemas: literals, alternatives, groups, ?, *, +)."""
    import re

    rules: dict[str, str] = {}
    for line in grammar.strip().splitlines():
        name, _, body = line.partition("::=")
        rules[name.strip()] = body.strip()
    tok = re.compile(r'\s*("(?:\\.|[^"\\])*"|\[(?:\\.|[^\]\\])*\]|[()|?*+]|\{\d*,?\d*\}|[\w-]+)')

    def lex(body: str) -> list[str]:
        out, i = [], 0
        while i < len(body):
            m = tok.match(body, i)
            if not m:
                break
            out.append(m.group(1))
            i = m.end()
        return out

    def parse_alt(ts, i):
        seqs, seq = [], []
        while i < len(ts) and ts[i] != ")":
            if ts[i] == "|":
                seqs.append(seq)
                seq, i = [], i + 1
                continue
            if ts[i] == "(":
                node, i = parse_alt(ts, i + 1)
                i += 1
            else:
                node, i = ts[i], i + 1
            while i < len(ts) and (ts[i] in "?*+" or ts[i].startswith("{")):
                node, i = ("rep", node, ts[i]), i + 1
            seq.append(node)
        seqs.append(seq)
        return ("alt", seqs), i

    trees = {n: parse_alt(lex(b), 0)[0] for n, b in rules.items()}

    def match(node, s, pos):  # yields end positions
        if isinstance(node, tuple) and node[0] == "alt":
            for seq in node[1]:
                yield from seq_match(seq, s, pos)
        elif isinstance(node, tuple) and node[0] == "rep":
            _, inner, op = node
            lo, hi = {"?": (0, 1), "*": (0, 10**6), "+": (1, 10**6)}.get(op, (None, None))
            if lo is None:
                a, _, b = op[1:-1].partition(",")
                lo = int(a or 0)
                hi = int(b) if b else (lo if "," not in op else 10**6)

            def rep(p, k):
                if k >= lo:
                    yield p
                if k < hi:
                    for q in match(inner, s, p):
                        if q != p:
                            yield from rep(q, k + 1)
            yield from rep(pos, 0)
        elif node.startswith('"'):
            lit = json.loads(node)
            if s.startswith(lit, pos):
                yield pos + len(lit)
        elif node.startswith("["):
            if pos < len(s) and re.fullmatch(node, s[pos]):
                yield pos + 1
        else:
            yield from match(trees[node], s, pos)

    def seq_match(seq, s, pos):
        if not seq:
            yield pos
            return
        for p in match(seq[0], s, pos):
            yield from seq_match(seq[1:], s, p)

    return any(end == len(text) for end in match(trees["root"], text, 0))


def test_a_single_number_answer_is_its_value_and_the_closing_brace():
    plan = answer_plan(HOURS)
    assert plan.prefix == '{"hours": ' and plan.stop == "}"
    for rest in ("38}", "100}", "0}"):
        assert _accepts(plan.grammar, rest), rest
        assert json.loads(plan.prefix + rest)["hours"] in range(101)
    for bad in ("101}", "38", '"38"}', "38, \"x\": 1}", "-1}"):
        assert not _accepts(plan.grammar, bad), bad


@pytest.mark.parametrize("schema, rests", [
    (HOURS, ["38}", "100}", "0 }", "101}", "7"]),
    (_schema({"satisfied": {"type": "boolean"}, "hours": {"type": "integer", "enum": [1, 2]}}),
     ['true, "hours": 2}', 'false,"hours":1}', 'true, "hours": 3}', 'true}']),
])
def test_the_plan_admits_exactly_what_the_whole_schema_admits_after_its_prefix(schema, rests):
    whole = llama_grammar.json_schema_to_gbnf(json.dumps(schema))
    plan = answer_plan(schema)
    assert _accepts(whole, plan.prefix + "0}") == _accepts(plan.grammar, "0}")
    for rest in rests:
        assert _accepts(plan.grammar, rest) == _accepts(whole, plan.prefix + rest), rest


def test_every_field_after_the_first_keeps_its_name_and_rules():
    schema = _schema({"reasoning": {"type": "string", "maxLength": 20},
                      "candidate": {"type": "string", "enum": ["Ada", "Bo"]}})
    plan = answer_plan(schema)
    assert plan.prefix == '{"reasoning": ' and plan.stop is None  # a string may hold "}"
    assert _accepts(plan.grammar, '"short}", "candidate": "Bo"}')
    assert not _accepts(plan.grammar, '"short", "candidate": "Cy"}')
    assert not _accepts(plan.grammar, '"short"}')


def test_arrays_and_booleans_keep_their_bounds():
    rates = _schema({"rates_percent": {"type": "array", "items": {"type": "integer", "enum": list(range(101))},
                                       "minItems": 2, "maxItems": 2}})
    plan = answer_plan(rates)
    assert plan.stop == "}" and _accepts(plan.grammar, "[10, 20]}") and not _accepts(plan.grammar, "[10]}")
    yes = answer_plan(_schema({"satisfied": {"type": "boolean"}}))
    assert _accepts(yes.grammar, "true}") and not _accepts(yes.grammar, "yes}")


def test_schemas_that_are_not_a_closed_object_are_sent_whole():
    assert answer_plan({"type": "integer"}) is None
    assert answer_plan({"type": "object", "properties": {"a": {"type": "integer"}}}) is None  # a optional
    open_obj = _schema({"a": {"type": "integer"}})
    del open_obj["additionalProperties"]
    assert answer_plan(open_obj) is None
    assert answer_plan(_schema({})) is None


# ── the slot mask: the grammar's tokens without testing the grammar on the vocabulary ──

EOG = 0


def _mask_of(plan, extra_pieces=()):
    """A SlotMask over a toy vocabulary: every character of the language alone, a few multi-character pieces
    (tokens may span slots), and the end-of-generation token 0."""
    chars = sorted({c for alts in plan.slots for a in alts for c in a})
    pieces: dict[str, list[int]] = {}
    for text in [*chars, *extra_pieces]:
        pieces.setdefault(text, []).append(len(pieces) + 1)
    return SlotMask(plan.slots, pieces, [EOG]), {t: ids[0] for t, ids in pieces.items()}


def _mask_accepts(mask, ids, text: str) -> bool:
    """Whether the mask lets ``text`` be generated one character at a time and then end."""
    for k, ch in enumerate(text):
        if ch not in ids or ids[ch] not in mask.allowed(text[:k]):  # a character outside it: no such token
            return False
    return EOG in mask.allowed(text)


RATES2 = _schema({"rates_percent": {"type": "array", "items": {"type": "integer", "enum": list(range(101))},
                                    "minItems": 2, "maxItems": 2}})
VOTE = _schema({"candidate": {"type": "string", "enum": ["Ann Lee", "Bo"]}})
YES = _schema({"satisfied": {"type": "boolean"}})


@pytest.mark.parametrize("schema, texts", [
    (HOURS, ["38}", "100}", "0}", "0 }", "101}", "007}", "3}", "38", "}", "-1}"]),
    (RATES2, ["[10, 20]}", "[10,20]}", "[10 ,20]}", "[ 0, 100] }", "[10]}", "[10, 20, 30]}", "[101, 2]}",
              "[1,  2]}", "[1, 2]  }"]),
    (VOTE, ['"Bo"}', '"Ann Lee"}', '"Ann"}', '"Bo" }', 'Bo}', '"bo"}']),
    (YES, ["true}", "false }", "true  }", "yes}", "tru}"]),
])
def test_the_slot_mask_accepts_exactly_the_grammars_language(schema, texts):
    plan = answer_plan(schema)
    assert plan.slots is not None
    mask, ids = _mask_of(plan)
    for text in texts:
        assert _mask_accepts(mask, ids, text) == _accepts(plan.grammar, text), text


def test_the_slot_mask_lets_a_token_span_slots_and_offers_the_end_only_when_whole():
    plan = answer_plan(RATES2)
    mask, ids = _mask_of(plan, extra_pieces=[", ", "]}", "10", "0,", "x"])
    assert ids["10"] in mask.allowed("[") and ids["0,"] in mask.allowed("[1")
    assert ids[", "] in mask.allowed("[10") and ids["]}"] in mask.allowed("[10, 2")
    assert ids["]}"] not in mask.allowed("[10")  # one rate is not two
    assert ids["x"] not in mask.allowed("[")
    assert EOG not in mask.allowed("[10, 2]") and EOG in mask.allowed("[10, 2]}")
    assert mask.allowed("[10, 2]}").tolist() == [EOG]


def test_only_answers_of_finite_strings_get_a_slot_mask():
    assert answer_plan(HOURS).slots == (tuple(str(h) for h in range(101)), ("}",))
    assert answer_plan(_schema({"persona": {"type": "string", "maxLength": 40}})).slots is None
    two = _schema({"satisfied": {"type": "boolean"}, "hours": {"type": "integer", "enum": [1, 2]}})
    assert answer_plan(two).slots is None  # several fields: the grammar
    unbounded = _schema({"rates_percent": {"type": "array", "items": {"type": "integer", "enum": [1, 2]}}})
    assert answer_plan(unbounded).slots is None
