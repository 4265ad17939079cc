"""``ponder setup``'s first step: make the installed llama.cpp the build this machine wants.

The session probes the machine, :mod:`ponder.hardware` chooses the backend (from
:mod:`ponder.backends`' table), and :mod:`ponder.installer` names the environment, runs
the safe command, checks the new build in a fresh process and rolls back on failure.
The front end only asks the user and prints.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ponder import backends, hardware, installer
from ponder.errors import PonderError, UsageError
from ponder.session.core import Session

__all__ = ["BackendPlan", "MachineProfile", "apply", "blocked", "plan", "with_devices"]

MachineProfile = hardware.HardwareProfile  # for front ends' annotations


@dataclass(frozen=True, slots=True)
class BackendPlan:
    """What ``ponder setup`` would do about the llama.cpp build, before doing it."""

    choice: hardware.BackendChoice
    install: installer.InstallPlan | None  # None: nothing to install, or no wheel fits
    source_build: str  # the by-hand fallback: a source build with the right CMAKE_ARGS

    @property
    def label(self) -> str:
        return self.choice.backend.label


def plan(
    session: Session, requested: str = "auto", *, wheels: str | None = None, reinstall: bool = False
) -> BackendPlan:
    """The backend for this machine (or ``requested``), and the install it needs, if any."""
    if requested not in hardware.BACKEND_CHOICES:
        raise UsageError(
            f"unknown backend {requested!r}",
            hint=f"use one of {', '.join(hardware.BACKEND_CHOICES)}",
        )
    hw = session.machine(os_gpus=True)
    if hw.rosetta:
        raise PonderError(
            "Python runs under Rosetta 2: no llama.cpp build can use the GPU from it",
            hint="install an arm64 Python, recreate the environment, then run ponder setup",
        )
    choice = hardware.choose_backend(hw, requested)
    source = backends.source_build(choice.backend.cmake_flag, hw.system)
    if choice.current and not reinstall:
        return BackendPlan(choice, None, source)
    variant = choice.variant
    if wheels is not None and variant is None:
        variant = choice.backend.variants[0]  # a local index or mirror: its own wheels
    if variant is None:
        return BackendPlan(choice, None, source)
    return BackendPlan(
        choice, installer.plan_install(choice.backend, variant, find_links=wheels), source
    )


def blocked(backend_plan: BackendPlan) -> str | None:
    """Why the install cannot run in this environment (None: it can)."""
    return installer.unavailable(backend_plan.install.environment) if backend_plan.install else None


def apply(backend_plan: BackendPlan, log: installer.Log) -> installer.InstallResult:
    """Run the install, check the new build in a fresh process, roll back on failure."""
    assert backend_plan.install is not None
    return installer.install(backend_plan.install, log)


def with_devices(session: Session, check: installer.BuildCheck) -> hardware.HardwareProfile:
    """This machine as the newly installed build sees it (this process still has the old one)."""
    hw = session.machine()
    devices = tuple(
        hardware.BackendDevice(
            name=str(d["name"]),
            description=str(d["description"]),
            kind=str(d["kind"]),
            free_bytes=int(d["free_bytes"]),
            total_bytes=int(d["total_bytes"]),
        )
        for d in check.devices
    )
    return dataclasses.replace(hw, devices=devices, devices_error=None)
