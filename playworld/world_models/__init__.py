"""Action-conditioned world models trained on play stores.

    state/      chunk diffusion over future states + deterministic baselines (one-step, chunk MLP)
    frames/     DIAMOND-style next-frame diffusion (EDM, UNet, past frames + actions)
    build       run config -> fitted model + data -> `train_world_model` (the shared loop)
    imagine     `imagine(model, history, actions)`, `WorldModelEnv` (reset / step)
    score       errors vs horizon on held-out episodes against the recorded twin states
    commands    `playworld train world-model`, `playworld imagine`, `playworld score`

Importing `playworld.world_models.build` registers every model kind for checkpoint loading.
"""
