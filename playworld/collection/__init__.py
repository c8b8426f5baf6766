"""playworld.collection: the control loop, recording sessions and autonomous play.

loop.py       ControlLoop: fixed-rate, drift-free, self-measuring (metrics.py)
writer.py     StepQueue: background store writes behind a bounded queue
cameras.py    CameraTap (newest frame, drop counting), StandInCamera (replayed frames)
rig.py        robot + loop cameras from a profile; teleop devices by name or YAML
record.py     RecordSession: `playworld record` (status.py: live status line, summary)
autoplay.py   Player and autoplay(): Tether-style play in the twin, labelled segments
replay.py     replay a twin episode and check that it reproduces the recorded states
demo.py       `make demo`; commands.py: the `record` and `autoplay` CLI commands
"""
