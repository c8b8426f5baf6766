"""Tether (arXiv 2603.03278): keypoint-warping policies from a handful of demos, and autonomous
functional play that grows their library.

    warp.py        pure math: yaw-restricted Kabsch fits, keypoint-centred rigid transforms,
                   SLERP blends by arc-length progress, re-timing at the demo's Cartesian speed
    library.py     demos from stores (cut at gripper events, an anchor object per segment)
    policy.py      the `tether` Policy: pick a demo, warp it to the scene, track it
    play.py        functional play: task sampler, UCB demo picker, Judge, store + library growth
    perception.py  perceived keypoints: depth -> point cloud -> open3d segmentation + registration
    commands.py    `playworld play`, `playworld tether library`
"""
