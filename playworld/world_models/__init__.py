"""Action-conditioned world models trained on play stores (see README)."""

from playworld.world_models import state  # noqa: F401  (registers the state models)
