"""Teleop devices: keyboard through a real pseudo-terminal; SpaceMouse and gamepad replaced at
their lowest level (HID report bytes; SDL joystick events) by stand-ins named as such."""

from __future__ import annotations

import os
import pty
import struct
import termios
import time

import numpy as np
import pytest

from playworld.hardware.errors import ConfigError, HardwareError
from playworld.hardware.gamepad import GamepadConfig, GamepadTeleop
from playworld.hardware.keyboard import KeyboardConfig, KeyboardTeleop
from playworld.hardware.spacemouse import SpaceMouseConfig, SpaceMouseTeleop, parse_report
from playworld.hardware.teleop import (
    TELEOPS,
    TeleopConfig,
    TeleopEvent,
    apply_deadzone,
    axes_to_action,
)


def test_deadzone_and_scaling():
    np.testing.assert_allclose(
        apply_deadzone([0.05, -0.1, 0.55, -1.0, 2.0, np.nan], 0.1), [0, 0, 0.5, -1.0, 1.0, 0.0]
    )
    cfg = TeleopConfig(deadzone=0.2, pos_scale=0.01, rot_scale=0.05)
    a = axes_to_action(np.array([1.0, -0.6, 0.1, 0, 0, 1.0]), 0.0, cfg)
    assert a.dtype == np.float32 and a.shape == (7,)
    np.testing.assert_allclose(a, [0.01, -0.005, 0, 0, 0, 0.05, 0.0], atol=1e-7)
    with pytest.raises(ConfigError, match="deadzone"):
        TeleopConfig(deadzone=1.0)


def wait_until(pred, timeout=2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return False


@pytest.fixture
def terminal():
    """A real pseudo-terminal: (master fd to type into, slave tty path for the teleop)."""
    master, slave = pty.openpty()
    path = os.ttyname(slave)
    yield master, path, slave
    os.close(master)
    os.close(slave)


def test_keyboard_through_a_pty(terminal):
    master, path, slave = terminal
    before = termios.tcgetattr(slave)
    teleop = KeyboardTeleop(
        KeyboardConfig(device=path, hold_time=0.3, deadzone=0.0, pos_scale=0.01)
    )
    with teleop:
        assert not termios.tcgetattr(slave)[3] & termios.ICANON  # cbreak while connected
        np.testing.assert_array_equal(teleop.get_action(), [0, 0, 0, 0, 0, 0, 1])
        os.write(master, b"wa")
        assert wait_until(lambda: teleop.get_action()[1] > 0)
        a = teleop.get_action()
        np.testing.assert_allclose(a[:3], [0.01, 0.01, 0.0])
        time.sleep(0.4)  # no key repeat: the axes fall back to zero
        np.testing.assert_array_equal(teleop.get_action()[:6], 0)
        os.write(master, b" F\r")
        assert wait_until(lambda: teleop.get_action()[6] == 0.0)
        assert teleop.get_action()[2] < 0
        os.write(master, b"vx\x03")
        events = []
        assert wait_until(lambda: events.extend(teleop.events()) or len(events) >= 4)
        assert events == [
            TeleopEvent.START,
            TeleopEvent.SAVE,
            TeleopEvent.DISCARD,
            TeleopEvent.QUIT,
        ]
    assert termios.tcgetattr(slave) == before  # the terminal is restored


def test_keyboard_needs_a_terminal(tmp_path):
    plain = tmp_path / "not_a_tty"
    plain.write_text("")
    with pytest.raises(HardwareError, match="expected a terminal"):
        KeyboardTeleop(KeyboardConfig(device=str(plain))).connect()


class HidDeviceStandIn:
    """Stand-in for hidapi's `hid.device`: replays HID report bytes given by the test."""

    def __init__(self):
        self.reports: list[bytes] = []
        self.opened = None
        self.closed = False

    def open(self, vendor_id, product_id):
        self.opened = (vendor_id, product_id)

    def read(self, size, timeout_ms=0):
        if self.reports:
            return list(self.reports.pop(0))
        time.sleep(timeout_ms / 1000)
        return []

    def close(self):
        self.closed = True


def report(rid: int, *values: int) -> bytes:
    return bytes([rid]) + struct.pack(f"<{len(values)}h", *values)


def test_spacemouse_report_parsing():
    axes = np.zeros(6)
    assert parse_report(report(1, 350, -175, 0), axes) is None
    np.testing.assert_array_equal(axes, [350, -175, 0, 0, 0, 0])
    parse_report(report(2, 10, 20, 30), axes)
    np.testing.assert_array_equal(axes[3:], [10, 20, 30])
    parse_report(report(1, 1, 2, 3, 4, 5, 6), axes)  # newer models: one 12-byte report
    np.testing.assert_array_equal(axes, [1, 2, 3, 4, 5, 6])
    assert parse_report(bytes([3, 0b10]), axes) == 2
    assert parse_report(bytes([9, 1, 2]), axes) is None


def test_spacemouse_from_hid_reports():
    device = HidDeviceStandIn()
    teleop = SpaceMouseTeleop(
        SpaceMouseConfig(deadzone=0.0, pos_scale=0.02), hid_device=lambda: device
    )
    with teleop:
        assert device.opened is not None
        # Push forward (device -y) and twist (device -rz): world +x and +yaw.
        device.reports += [
            report(1, 0, -350, 0),
            report(2, 0, 0, -175),
            bytes([3, 1]),
            bytes([3, 0]),
        ]
        assert wait_until(lambda: teleop.get_action()[6] == 0.0)
        a = teleop.get_action()
        np.testing.assert_allclose(a[:6], [0.02, 0, 0, 0, 0, 0.05], atol=1e-6)
        device.reports += [bytes([3, 2]), bytes([3, 0])]
        assert wait_until(lambda: TeleopEvent.SAVE in teleop.events())
    assert device.closed


class JoystickStandIn:
    """Stand-in for `pygame.joystick.Joystick`: the test posts this instance's SDL events."""

    def get_instance_id(self):
        return 7


def test_gamepad_from_sdl_joystick_events():
    pg = pytest.importorskip(
        "pygame", reason="pygame not installed (pip install 'playworld[hardware]')"
    )
    teleop = GamepadTeleop(GamepadConfig(deadzone=0.1, pos_scale=0.02), joystick=JoystickStandIn())
    with teleop:
        post = pg.event.post
        post(pg.event.Event(pg.JOYAXISMOTION, joy=0, instance_id=7, axis=1, value=-1.0))
        post(pg.event.Event(pg.JOYAXISMOTION, joy=0, instance_id=7, axis=0, value=0.05))  # deadzone
        post(pg.event.Event(pg.JOYAXISMOTION, joy=1, instance_id=8, axis=4, value=1.0))  # other pad
        post(pg.event.Event(pg.JOYBUTTONDOWN, joy=0, instance_id=7, button=0))
        post(pg.event.Event(pg.JOYBUTTONDOWN, joy=0, instance_id=7, button=2))
        a = teleop.get_action()
        np.testing.assert_allclose(a, [0.02, 0, 0, 0, 0, 0, 0.0], atol=1e-7)
        post(pg.event.Event(pg.JOYBUTTONDOWN, joy=0, instance_id=7, button=3))
        assert teleop.events() == [TeleopEvent.START, TeleopEvent.SAVE]


@pytest.mark.parametrize("name", TELEOPS.names())
def test_teleop_contract(name):
    """Every registered teleop: config from a dict, features while disconnected, 7-dim action."""
    teleop = TELEOPS.from_dict({"type": name})
    assert teleop.action_features["action"].shape == (7,)
    assert not teleop.is_connected
    with pytest.raises(ConfigError, match="expected keys among"):
        TELEOPS.from_dict({"type": name, "bogus": 1})
