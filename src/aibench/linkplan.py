"""The link-check plan of `aibench preflight`: which pairs of nodes to measure, in how
many rounds, and what the figures say. Pure numpy, no MPI, so that a fleet of any size
can be simulated with the same code that plans and judges the real runs.

All-pairs needs N-1 rounds (every node against every other, N/2 disjoint pairs at a
time): at 1,024 nodes and a second a round, 17 minutes. The plan measures each node
against P = max(3, ceil(log2 N)) distinct partners instead, in P rounds (P + 1 when N is
odd: one node sits out each round), so its time grows as log N:

1. plan rounds: P rounds of the circle-method round-robin tournament, chosen at random
   with a fixed seed, the nodes relabelled by a seeded permutation; each round is a
   perfect matching, and no two rounds repeat a partner;
2. judging (`judge`): a directed link is slow below SLOW_FRACTION x the median of every
   measured link; a node slow against most of its partners is a slow node (its own port,
   cable or NIC), and the links it touches are put down to it; any other slow link makes
   its pair a suspect;
3. follow-up (`followup_rounds`): each suspect endpoint against a known-good node it has
   not met (a node slow there too is a slow node after all), then each suspect pair again;
4. verdict (`confirm`): the slow nodes, and the suspect pairs that no slow node explains
   and that are slow again (one slow figure alone is a passing disturbance, e.g. a busy
   CPU: reported as not reproduced, not failed).
The same judging and follow-up serve all-pairs (where the follow-up is the rechecks).

What the plan cannot see: a fault on one pair's path alone (not a node's port), between
two nodes the plan never pairs. A pair is measured with probability about P/(N-1); the
exhaustive check is `aibench preflight --all-pairs`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

SLOW_FRACTION = 0.8  # the same bound as the p2p matrix's (suites/interconnect/p2p.py)
# One direction of a pair under this fraction of the other is a fault of that pair by
# itself (a duplex mismatch, one bad lane), whatever the other links do. Looser than
# SLOW_FRACTION: two ranks sharing a busy node's cores differ by 1.5-2x between directions.
ASYMMETRY_FRACTION = 0.4
DEFAULT_SEED = 0

Round = list[tuple[int, int]]


def partners_wanted(n: int) -> int:
    """How many distinct partners the plan gives each node: enough that 'slow against
    most of them' is a majority of at least 2 of 3, and growing as log2 N."""
    return max(3, math.ceil(math.log2(max(n, 2))))


def all_pairs_rounds(n: int) -> int:
    """The rounds of the all-pairs check: N-1 (N when N is odd: one node sits out each)."""
    return n - 1 if n % 2 == 0 else n


def circle_round(n: int, r: int) -> np.ndarray:
    """Round r (0 <= r < all_pairs_rounds(n)) of the circle-method tournament on 0..n-1:
    an (n // 2, 2) array of disjoint pairs. Over all rounds every pair meets once."""
    m = n + n % 2  # with n odd, player n is the bye: whoever meets it sits out
    i = np.arange(1, m // 2)
    a = np.concatenate(([m - 1], (r + i) % (m - 1)))
    b = np.concatenate(([r], (r - i) % (m - 1)))
    pairs = np.sort(np.stack([a, b], axis=1), axis=1)
    return pairs[(pairs < n).all(axis=1)]


@dataclass
class Plan:
    n: int
    rounds: list[np.ndarray]  # each an (pairs, 2) array of node indices
    all_pairs: bool

    def as_lists(self) -> list[Round]:
        return [[(int(a), int(b)) for a, b in r] for r in self.rounds]


def plan(n: int, all_pairs: bool = False, seed: int = DEFAULT_SEED) -> Plan:
    """The plan rounds for n nodes: all-pairs when asked, or when the plan and the
    follow-up of one suspect pair (2 rounds) would not be shorter; else
    partners_wanted(n) seeded random tournament rounds."""
    total = all_pairs_rounds(n)
    k = partners_wanted(n) + n % 2
    if all_pairs or k + 2 >= total:
        return Plan(n, [circle_round(n, r) for r in range(total)], True)
    rng = np.random.default_rng(seed)
    label = rng.permutation(n)
    chosen = sorted(rng.choice(total, size=k, replace=False).tolist())
    return Plan(n, [np.sort(label[circle_round(n, r)], axis=1) for r in chosen], False)


@dataclass
class Findings:
    """What a set of directed link figures says (see `judge`)."""
    median_gbps: float  # of the pairs, each by its slower direction
    slow_nodes: list[int]
    suspect_pairs: list[tuple[int, int]]  # (a, b) with a < b, slow in at least one direction
    partners: dict[int, set[int]] = field(default_factory=dict)  # who each node was measured against

    @property
    def suspect_nodes(self) -> list[int]:
        return sorted({x for p in self.suspect_pairs for x in p})


def judge(n: int, src: np.ndarray, dst: np.ndarray, gbps: np.ndarray,
          slow_fraction: float = SLOW_FRACTION) -> Findings:
    """Judge directed link figures (src[i] -> dst[i] at gbps[i]); the same for all-pairs
    and for the plan. A figure that is not a finite positive number counts as slow."""
    src, dst, gbps = np.asarray(src, np.int64), np.asarray(dst, np.int64), np.asarray(gbps, np.float64)
    good = np.isfinite(gbps) & (gbps > 0)
    # One figure per unordered pair, its slower direction, judged against the median pair:
    # a link is slow only next to other links (the two directions of one pair share its
    # path, and with a single pair there is nothing to compare it with).
    lo, hi = np.minimum(src, dst), np.maximum(src, dst)
    key = lo * n + hi
    keys, inverse = np.unique(key, return_inverse=True)
    pair_unusable = np.zeros(len(keys), bool)
    np.logical_or.at(pair_unusable, inverse, ~good)
    pair_gbps = np.full(len(keys), np.inf)
    np.minimum.at(pair_gbps, inverse, np.where(good, gbps, np.inf))
    pair_fast = np.zeros(len(keys))
    np.maximum.at(pair_fast, inverse, np.where(good, gbps, 0.0))
    usable = ~pair_unusable
    median = float(np.median(pair_gbps[usable])) if usable.any() else math.nan
    pair_slow = pair_unusable | (pair_gbps < slow_fraction * median) | (pair_gbps < ASYMMETRY_FRACTION * pair_fast)
    a, b = keys // n, keys % n
    # A node slow against most of its partners is a slow node. Taken worst first, and its
    # pairs then left out of the others' counts: a node that met one slow node and has one
    # slow link must not look slow against "2 of 3".
    slow_node = np.zeros(n, bool)
    while True:
        live = ~slow_node[a] & ~slow_node[b]
        met = np.bincount(a[live], minlength=n) + np.bincount(b[live], minlength=n)
        bad = live & pair_slow
        slow_met = np.bincount(a[bad], minlength=n) + np.bincount(b[bad], minlength=n)
        # With one partner left there is no telling which end is slow: that is a suspect pair.
        share = np.where(met >= 2, slow_met / np.maximum(met, 1), 0.0)
        worst = int(np.argmax(share))
        if share[worst] <= 0.5:
            break
        slow_node[worst] = True
    suspects = pair_slow & ~slow_node[a] & ~slow_node[b]
    partners: dict[int, set[int]] = {}
    for x, y in zip(a.tolist(), b.tolist()):
        partners.setdefault(x, set()).add(y)
        partners.setdefault(y, set()).add(x)
    return Findings(median, np.flatnonzero(slow_node).tolist(),
                    list(zip(a[suspects].tolist(), b[suspects].tolist())), partners)


def _pack(pairs: list[tuple[int, int]]) -> list[Round]:
    """Pairs into rounds in which no node appears twice (greedy, first round that fits)."""
    rounds: list[Round] = []
    busy: list[set[int]] = []
    for a, b in pairs:
        for r, used in enumerate(busy):
            if a not in used and b not in used:
                break
        else:
            rounds.append([])
            busy.append(set())
            r = len(rounds) - 1
        rounds[r].append((a, b))
        busy[r].update((a, b))
    return rounds


def followup_rounds(n: int, found: Findings) -> tuple[list[Round], list[Round]]:
    """The follow-up for the suspects: (each suspect endpoint against a known-good node it
    has not met, each suspect pair again). Empty when there is no suspect."""
    suspects = found.suspect_nodes
    if not suspects:
        return [], []
    known_good = [x for x in range(n) if x not in set(suspects) and x not in set(found.slow_nodes)]
    against_good: list[tuple[int, int]] = []
    load = {g: 0 for g in known_good}  # spread the suspects over the good nodes
    for x in suspects:
        met = found.partners.get(x, set())
        options = [g for g in known_good if g not in met] or known_good
        if not options:
            continue  # no node is known to be good: the suspect pairs' figures stand alone
        g = min(options, key=lambda g: load[g])
        load[g] += 1
        against_good.append((min(x, g), max(x, g)))
    return _pack(against_good), _pack(list(found.suspect_pairs))


def worst_case_followup_rounds(n: int) -> int:
    """Follow-up rounds at most, while the suspects and their partners are fewer than the
    healthy nodes (every suspect then finds a fresh good partner in one round): one round
    against good nodes, then the suspect pairs, at most floor(P/2) per node (more would
    make it a slow node), which greedy packing fits in 2*floor(P/2) - 1 rounds."""
    p = plan(n)
    if p.all_pairs:
        return 0
    per_node = len(p.rounds) // 2
    return 1 + max(1, 2 * per_node - 1)


@dataclass
class Verdict:
    slow_nodes: list[int]
    slow_links: list[tuple[int, int]]  # (a, b), a < b: the pair's path, no slow node explains it
    not_reproduced: list[tuple[int, int]] = field(default_factory=list)  # suspects healthy on the recheck


def confirm(n: int, found: Findings, src: np.ndarray, dst: np.ndarray, gbps: np.ndarray) -> Verdict:
    """The verdict once the follow-up figures (src -> dst at gbps, judged against the first
    figures' median) are in: a suspect slow against a known-good node too is a slow node;
    a suspect pair that touches no slow node is a slow link when it is slow again (or was
    not measured again: fail closed), else it was not reproduced."""
    src, dst, gbps = np.asarray(src, np.int64), np.asarray(dst, np.int64), np.asarray(gbps, np.float64)
    suspect_pairs, suspect_nodes = set(found.suspect_pairs), set(found.suspect_nodes)
    slow = ~(np.isfinite(gbps) & (gbps >= SLOW_FRACTION * found.median_gbps))
    slow_nodes = set(found.slow_nodes)
    slow_again: dict[tuple[int, int], bool] = {}
    for a, b, s in zip(src.tolist(), dst.tolist(), slow.tolist()):
        pair = (min(a, b), max(a, b))
        if pair in suspect_pairs:
            slow_again[pair] = slow_again.get(pair, False) or s
        elif s:  # a suspect slow against a known-good node
            slow_nodes.update(x for x in pair if x in suspect_nodes)
    unexplained = [p for p in found.suspect_pairs if not slow_nodes.intersection(p)]
    return Verdict(sorted(slow_nodes), sorted(p for p in unexplained if slow_again.get(p, True)),
                   sorted(p for p in unexplained if not slow_again.get(p, True)))


def schedule_table(sizes: list[int], round_s: float) -> list[dict]:
    """For --plan: per N, the all-pairs and plan rounds and their predicted minutes."""
    rows = []
    for n in sizes:
        p = plan(n)
        follow = worst_case_followup_rounds(n)
        total = all_pairs_rounds(n)
        rows.append({"nodes": n, "partners": partners_wanted(n) if not p.all_pairs else n - 1,
                     "plan_rounds": len(p.rounds), "pairs_per_round": n // 2,
                     "followup_rounds_worst": follow,
                     "plan_minutes": (len(p.rounds) + follow) * round_s / 60,
                     "all_pairs_rounds": total, "all_pairs_minutes": total * round_s / 60,
                     "all_pairs_used": p.all_pairs})
    return rows
