"""Named random streams: every random draw of a run comes from (run seed, stream, keys…), and streams never collide.

Before v2 the streams were bare numbers in five files, and they collided: the model-initialisation seed
``derive_seed(seed, 7)`` was also the augmentation seed of training step 7. Here a stream is a member of
:class:`Stream`, and its entropy is ``[seed, stream, number of keys, *keys]``: two different streams, or the same
stream with a different number of keys, can never produce the same generator state (short of a hash collision of
numpy's ``SeedSequence``).

| stream      | what it draws                                                   | keys                    |
|-------------|-----------------------------------------------------------------|-------------------------|
| SAMPLING    | which training images a sampling rate / k-shot keeps            | —                       |
| CARVE       | which of those become validation images                         | —                       |
| ORDER       | the order of the training images in an epoch                    | epoch                   |
| AUGMENT     | the augmentation of a training batch (in-memory) or of a sample | step (, sample)         |
| INIT        | model initialisation: new heads, scratch weights, gates         | —                       |
| TRAIN       | the global torch RNG during training (dropout, noisy gates)     | —                       |
| METHOD      | a method's own draws (DELTA's attention classifier, …)          | a key the method names  |
| ENV         | reinforcement-learning environments (reset seeds, sticky draws) | environment index       |

Changing these streams changes every number a run produces; the README's measured numbers come from this scheme.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class Stream(IntEnum):
    SAMPLING = 1
    CARVE = 2
    ORDER = 3
    AUGMENT = 4
    INIT = 5
    TRAIN = 6
    METHOD = 7
    ENV = 8


def _entropy(seed: int, stream: Stream, keys: tuple[int, ...]) -> list[int]:
    if seed < 0 or any(k < 0 for k in keys):
        raise ValueError(f"seeds and keys must be >= 0, got seed={seed}, keys={keys}")
    return [int(seed), int(stream), len(keys), *(int(k) for k in keys)]


def seed_for(seed: int, stream: Stream, *keys: int) -> int:
    """A 63-bit integer seed (for ``torch.manual_seed`` / ``torch.Generator``) of ``stream`` under the run ``seed``."""
    state = np.random.SeedSequence(_entropy(seed, stream, keys)).generate_state(2, dtype=np.uint64)
    return int(state[0] >> 1)


def rng(seed: int, stream: Stream, *keys: int) -> np.random.Generator:
    """A numpy generator of ``stream`` under the run ``seed``."""
    return np.random.default_rng(np.random.SeedSequence(_entropy(seed, stream, keys)))


__all__ = ["Stream", "rng", "seed_for"]
