"""Policy decision throughput: room decisions as the rule set grows, and the reference policy.

Room rules are compiled into a segment trie (``ssoio/policy/rooms.py``) so that a decision
costs about the same with ten rules or ten thousand; this measures whether it does. Every
rule-set size answers the same query mix (allowed, denied by the rule's requirement, and
covered by no rule) for alice of the reference scenario, and every answer is checked
before it is timed, so a fast wrong policy cannot pass.

Run: ``.venv/bin/python benchmarks/policy_decisions.py [--repeat N] [--runs N]``
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ssoio.policy.decision import Decision
from ssoio.policy.engine import Policy
from ssoio.policy.principal import Principal
from ssoio.process import GC_THRESHOLDS, tune_garbage_collector
from ssoio.settings import load_settings, validate_raw

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "ssoio.example.toml"
RULE_COUNTS = (10, 1_000, 10_000)
TARGET_GROWTH = 2.0  # the 10,000-rule case may cost at most this times the 10-rule case
TARGET_REFERENCE_RATE = 200_000  # room decisions per second under the reference policy

ISSUER: dict[str, Any] = {
    "name": "bench",
    "issuer": "https://idp.bench",
    "audiences": ["ssoio-api"],
    "claims": {"preset": "keycloak", "attributes": {"tenant": "tenant"}},
}

# Alice of the reference scenario, as Keycloak puts her in an access token.
ALICE_CLAIMS: dict[str, Any] = {
    "sub": "alice",
    "preferred_username": "alice",
    "email": "alice@acme.example",
    "realm_access": {"roles": ["admin", "staff"]},
    "groups": ["/eng"],
    "tenant": "acme",
    "scope": "openid profile email chat",
}

# Requirement forms, cycled through by rule index; the comment is alice's answer.
REQUIREMENTS: tuple[str | dict[str, Any], ...] = (
    "role:staff",  # allowed
    "group:eng",  # allowed
    "scope:chat",  # allowed
    {"any": ["role:auditor", "group:sales"]},  # denied
    {"all": ["role:admin", "scope:chat"]},  # allowed
    "role:auditor",  # denied
    {"all": ["group:eng", {"not": "role:contractor"}]},  # allowed
    "group:sales",  # denied
)

# The same rooms for every rule-set size; each names a rule with an index below 10, so
# every size holds it. (room, alice's answer: allowed, denied by a rule, or no rule)
ALLOWED, DENIED, NO_RULE = "allowed", "denied by a rule's requirement", "covered by no rule"
Query = tuple[str, str]

GENERATED_QUERIES: tuple[Query, ...] = (
    ("project-0", ALLOWED),  # exact room, role:staff
    ("project-4", ALLOWED),  # exact room, all(role:admin, scope:chat)
    ("project-6", ALLOWED),  # exact room, all(group:eng, not role:contractor)
    ("tenant:acme:team-8:general", ALLOWED),  # tenant pattern, role:staff
    ("dept-9:acme", ALLOWED),  # placeholder, group:eng
    ("project-3", DENIED),  # exact room, any(role:auditor, group:sales)
    ("project-5", DENIED),  # exact room, role:auditor
    ("tenant:acme:team-7:general", DENIED),  # tenant pattern, group:sales
    ("lobby", NO_RULE),
    ("project-archive", NO_RULE),
    ("tenant:globex:team-8:general", NO_RULE),  # the pattern's {tenant} is not alice's
    ("dept-9:globex", NO_RULE),  # the placeholder is not alice's tenant
)

REFERENCE_QUERIES: tuple[Query, ...] = (
    ("user:alice", ALLOWED),
    ("tenant:acme", ALLOWED),
    ("tenant:acme:general", ALLOWED),
    ("staff", ALLOWED),
    ("user:bob", NO_RULE),
    ("tenant:globex", NO_RULE),
    ("tenant:globex:general", NO_RULE),
    ("lobby", NO_RULE),
)


def room_rule(index: int) -> dict[str, Any]:
    """Mostly exact rooms, some tenant-scoped wildcard patterns, some placeholders."""
    kind = index % 10
    if kind < 7:
        pattern = f"project-{index}"
    elif kind < 9:
        pattern = f"tenant:{{tenant}}:team-{index}:*"
    else:
        pattern = f"dept-{index}:{{tenant}}"
    requirement = REQUIREMENTS[index % len(REQUIREMENTS)]
    return {"pattern": pattern, "join": requirement, "publish": requirement}


def generated_policy(count: int) -> Policy:
    raw = {"issuers": [ISSUER], "rooms": [room_rule(i) for i in range(count)]}
    return Policy(validate_raw(raw, {}))


def timed_build(build: Callable[[], Policy]) -> tuple[Policy, float]:
    start = time.perf_counter()
    policy = build()
    return policy, time.perf_counter() - start


def answer(decision: Decision) -> str:
    if decision.allowed:
        return ALLOWED
    return NO_RULE if decision.rule is None else DENIED


def check_answers(policy: Policy, principal: Principal, queries: tuple[Query, ...]) -> None:
    """Refuse to time a policy that answers wrongly."""
    for room, expected in queries:
        decision = policy.room(principal, room, "join")
        if answer(decision) != expected:
            raise SystemExit(f"{room!r}: expected {expected}, got {decision}")


def room_seconds(policy: Policy, principal: Principal, rooms: list[str], repeat: int) -> float:
    """Seconds per ``policy.room(principal, room, "join")`` over the query mix."""
    decide = policy.room
    start = time.perf_counter()
    for _ in range(repeat):
        for room in rooms:
            decide(principal, room, "join")
    return (time.perf_counter() - start) / (repeat * len(rooms))


def call_seconds(call: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - start) / calls


def best_of(runs: int, measure: Callable[[], float]) -> float:
    return min(measure() for _ in range(runs))


def measure_generated(count: int, repeat: int, runs: int) -> tuple[float, float]:
    """(seconds per decision, seconds to build the policy) for ``count`` rules."""
    policy, build = timed_build(lambda: generated_policy(count))
    principal = policy.principal_from_claims(ALICE_CLAIMS, "bench")
    check_answers(policy, principal, GENERATED_QUERIES)
    rooms = [room for room, _ in GENERATED_QUERIES]
    return best_of(runs, lambda: room_seconds(policy, principal, rooms, repeat)), build


def check_reference(policy: Policy, principal: Principal) -> None:
    check_answers(policy, principal, REFERENCE_QUERIES)
    if not policy.may_send(principal, "chat:send"):
        raise SystemExit("alice must be allowed to send chat:send")
    if policy.auto_join(principal) != ("user:alice", "tenant:acme"):
        raise SystemExit(f"unexpected auto-join rooms {policy.auto_join(principal)}")


def measure_reference(repeat: int, runs: int) -> tuple[int, dict[str, tuple[float, float]]]:
    """The example configuration's room-rule count, and per case (seconds per call, build
    seconds) of its policy."""
    policy, build = timed_build(lambda: Policy(load_settings(EXAMPLE, env={})))
    principal = policy.principal_from_claims(ALICE_CLAIMS, policy.settings.issuers[0].name)
    check_reference(policy, principal)
    rooms = [room for room, _ in REFERENCE_QUERIES]
    calls = repeat * len(rooms)

    def may_send() -> object:
        return policy.may_send(principal, "chat:send")

    def auto_join() -> object:
        return policy.auto_join(principal)

    cases: dict[str, Callable[[], float]] = {
        "room join": lambda: room_seconds(policy, principal, rooms, repeat),
        "may_send chat:send": lambda: call_seconds(may_send, calls),
        "auto_join (2 rooms)": lambda: call_seconds(auto_join, calls),
    }
    timings = {case: (best_of(runs, measure), build) for case, measure in cases.items()}
    return len(policy.rooms.rules), timings


def mix(queries: tuple[Query, ...]) -> str:
    counts = Counter(expected for _, expected in queries)
    return ", ".join(f"{counts[kind]} {kind}" for kind in (ALLOWED, DENIED, NO_RULE))


def print_header(repeat: int, runs: int) -> None:
    python = platform.python_version()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {python}")
    print(f"generated-rule queries: {len(GENERATED_QUERIES)} rooms ({mix(GENERATED_QUERIES)})")
    print(f"reference queries: {len(REFERENCE_QUERIES)} rooms ({mix(REFERENCE_QUERIES)})")
    print(f"each mix x {repeat:,} per run, best of {runs} runs")
    print(f"gc thresholds: {GC_THRESHOLDS} (as under `ssoio serve`)\n")
    print("| case | rules | us / decision | decisions / s | ratio to 10 rules | build ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")


def print_row(case: str, rules: int, seconds: float, base: float, build: float) -> None:
    print(
        f"| {case} | {rules:,} | {seconds * 1e6:.2f} | {1 / seconds:,.0f} |"
        f" {seconds / base:.2f}x | {build * 1e3:,.1f} |"
    )


def print_targets(growth: float, reference_rate: float) -> None:
    def verdict(met: bool) -> str:
        return "met" if met else "NOT MET"

    print("\ntargets:")
    print(
        f"- 10,000-rule case within {TARGET_GROWTH:.0f}x of the 10-rule case:"
        f" {growth:.2f}x, {verdict(growth <= TARGET_GROWTH)}"
    )
    print(
        f"- reference policy over {TARGET_REFERENCE_RATE:,} room decisions / s:"
        f" {reference_rate:,.0f}, {verdict(reference_rate > TARGET_REFERENCE_RATE)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=20_000, help="passes over the query mix")
    parser.add_argument("--runs", type=int, default=5, help="timed runs; the best is reported")
    args = parser.parse_args()
    tune_garbage_collector()  # as `ssoio serve` does; applies to every case measured

    generated = {n: measure_generated(n, args.repeat, args.runs) for n in RULE_COUNTS}
    reference_rules, reference = measure_reference(args.repeat, args.runs)
    base = generated[RULE_COUNTS[0]][0]

    print_header(args.repeat, args.runs)
    for count, (seconds, build) in generated.items():
        print_row("room join, generated rules", count, seconds, base, build)
    for case, (seconds, build) in reference.items():
        print_row(f"{case}, reference policy", reference_rules, seconds, base, build)
    growth = generated[RULE_COUNTS[-1]][0] / base
    print_targets(growth, 1 / reference["room join"][0])


if __name__ == "__main__":
    main()
