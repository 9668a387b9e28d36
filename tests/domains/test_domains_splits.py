"""Named splits: determinism, independence of train and fresh, balance, ids, capacity."""

from __future__ import annotations

from collections import Counter

import pytest

from workbench.core.errors import WorkbenchError
from workbench.labels.domains import SPLITS, make_split, split_capacity
from workbench.labels.domains.capitals import TEMPLATES as CAPITAL_TEMPLATES

ALL = ("capitals", "arithmetic", "elements")


def _entity(item) -> object:
    labels = item.labels
    if labels["family"] == "arithmetic":
        ops, xs = tuple(labels["ops"]), tuple(labels["operands"])
        return ("arithmetic", ops, tuple(sorted(xs)) if set(ops) == {"+"} else xs)
    return (labels["family"], labels["entity"])


def _template_texts(items) -> set[str]:
    from workbench.labels.domains import FAMILIES, arithmetic, capitals, elements

    modules = {"capitals": capitals, "arithmetic": arithmetic, "elements": elements}
    assert set(modules) == set(FAMILIES)
    out = set()
    for it in items:
        fam, which, k = it.labels["template"].split("/")
        out.add(modules[fam].TEMPLATES[which][int(k)])
    return out


@pytest.mark.parametrize("name", list(SPLITS))
def test_same_seed_gives_identical_items(name: str) -> None:
    a = make_split(name, 60, seed=11, families=ALL)
    b = make_split(name, 60, seed=11, families=ALL)
    assert a == b
    assert [it.to_json() for it in a] == [it.to_json() for it in b]
    c = make_split(name, 60, seed=12, families=ALL)
    assert [it.prompt for it in a] != [it.prompt for it in c]


def test_train_fresh_and_hard_share_no_entity_prompt_or_template() -> None:
    splits = {
        name: make_split(name, split_capacity(name, ALL) or 200, seed=0, families=ALL)
        for name in ("train", "fresh")
    }
    splits["fresh_hard"] = make_split("fresh_hard", 150, seed=0, families=ALL)
    for a in splits:
        for b in splits:
            if a >= b:
                continue
            ents_a = {_entity(it) for it in splits[a]}
            ents_b = {_entity(it) for it in splits[b]}
            assert not ents_a & ents_b, (a, b)
            assert not {it.prompt for it in splits[a]} & {it.prompt for it in splits[b]}
    assert not _template_texts(splits["train"]) & _template_texts(splits["fresh"])
    assert not _template_texts(splits["train"]) & _template_texts(splits["fresh_hard"])


def test_disjointness_holds_for_any_pair_of_seeds() -> None:
    train = make_split("train", 100, seed=1)
    fresh = make_split("fresh", 100, seed=1)
    assert not {_entity(it) for it in train} & {_entity(it) for it in fresh}
    other = make_split("fresh", 100, seed=99)
    assert not {_entity(it) for it in train} & {_entity(it) for it in other}


def test_template_sets_are_disjoint_strings() -> None:
    assert not set(CAPITAL_TEMPLATES["train"]) & set(CAPITAL_TEMPLATES["fresh"])


def test_ids_unique_stable_and_families_interleaved() -> None:
    items = make_split("train", 9, seed=0, families=ALL)
    assert [it.id for it in items] == [
        f"train-{fam}-{i:04d}" for i in range(3) for fam in ("capitals", "arithmetic", "elements")
    ]
    big = make_split("fresh_hard", 101, seed=3)
    assert len({it.id for it in big}) == 101
    counts = Counter(it.labels["family"] for it in big)
    assert counts == {"capitals": 51, "arithmetic": 50}
    assert all(it.labels["split"] == "fresh_hard" for it in big)


def test_prefix_stable() -> None:
    small = make_split("fresh", 31, seed=4, families=ALL)
    large = make_split("fresh", 70, seed=4, families=ALL)
    assert large[:31] == small


def test_hard_split_is_harder_by_construction() -> None:
    train = make_split("train", 100, seed=0)
    hard = make_split("fresh_hard", 100, seed=0)
    digits = lambda items: [it.labels["digits"] for it in items if "digits" in it.labels]  # noqa: E731
    operands = lambda items: [it.labels["n_operands"] for it in items if "digits" in it.labels]  # noqa: E731
    assert min(d + o for d, o in zip(digits(hard), operands(hard), strict=True)) > max(
        d + o for d, o in zip(digits(train), operands(train), strict=True)
    )
    kinds = Counter(it.labels["difficulty"] for it in hard if it.labels["family"] == "capitals")
    assert set(kinds) <= {"trap", "rare"}
    assert all(
        it.labels["difficulty"] == "common" for it in train if it.labels["family"] == "capitals"
    )


def test_capacity_and_errors() -> None:
    cap = split_capacity("train")
    assert cap is not None and cap >= 100
    assert len(make_split("train", cap, seed=0)) == cap
    with pytest.raises(WorkbenchError, match=f"at most {cap}"):
        make_split("train", cap + 1, seed=0)
    assert split_capacity("fresh_hard", ["arithmetic"]) is None
    with pytest.raises(WorkbenchError, match="unknown split 'test'"):
        make_split("test", 3)
    with pytest.raises(WorkbenchError, match="unknown task family 'poetry'"):
        make_split("train", 3, families=["poetry"])
    with pytest.raises(WorkbenchError, match="is a string"):
        make_split("train", 3, families="capitals")
    with pytest.raises(WorkbenchError, match="repeat"):
        make_split("train", 3, families=["capitals", "capitals"])
    with pytest.raises(WorkbenchError, match="positive whole number"):
        make_split("train", 0)


def test_single_family_access() -> None:
    items = make_split("fresh", 10, seed=0, families=["elements"])
    assert {it.labels["family"] for it in items} == {"elements"}
    assert items[3].id == "fresh-elements-0003"
