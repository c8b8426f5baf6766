"""playworld.policies: every action source that is not a person, behind one interface.

    Policy, PolicyConfig        the interface (base.py): reset / act / predict_chunk / save / load
    POLICIES                    registry: name -> (config class, policy class)
    make_policy(name_or_dir)    a registered policy with defaults, or a saved checkpoint folder

Implementations register themselves next to their configs and load on first use (so importing
this package costs neither torch nor MuJoCo): `zero`, `random` (simple.py), `scripted` (the twin's
experts), `replay` (a stored episode's actions).
"""

from playworld.policies.base import POLICIES, Policy, PolicyConfig, make_policy

__all__ = ["POLICIES", "Policy", "PolicyConfig", "make_policy"]
