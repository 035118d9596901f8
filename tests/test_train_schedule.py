"""Which samples each training step takes (train/schedule.py): with several datasets an epoch is
one pass over the first, the others cycle through their own shuffles, and DDP ranks split a step
without overlap."""

from collections import Counter

import pytest

from sam2cli.errors import UsageError
from sam2cli.train.schedule import per_dataset, sample_gen, step_parts


def test_first_dataset_once_per_epoch_others_cycle_without_repeats():
    sizes, batch, steps = (12, 5), 3, 4
    firsts, seconds = [], []
    for epoch in range(3):
        epoch_first = []
        for s in range(steps):
            a, b = step_parts(sizes, (batch, batch), seed=7, epoch=epoch, step=s, steps_per_epoch=steps)
            assert a.source == 0 and b.source == 1 and len(a.items) == len(b.items) == batch
            epoch_first += [i for _, i in a.items]
            seconds += b.items
        assert sorted(epoch_first) == list(range(12))  # every sample of the first, once per epoch
        firsts.append(epoch_first)
    assert firsts[0] != firsts[1]  # reshuffled each epoch
    # the second dataset (5 samples) is used up every 5 draws: each pass holds each sample once
    passes = Counter(p for p, _ in seconds)
    assert all(passes[p] == 5 for p in range(len(seconds) // 5))
    for p in range(len(seconds) // 5):
        assert sorted(i for q, i in seconds if q == p) == list(range(5))


def test_schedule_is_reproducible_and_one_dataset_unchanged():
    assert step_parts([10], [4], 0, 2, 1, 2) == step_parts([10], [4], 0, 2, 1, 2)
    assert step_parts([10, 6], [4, 4], 0, 2, 1, 2) != step_parts([10, 6], [4, 4], 1, 2, 1, 2)
    (only,) = step_parts([10], [4], 0, 2, 1, 2)
    assert all(p == 2 for p, _ in only.items)  # one dataset: the pass is the epoch


def test_ranks_share_a_step_without_overlap():
    parts = step_parts([16, 9], [4, 6], 3, 0, 2, 4)
    for part in parts:
        shares = [part.share(r, 2).items for r in range(2)]
        assert sorted(shares[0] + shares[1]) == sorted(part.items) and not set(shares[0]) & set(shares[1])


def test_sample_generators_differ_by_dataset_pass_and_index():
    draws = {(s, p, i): float(sample_gen(0, s, p, i).seed()) for s in (0, 1) for p in (0, 1) for i in (0, 1)}
    assert len(set(draws.values())) == len(draws)


def test_batch_per_dataset():
    a, b = step_parts([8, 100], [2, 5], 0, 1, 3, 4)
    assert len(a.items) == 2 and len(b.items) == 5
    # the second dataset continues where the previous step left it: 5 per step, 16 steps so far
    assert {p for p, _ in b.items} == {0} and len({i for _, i in b.items}) == 5
    assert per_dataset(4, 2) == [4, 4] and per_dataset([4, 16], 2) == [4, 16]
    with pytest.raises(UsageError, match="one per entry"):
        per_dataset([4, 16], 3)
