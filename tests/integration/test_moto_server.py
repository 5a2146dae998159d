"""MotoServer, the emulator `make run` serves: patched where it is made, stall control on its own port."""

from __future__ import annotations

import requests

from devstack import moto_patches, stall
from devstack.motoserver import MotoServer


def test_the_server_is_made_with_the_patches_applied(moto_server: MotoServer) -> None:
    assert moto_server.patches == moto_patches.active() == list(moto_patches.ALL_PATCHES)


def test_the_server_serves_the_stall_control_on_its_own_port(moto_server: MotoServer) -> None:
    moto_server.stall(2.5, ["UpdateItem"], 3)
    with requests.Session() as session:
        session.trust_env = False  # loopback only
        state = session.get(moto_server.url + stall.PATH, timeout=5).json()
        assert (state["armed"], state["seconds"], state["operations"], state["remaining"]) == (
            True,
            2.5,
            ["UpdateItem"],
            3,
        )
        moto_server.unstall()
        assert session.get(moto_server.url + stall.PATH, timeout=5).json()["armed"] is False
