"""Peers on tiny matrices whose right answer is known: two tastes, a checkerboard of users x items."""

import numpy as np
import pytest
import scipy.sparse as sp

from scripts.peers import PEERS, available_peers, peer_top_n, top_k

TASTE_A = set(range(5))
TASTE_B = set(range(5, 10))
# small enough for a 10-item catalogue; every other option at its default
OPTIONS = {"puresvd": {"factors": 2}, "als": {"factors": 2}, "bm25_knn": {"K": 10}}
CF_PEERS = ("puresvd", "ease", "als", "bm25_knn")


def checkerboard() -> sp.csr_matrix:
    """Users 0-9 bought shoes 0-4 (taste A), users 10-19 shoes 5-9 (taste B), strengths 1-3.

    User 0 has a partial taste-A history (shoes 0 and 1 only); user 10 a partial taste-B one (5, 6).
    """
    rng = np.random.default_rng(0)
    dense = np.zeros((20, 10))
    dense[:10, :5] = rng.integers(1, 4, size=(10, 5))
    dense[10:, 5:] = rng.integers(1, 4, size=(10, 5))
    dense[0, 2:5] = 0
    dense[10, 7:10] = 0
    return sp.csr_matrix(dense)


def test_implicit_peers_are_available():
    # implicit is in requirements.txt: the peers that need it must run, not skip
    assert available_peers() == PEERS
    assert {"als", "bm25_knn"} <= set(available_peers())


@pytest.mark.parametrize("name", CF_PEERS)
def test_partial_history_gets_the_rest_of_its_taste_first(name):
    train = checkerboard()
    top = peer_top_n(name, train, np.array([0, 10]), k=3, exclude=train, **OPTIONS.get(name, {}))
    assert top.shape == (2, 3)
    assert set(top[0]) == {2, 3, 4}
    assert set(top[1]) == {7, 8, 9}


@pytest.mark.parametrize("name", CF_PEERS)
def test_without_exclusion_own_taste_fills_the_top(name):
    train = checkerboard()
    top = peer_top_n(name, train, np.array([3, 15]), k=5, **OPTIONS.get(name, {}))
    assert set(top[0]) == TASTE_A
    assert set(top[1]) == TASTE_B


def test_popularity_is_the_count_of_customers_per_shoe():
    train = checkerboard()
    # one more customer for shoe 9, with a strength that must not count beyond one
    train = sp.csr_matrix(train + sp.csr_matrix(([50.0], ([0], [9])), shape=train.shape))
    counts = np.asarray((train > 0).sum(axis=0)).ravel()
    top = peer_top_n("popularity", train, np.arange(20), k=10)
    # same list for everyone, counts descending, ties by shoe index
    assert (top == top[0]).all()
    assert list(top[0]) == sorted(range(10), key=lambda item: (-counts[item], item))
    # ten customers each for shoes 0, 1, 5, 6 and 9 (nine of taste B and user 0), nine for the rest
    assert list(top[0]) == [0, 1, 5, 6, 9, 2, 3, 4, 7, 8]


def test_popularity_ignores_strength_even_when_not_binary():
    train = sp.csr_matrix(np.array([[9.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 5.0]]))
    assert list(peer_top_n("popularity", train, np.array([0]), k=3, binary=False)[0]) == [1, 0, 2]


@pytest.mark.parametrize("name", PEERS)
def test_exclusion_is_respected_and_short_lists_are_padded(name):
    train = checkerboard()
    users = np.array([0, 4, 12, 19])
    # exclude everything but shoes 3 and 8 for users 0 and 12; nothing for the others
    exclude = sp.lil_matrix(train.shape)
    for user in (0, 12):
        exclude[user, [i for i in range(10) if i not in (3, 8)]] = 1
    exclude[4, 1] = 0  # an explicit zero excludes nothing
    top = peer_top_n(name, train, users, k=4, exclude=sp.csr_matrix(exclude), **OPTIONS.get(name, {}))
    assert top.dtype.kind == "i" and top.shape == (4, 4)
    for row in (0, 2):
        assert set(top[row, :2]) == {3, 8}
        assert list(top[row, 2:]) == [-1, -1]
    assert (top[[1, 3]] >= 0).all()


@pytest.mark.parametrize("name", PEERS)
def test_k_beyond_the_catalogue_is_padded(name):
    top = peer_top_n(name, checkerboard(), np.array([1]), k=12, **OPTIONS.get(name, {}))
    assert sorted(top[0, :10]) == list(range(10))
    assert list(top[0, 10:]) == [-1, -1]


@pytest.mark.parametrize("name", PEERS)
def test_deterministic_for_a_seed(name):
    train = checkerboard()
    users = np.arange(20)
    first = peer_top_n(name, train, users, k=4, random_state=7, **OPTIONS.get(name, {}))
    again = peer_top_n(name, train, users, k=4, random_state=7, **OPTIONS.get(name, {}))
    np.testing.assert_array_equal(first, again)


def test_batches_give_the_same_lists(monkeypatch):
    import scripts.peers as peers

    train = checkerboard()
    users = np.array([5, 0, 19, 10, 0])
    whole = peer_top_n("ease", train, users, k=4, exclude=train)
    monkeypatch.setattr(peers, "BATCH", 2)
    np.testing.assert_array_equal(peer_top_n("ease", train, users, k=4, exclude=train), whole)


def test_empty_users_and_zero_k():
    train = checkerboard()
    assert peer_top_n("ease", train, np.array([], dtype=int), k=3).shape == (0, 3)
    assert peer_top_n("popularity", train, np.array([0, 1]), k=0).shape == (2, 0)


def test_bad_arguments():
    train = checkerboard()
    with pytest.raises(ValueError, match="unknown peer"):
        peer_top_n("slim", train, np.array([0]), k=3)
    with pytest.raises(TypeError, match="unknown peer options"):
        peer_top_n("ease", train, np.array([0]), k=3, lambda_=1.0)
    with pytest.raises(ValueError, match="exclude has shape"):
        peer_top_n("ease", train, np.array([0]), k=3, exclude=train[:5])
    with pytest.raises(IndexError):
        peer_top_n("ease", train, np.array([20]), k=3)


def test_top_k_orders_ties_by_index():
    scores = np.array(
        [
            [1.0, 3.0, 3.0, 0.0, 3.0, 3.0],  # four tied at the top, k=3 must keep the lowest indices
            [-np.inf, 0.0, 0.0, 0.0, -np.inf, 2.0],
            [-np.inf] * 6,
        ]
    )
    np.testing.assert_array_equal(top_k(scores, 3), [[1, 2, 4], [5, 1, 2], [-1, -1, -1]])
    np.testing.assert_array_equal(top_k(scores, 6)[1], [5, 1, 2, 3, -1, -1])
