"""Which samples each training step takes, when `data=` names one dataset or several.

    data=scenes/davis                          one dataset: an epoch is one pass over it
    data=scenes/davis,scenes/yolo/data.yaml    mixed: every step takes `batch` samples from each
    data=[scenes/davis,scenes/yolo/data.yaml] batch=[4,16]    4 clips and 16 images per step

With several datasets an epoch is one pass over the FIRST one; the others are drawn in turn from
their own shuffles, reshuffled each time one is used up, so a small first dataset (videos) can be
mixed with a large second one (images) without repeating the large one every epoch. This is what
keeps a model's image quality while it learns to track: SAM 2 itself is trained on images and
videos together.

Everything here is a function of (seed, epoch, step), so every DDP rank computes the same schedule
and takes its own share of it, and each sample's random generator depends on where it comes from
(dataset, pass, index), never on the rank.
"""

from dataclasses import dataclass
from typing import List, Sequence, Tuple, Union

import torch

from sam2cli.errors import UsageError

SOURCE_SEED = 7_919  # offsets the seed of each further dataset


@dataclass
class Part:
    """One dataset's share of a step: (pass over that dataset, index) per sample."""
    source: int
    items: List[Tuple[int, int]]

    def share(self, rank: int, world: int) -> "Part":
        return Part(self.source, self.items[rank::world])


def sample_gen(seed: int, source: int, pass_no: int, index: int) -> torch.Generator:
    """The generator of one sample's augmentation and simulated prompts."""
    return torch.Generator().manual_seed((seed + SOURCE_SEED * source) * 1_000_003 + pass_no * 10_007 + index)


def shuffle(n: int, seed: int, source: int, pass_no: int) -> List[int]:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed + SOURCE_SEED * source + pass_no)).tolist()


def step_parts(sizes: Sequence[int], batches: Sequence[int], seed: int, epoch: int, step: int,
               steps_per_epoch: int) -> List[Part]:
    """The samples of step `step` of epoch `epoch`: batches[k] from the dataset of size sizes[k]."""
    b0 = batches[0]
    first = shuffle(sizes[0], seed, 0, epoch)[step * b0:(step + 1) * b0]
    parts = [Part(0, [(epoch, i) for i in first])]
    for source, (n, b) in enumerate(zip(sizes[1:], batches[1:]), start=1):
        start = (epoch * steps_per_epoch + step) * b  # samples already drawn from this dataset
        items, order, pass_no = [], [], -1
        for p in range(start, start + b):
            if p // n != pass_no:
                pass_no = p // n
                order = shuffle(n, seed, source, pass_no)
            items.append((pass_no, order[p % n]))
        parts.append(Part(source, items))
    return parts


def per_dataset(batch: Union[int, Sequence[int]], n_datasets: int) -> List[int]:
    """batch= as one number per dataset: a single number applies to each."""
    batches = [int(batch)] * n_datasets if isinstance(batch, int) else [int(b) for b in batch]
    if len(batches) != n_datasets:
        raise UsageError(f"batch={list(batches)} gives {len(batches)} sizes for {n_datasets} data= entries: "
                         f"give one number, or one per entry")
    return batches
