"""The mixer's seeded permutation: a bijection of 0..n-1 with its inverse, the same whatever the
batching of the indices asked for (the mixer asks batch by batch), and the same on numpy's
vectorised walk and on Python's one-by-one walk of the last few values."""

from __future__ import annotations

import numpy as np
import pytest

from docsynth.dataset.permute import Permutation


@pytest.mark.parametrize("n", [1, 2, 3, 7, 1000, 9964, 1 << 16, (1 << 16) + 1])
def test_a_bijection_with_its_inverse(n):
    p = Permutation(n, 11)
    x = np.arange(n)
    y = p(x)
    assert y.dtype == np.int64 and sorted(y.tolist()) == x.tolist()
    assert (p.inverse(y) == x).all() and (p(p.inverse(x)) == x).all()


def test_batches_of_any_size_give_the_same_values_as_the_whole():
    n = 9964
    p = Permutation(n, 3, 5)
    whole, back = p(np.arange(n)), p.inverse(np.arange(n))
    rng = np.random.default_rng(0)
    a = 0
    while a < n:  # 1..300 at a time: some batches walk on numpy, some only one by one
        b = min(n, a + int(rng.integers(1, 300)))
        assert (p(np.arange(a, b)) == whole[a:b]).all() and (p.inverse(np.arange(a, b)) == back[a:b]).all()
        a = b
    for i in rng.integers(0, n, 50).tolist():  # one at a time: only Python's walk
        assert p(np.array([i]))[0] == whole[i] and p.inverse(np.array([i]))[0] == back[i]


def test_python_steps_equal_numpy_steps():
    p = Permutation(1000, 2)
    x = np.arange(0, 1 << 10, dtype=np.uint64)  # the network's whole domain
    assert p._encrypt(x).tolist() == [p._encrypt1(int(v)) for v in x]
    assert p._decrypt(x).tolist() == [p._decrypt1(int(v)) for v in x]


def test_seed_and_key_decide_the_order():
    x = np.arange(5000)
    a = Permutation(5000, 1)(x)
    assert (Permutation(5000, 1)(x) == a).all()
    assert (Permutation(5000, 2)(x) != a).mean() > 0.99
    assert (Permutation(5000, 1, 7)(x) != a).mean() > 0.99
    assert abs(np.corrcoef(x, a)[0, 1]) < 0.05  # no trace of the input order left
