"""Every live explorer, driven with the real ipywidgets: each control moved, each figure redrawn.

The contract (README, COURSE.md): an explorer is a public function named ``*_explorer`` in a
``gradflow`` module that calls ``gradflow.widgets.explore(draw_fn, **controls)``. This test finds
every such function in every ``gradflow`` module by itself (a new chapter's explorer is picked up
without an edit here), calls it with its defaults, and takes the ``ipywidgets.interactive`` it
built (``gradflow.widgets.last_explorer``). Then, control by control, it sets several values,
extremes included (a slider's min and max, a drop-down's first and last option, a checkbox both
ways, and values between: up to four per slider, eight options per drop-down), and asserts that
each move redraws without an error and shows a figure that differs, pixel for pixel, from the one
before. To keep the test fast, a slow explorer is moved less: every control always goes to its
farthest extreme, the rest while the explorer's CPU budget lasts.

Figures are caught where the explorer shows them (``plt.show``), rendered with Agg and closed.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import logging
import pkgutil
import time

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

import gradflow
from gradflow import widgets as gradflow_widgets

SLIDER_VALUES = 4  # per numeric control: min, max and two values between
OPTIONS_CAP = 8  # per drop-down: every option up to this many (first and last always)
# CPU seconds of views per explorer (estimated from its first view): every control is always moved
# to one extreme; the other extreme and the values between come while the budget lasts, so a slow
# explorer (a training run per view) is moved less.
CPU_BUDGET = 6.0


def _explorers() -> list[tuple[str, object]]:
    """(module.name, function) for every public ``*_explorer`` defined in a gradflow module."""
    found = {}
    for info in pkgutil.iter_modules(gradflow.__path__, prefix="gradflow."):
        if info.name.rsplit(".", 1)[-1].startswith("_"):
            continue
        module = importlib.import_module(info.name)
        for name, fn in vars(module).items():
            if (
                name.endswith("_explorer")
                and not name.startswith("_")
                and inspect.isfunction(fn)
                and fn.__module__ == module.__name__
            ):
                found[f"{module.__name__.removeprefix('gradflow.')}.{name}"] = fn
    return sorted(found.items())


EXPLORERS = _explorers()


def test_explorers_are_discovered():
    names = [name for name, _ in EXPLORERS]
    assert "widgets.gradient_flow_explorer" in names and "widgets.unit_slopes_explorer" in names, names


def _spread(low: float, high: float, n: int, log: bool = False) -> list[float]:
    return list(np.geomspace(low, high, n) if log else np.linspace(low, high, n))


def _values(control: widgets.Widget) -> list[tuple[str, object]]:
    """(how to set it, value) pairs that move ``control`` through its range, extremes included."""
    if isinstance(control, widgets.widget_selection._Selection):  # Dropdown, RadioButtons, ...
        n = len(control.options)
        picks = list(range(n)) if n <= OPTIONS_CAP else sorted({*range(OPTIONS_CAP - 1), n - 1})
        return [("index", i) for i in picks]
    if isinstance(control, widgets.widget_selection._MultipleSelection):
        return [("index", (i,)) for i in range(min(len(control.options), OPTIONS_CAP))]
    if isinstance(control, widgets.widget_bool._Bool):  # Checkbox, ToggleButton
        return [("value", not control.value), ("value", control.value)]
    if isinstance(control, widgets.FloatLogSlider):
        values = _spread(control.base**control.min, control.base**control.max, SLIDER_VALUES, log=True)
        return [("value", float(v)) for v in values]
    if isinstance(control, (widgets.IntRangeSlider, widgets.FloatRangeSlider)):
        lo, hi = control.min, control.max
        mid = lo + (hi - lo) / 2 if isinstance(control, widgets.FloatRangeSlider) else (lo + hi) // 2
        return [("value", (lo, mid)), ("value", (mid, hi)), ("value", (lo, hi))]
    if isinstance(control, (widgets.widget_int._BoundedInt, widgets.widget_float._BoundedFloat)):
        values = _spread(control.min, control.max, SLIDER_VALUES)
        if isinstance(control, widgets.widget_int._BoundedInt):
            return [("value", v) for v in dict.fromkeys(int(round(v)) for v in values)]
        return [("value", float(v)) for v in values]
    raise AssertionError(
        f"tests/test_explorers.py does not know how to move a {type(control).__name__}: add it to _values()"
    )


def _distance(control: widgets.Widget, how: str, value: object) -> float:
    """How far a value is from the control's current one (0 where that has no meaning)."""
    current = control.index if how == "index" else control.value
    if isinstance(value, (int, float)) and isinstance(current, (int, float)):
        return abs(float(value) - float(current))
    return 0.0


def _plan(controls: list[widgets.Widget], seconds_per_view: float) -> list[tuple[widgets.Widget, list]]:
    """The moves for each control, in its own order (min to max, first to last option).

    Every control is always moved to its extreme farthest from the current value. Then, while the
    explorer's views fit in CPU_BUDGET, each control's other extreme, then the values between,
    round-robin over the controls."""
    full = []
    for control in controls:
        current = {"index": getattr(control, "index", None), "value": control.value}
        full.append([(how, v) for how, v in _values(control) if v != current[how]])
    chosen: list[set[int]] = []
    for control, values in zip(controls, full):
        ends = sorted({0, len(values) - 1}, key=lambda i: -_distance(control, *values[i])) if values else []
        chosen.append(set(ends[:1]))
    spare = int(CPU_BUDGET / max(seconds_per_view, 1e-3)) - sum(map(len, chosen))
    ranks = [-1] + list(range(1, max(map(len, full), default=0)))  # -1: the other extreme
    for rank in ranks:
        for k, values in enumerate(full):
            i = len(values) - 1 if rank == -1 and 0 in chosen[k] else 0 if rank == -1 else rank
            if spare > 0 and 0 <= i < len(values) and i not in chosen[k]:
                chosen[k].add(i)
                spare -= 1
    return [(control, [full[k][i] for i in sorted(chosen[k])]) for k, control in enumerate(controls)]


@pytest.fixture
def shown(monkeypatch):
    """What the explorer shows: for each ``plt.show()`` the Agg pixels of every open figure, hashed
    (then the figures are closed); and what it displays (``IPython.display.display``)."""
    views: list[tuple[str, ...]] = []
    displayed: list[object] = []

    def show(*args, **kwargs):
        hashes = []
        for num in plt.get_fignums():
            canvas = FigureCanvasAgg(plt.figure(num))  # whatever the backend, render with Agg
            canvas.draw()
            hashes.append(hashlib.sha1(np.asarray(canvas.buffer_rgba()).tobytes()).hexdigest())
        views.append(tuple(hashes))
        plt.close("all")

    monkeypatch.setattr(plt, "show", show)
    monkeypatch.setattr("IPython.display.display", lambda *objs, **kw: displayed.extend(objs))
    plt.close("all")
    yield views, displayed
    plt.close("all")


@pytest.mark.parametrize("name,explorer", EXPLORERS, ids=[name for name, _ in EXPLORERS])
def test_explorer_redraws_for_every_control(name, explorer, shown, caplog):
    views, displayed = shown
    required = [
        p.name
        for p in inspect.signature(explorer).parameters.values()
        if p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    assert not required, f"{name} needs arguments {required}: an explorer must work when called with none"

    gradflow_widgets.last_explorer = None
    caplog.set_level(logging.WARNING)
    start = time.process_time()
    assert explorer() is None, f"{name} returns something: a notebook would display the explorer twice"
    seconds_per_view = time.process_time() - start
    ui = gradflow_widgets.last_explorer
    assert isinstance(ui, widgets.interactive), f"{name} did not call gradflow.widgets.explore"
    assert displayed == [ui], f"{name} should display its explorer once, displayed {displayed}"
    assert views and all(views), f"{name}: the first view shows no figure\n{caplog.text[-3000:]}"
    last = sum(views, ())

    controls = [c for c in ui.kwargs_widgets if not isinstance(c, widgets.fixed)]
    assert controls, f"{name} has no control to move"
    for control, moves in _plan(controls, seconds_per_view):
        label = f"{name}: {control._kwarg} ({type(control).__name__})"
        assert moves, f"{label}: no other value to move it to"
        for attribute, value in moves:
            before = len(views)
            caplog.clear()
            setattr(control, attribute, value)
            shown_value = control.value
            new = sum(views[before:], ())
            assert new, (
                f"{label} = {shown_value!r}: no redraw (did the draw function fail?)\n{caplog.text[-3000:]}"
            )
            assert new != last, f"{label} = {shown_value!r}: the figure did not change"
            last = new
