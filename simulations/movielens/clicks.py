"""Position-based clicks from held-out ratings, with consumption and fatigue.

A shown item is clicked when the user examines its position and is attracted by it
(the position-based model, PBM): ``P(click) = examination[p] * attraction(u, i)``.

* ``examination[p]`` defaults to ``1 / log2(p + 2)`` (1, 0.63, 0.5, ... for positions 0, 1, 2).
* ``attraction(u, i)`` comes from the user's held-out rating of the item
  (``attraction_by_rating[r - 1]``); items the user never rated get ``unrated``; items already
  in the user's training history get 0 (they have seen the movie).
* **Consumption**: a clicked item is consumed -- the simulator never shows it to that user
  again, so no policy gains by repeating a user's known hits.
* **Fatigue**: every time a user examines an item and does not click it, its attraction for
  that user is multiplied by ``fatigue``, so showing the same ignored items again and again
  loses.

One uniform ``u`` per shown slot decides both events: the slot is examined when
``u < examination[p]`` and clicked when ``u < examination[p] * attraction`` (so
``P(click | examined) = attraction``, as in the PBM).  The environment hands every policy of a
seed the same uniforms for the same request and position (common random numbers).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulations.movielens.data import World

__all__ = ["ClickModel", "ClickState"]


@dataclass(frozen=True, slots=True)
class ClickModel:
    """Parameters of the position-based click model (see the module docstring).

    Parameters
    ----------
    k
        Items shown per request.
    attraction_by_rating
        Attraction of an item the user rated 1, 2, 3, 4 and 5 in the held-out part.
    unrated
        Attraction of an item the user never rated.
    examination
        Examination probability of each position (length ``k``); default ``1/log2(p + 2)``.
    fatigue
        Factor applied to an item's attraction for a user each time it is shown unclicked.
    """

    k: int = 10
    attraction_by_rating: tuple[float, ...] = (0.02, 0.05, 0.2, 0.5, 0.85)
    unrated: float = 0.01
    examination: tuple[float, ...] | None = None
    fatigue: float = 0.9

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"k must be at least 1, got {self.k}.")
        if len(self.attraction_by_rating) != 5:
            raise ValueError("attraction_by_rating must give one value per rating 1..5.")
        values = (*self.attraction_by_rating, self.unrated, self.fatigue)
        if not all(0.0 <= v <= 1.0 for v in values):
            raise ValueError("attraction_by_rating, unrated and fatigue must lie in [0, 1].")
        if self.examination is not None and (
            len(self.examination) != self.k or not all(0.0 <= e <= 1.0 for e in self.examination)
        ):
            raise ValueError(f"examination must give {self.k} probabilities in [0, 1].")

    def examination_vector(self) -> np.ndarray:
        """Examination probability of each of the ``k`` positions, shape ``(k,)``."""
        if self.examination is not None:
            return np.asarray(self.examination, dtype=np.float64)
        return 1.0 / np.log2(np.arange(self.k) + 2.0)

    def attraction_table(self, world: World) -> np.ndarray:
        """Base attraction of every (user, item), shape ``(U, I)``, float32.

        From the held-out ratings, or the world's own ``attraction`` when it has one (a
        synthetic population); items in the user's training history get 0 either way.
        """
        if world.attraction is not None:
            table = np.array(world.attraction, dtype=np.float32)
            table[world.history_users, world.history_items] = 0.0
            return table
        table = np.full((world.n_users, world.n_items), self.unrated, dtype=np.float32)
        table[world.history_users, world.history_items] = 0.0
        ratings = np.clip(np.rint(world.test_ratings).astype(np.int64), 1, 5)
        by_rating = np.asarray(self.attraction_by_rating, dtype=np.float32)
        table[world.test_users, world.test_items] = by_rating[ratings - 1]
        return table


class ClickState:
    """One run's users: what they consumed and how often they examined and ignored each item.

    Parameters
    ----------
    model
        The click model.
    attraction
        Base attraction table from :meth:`ClickModel.attraction_table` (read, never written).
    """

    def __init__(self, model: ClickModel, attraction: np.ndarray) -> None:
        self.model = model
        self.attraction = attraction
        self.examination = model.examination_vector().astype(np.float32)
        self.consumed = np.zeros(attraction.shape, dtype=bool)
        self.consumed_count = np.zeros(attraction.shape[0], dtype=np.int64)
        self.ignored = np.zeros(attraction.shape, dtype=np.uint8)
        self._decay = (model.fatigue ** np.arange(256)).astype(np.float32)

    def click_probability(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """P(click) of each shown item, shape ``(B, k)``: examination x attraction x fatigue."""
        u = users[:, None]
        attraction = self.attraction[u, items] * self._decay[self.ignored[u, items]]
        attraction[self.consumed[u, items]] = 0.0
        return self.examination[None, : items.shape[1]] * attraction

    def show(self, users: np.ndarray, items: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
        """Show ``items`` (shape ``(B, k)``) to ``users`` (distinct, shape ``(B,)``); return clicks.

        A click happens where ``uniforms < P(click)``; clicked items are consumed, and the
        ignored count of every examined (``uniforms < examination``) but unclicked item goes
        up by one.
        """
        if items.ndim != 2 or items.shape[0] != users.shape[0]:
            raise ValueError(f"items must have shape ({users.shape[0]}, k), got {items.shape}.")
        if np.any(items < 0):
            raise ValueError("items holds empty slots (-1); every slot must show an item.")
        u = users[:, None]
        if np.any(self.consumed[u, items]):
            raise ValueError("items holds an item the user already consumed.")
        draws = uniforms[:, : items.shape[1]]
        clicks = draws < self.click_probability(users, items)
        self.consumed[u, items] |= clicks
        self.consumed_count[users] += clicks.sum(axis=1)
        ignored = (draws < self.examination[None, : items.shape[1]]) & ~clicks
        missed = np.broadcast_to(u, items.shape)[ignored], items[ignored]
        self.ignored[missed] = np.minimum(self.ignored[missed], 254) + 1
        return clicks
