"""Tether: keypoint-warping policies from a handful of demos and autonomous functional play."""
