"""Inline SVG charts for the report: bars with CI whiskers, ROC curves, line charts, heatmaps.

Each function takes a figure's ``data`` dict (shapes in :mod:`audit.results`) and returns
``markupsafe.Markup``. Every piece of text that comes from the data goes through
``markupsafe.escape``; attributes carry only numbers and fixed class names computed here, so a
label like ``"><script>`` stays text. Charts use a ``viewBox`` and scale to their container.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from markupsafe import Markup, escape

from audit.report.fmt import fmt_num
from audit.report.i18n import _

# Okabe-Ito palette: distinguishable with the common colour-vision deficiencies.
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]
MAX_POINTS = 300
MAX_BARS = 60
MAX_CELLS = 48
MAX_TIPS = 900
MAX_DESC = 4000  # characters of a chart's text description
MAX_DESC_POINTS = 30  # points per line series spelt out in the description


def short(text: str, limit: int) -> str:
    """Cut a chart label to ``limit`` characters with an ellipsis (the full text is in a title)."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _num(value: Any) -> float | None:
    """A finite float, or None for missing/invalid values."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def _nums(values: Any) -> list[float | None]:
    """A list of :func:`_num` values (empty when ``values`` is not a list)."""
    return [_num(v) for v in values] if isinstance(values, (list, tuple)) else []


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick positions covering ``[lo, hi]`` (1, 2, 5 times a power of ten)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks, i = [], 0
    while first + i * step <= hi + step * 1e-9:
        t = first + i * step
        ticks.append(0.0 if abs(t) < step * 1e-9 else float(f"{t:.12g}"))
        i += 1
    return ticks


def nice_domain(lo: float, hi: float, count: int = 5) -> tuple[float, float, list[float]]:
    """Widen ``[lo, hi]`` to the nearest round ticks; return the new bounds and the ticks."""
    ticks = nice_ticks(lo, hi, count)
    if len(ticks) < 2:
        return lo, hi, ticks
    step = ticks[1] - ticks[0]
    if ticks[0] > lo + 1e-12:
        ticks.insert(0, float(f"{ticks[0] - step:.12g}"))
    if ticks[-1] < hi - 1e-12:
        ticks.append(float(f"{ticks[-1] + step:.12g}"))
    return ticks[0], ticks[-1], ticks


def log_ticks(lo: float, hi: float) -> list[float]:
    """Ticks for a log axis spanning ``10**lo`` to ``10**hi``: 1-2-5 per decade when the span
    is at most two decades, powers of ten otherwise."""
    mults = (1, 2, 5) if hi - lo <= 2 else (1,)
    ticks = [m * 10.0 ** k for k in range(math.floor(lo), math.ceil(hi) + 1) for m in mults]
    return [t for t in ticks if lo - 1e-9 <= math.log10(t) <= hi + 1e-9]


def _text(x: float, y: float, content: Any, cls: str = "", anchor: str = "start",
          extra: str = "") -> str:
    """An SVG ``<text>`` element with escaped content."""
    c = f' class="{cls}"' if cls else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{c}{extra}>'
            f"{escape(str(content))}</text>")


def _svg(width: float, height: float, body: list[str], label: str, kind: str,
         desc: str = "") -> Markup:
    """Wrap chart parts in an ``<svg>`` with a viewBox, an accessible title (its name) and a
    ``<desc>`` giving the plotted numbers as text (its description, for screen readers)."""
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
            f'class="chart {kind}" role="img"><title>{escape(label)}</title>'
            + (f"<desc>{escape(short(desc, MAX_DESC))}</desc>" if desc else ""))
    return Markup(head + "".join(body) + "</svg>")


def _value_ci(v: float | None, lo: float | None, hi: float | None) -> str:
    """``v [lo, hi]`` (the interval only when both bounds are known)."""
    ci = f" [{fmt_num(lo)}, {fmt_num(hi)}]" if lo is not None and hi is not None else ""
    return f"{fmt_num(v)}{ci}"


def _axes_desc(xlabel: Any, ylabel: Any) -> str:
    """``y against x: `` when both axes are named, else nothing."""
    if not (xlabel and ylabel):
        return ""
    return _("{y} against {x}").format(y=short(str(ylabel), 60), x=short(str(xlabel), 60)) + ": "


def _extent(values: Sequence[float | None], extra: Sequence[float] = ()) -> tuple[float, float]:
    """Min and max of the finite values (and ``extra``), widened when they coincide."""
    finite = [v for v in values if v is not None] + list(extra)
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
    if hi - lo < 1e-12:
        pad = abs(hi) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    return lo, hi


def bars_svg(data: dict[str, Any], title: str = "") -> Markup:
    """Horizontal bars, one per label, with CI whiskers and an optional reference line.

    The categories (``labels``, named by ``xlabel``) run down the left so long group names stay
    readable; the values (named by ``ylabel``) run along the horizontal axis."""
    labels = [str(x) for x in data.get("labels", [])][:MAX_BARS]
    values = _nums(data.get("values"))[: len(labels)]
    lows = (_nums(data.get("ci_low")) or [None] * len(labels))[: len(labels)]
    highs = (_nums(data.get("ci_high")) or [None] * len(labels))[: len(labels)]
    ref = _num(data.get("reference"))
    lo, hi, ticks = nice_domain(*_extent(values + lows + highs,
                                         [0.0] + ([ref] if ref is not None else [])))
    left, right, row, top = 144.0, 388.0, 24.0, 26.0
    height = top + row * len(labels) + 40
    sx = lambda v: left + (v - lo) / (hi - lo) * (right - left)  # noqa: E731
    # xlabel names the categories (drawn as rows here), ylabel the value axis (drawn along x).
    body = _axis_x(ticks, sx, top - 6, top + row * len(labels), data.get("ylabel"))
    for i, label in enumerate(labels):
        body += _bar_row(i, label, values[i] if i < len(values) else None,
                         lows[i] if i < len(lows) else None,
                         highs[i] if i < len(highs) else None, sx, top + i * row, row)
    if ref is not None:
        body.append(f'<line x1="{sx(ref):.1f}" x2="{sx(ref):.1f}" y1="{top - 6:.1f}" '
                    f'y2="{top + row * len(labels):.1f}" class="ref"/>')
        body.append(_text(sx(ref), top - 10, _("reference {value}").format(value=fmt_num(ref)),
                          "small", "middle"))
    if data.get("xlabel"):
        body.append(_text(4, 14, short(str(data["xlabel"]), 30), "axis-label"))
    desc = _axes_desc(data.get("xlabel"), data.get("ylabel")) + "; ".join(
        f"{label}: {_value_ci(values[i] if i < len(values) else None, lows[i] if i < len(lows) else None, highs[i] if i < len(highs) else None)}"  # noqa: E501
        for i, label in enumerate(labels))
    if ref is not None:
        desc += "; " + _("reference {value}").format(value=fmt_num(ref))
    return _svg(460, height, body, title or "bar chart", "bars", desc)


def _bar_row(i: int, label: str, v: float | None, lo: float | None, hi: float | None,
             sx: Any, y: float, row: float) -> list[str]:
    """One bar: label, bar from zero, whisker and the value printed at the right."""
    parts = [f"<g><title>{escape(label)}: {escape(fmt_num(v))}"
             + (f" [{escape(fmt_num(lo))}, {escape(fmt_num(hi))}]" if lo is not None else "")
             + "</title>"]
    parts.append(_text(138, y + row / 2 + 4, short(label, 20), "lbl", "end"))
    if v is not None:
        x0, x1 = sorted((sx(0.0), sx(v)))
        parts.append(f'<rect x="{x0:.1f}" y="{y + 4:.1f}" width="{max(x1 - x0, 1):.1f}" '
                     f'height="{row - 8:.1f}" fill="{PALETTE[0] if v >= 0 else PALETTE[1]}"/>')
    if lo is not None and hi is not None:
        ym = y + row / 2
        parts.append(f'<path d="M{sx(lo):.1f} {ym:.1f}H{sx(hi):.1f}M{sx(lo):.1f} {ym - 6:.1f}'
                     f'V{ym + 6:.1f}M{sx(hi):.1f} {ym - 6:.1f}V{ym + 6:.1f}" class="whisker"/>')
    parts.append(_text(394, y + row / 2 + 4, fmt_num(v), "val"))
    return parts + ["</g>"]


def _axis_x(ticks: list[float], sx: Any, y0: float, y1: float, label: Any) -> list[str]:
    """Vertical grid lines with tick labels below the plot, and the axis label."""
    parts = []
    for t in ticks:
        parts.append(f'<line x1="{sx(t):.1f}" x2="{sx(t):.1f}" y1="{y0:.1f}" y2="{y1:.1f}" '
                     f'class="{"zero" if t == 0 else "grid"}"/>')
        parts.append(_text(sx(t), y1 + 14, fmt_num(t), "tick", "middle"))
    if label:
        mid = (sx(ticks[0]) + sx(ticks[-1])) / 2 if ticks else 300
        parts.append(_text(mid, y1 + 30, short(str(label), 60), "axis-label", "middle"))
    return parts


def _downsample(xs: list[float | None], ys: list[float | None]) -> list[tuple[float, float]]:
    """Finite (x, y) pairs, thinned evenly to at most MAX_POINTS (first and last kept)."""
    pts = [(x, y) for x, y in zip(xs, ys) if x is not None and y is not None]
    if len(pts) <= MAX_POINTS:
        return pts
    step = (len(pts) - 1) / (MAX_POINTS - 1)
    return [pts[round(i * step)] for i in range(MAX_POINTS)]


def _frame(x0: float, y0: float, w: float, h: float, xt: list[float], yt: list[float],
           sx: Any, sy: Any, xlabel: Any, ylabel: Any) -> list[str]:
    """Plot frame with grid, tick labels and axis labels."""
    parts = [f'<rect x="{x0}" y="{y0}" width="{w}" height="{h}" class="frame"/>']
    for t in xt:
        parts.append(f'<line x1="{sx(t):.1f}" x2="{sx(t):.1f}" y1="{y0}" y2="{y0 + h}" class="grid"/>')
        parts.append(_text(sx(t), y0 + h + 14, fmt_num(t), "tick", "middle"))
    for t in yt:
        parts.append(f'<line x1="{x0}" x2="{x0 + w}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" class="grid"/>')
        parts.append(_text(x0 - 5, sy(t) + 4, fmt_num(t), "tick", "end"))
    if xlabel:
        parts.append(_text(x0 + w / 2, y0 + h + 32, short(str(xlabel), 60), "axis-label", "middle"))
    if ylabel:
        parts.append(_text(12, y0 + h / 2, short(str(ylabel), 40), "axis-label", "middle",
                           f' transform="rotate(-90 12 {y0 + h / 2:.1f})"'))
    return parts


def _legend(names: list[str], x: float, y: float) -> list[str]:
    """Colour swatches with series names (escaped), stacked downwards on a light backing."""
    if not names:
        return []
    width = 24 + 6.0 * max(len(short(n, 40)) for n in names)
    parts = [f'<rect x="{x - 4:.1f}" y="{y - 15:.1f}" width="{width:.1f}" '
             f'height="{16 * len(names) + 4}" fill="#ffffff" fill-opacity="0.85"/>']
    for i, name in enumerate(names):
        yy = y + i * 16
        parts.append(f'<rect x="{x}" y="{yy - 9:.1f}" width="12" height="4" '
                     f'fill="{PALETTE[i % len(PALETTE)]}"/>')
        parts.append(_text(x + 16, yy - 4, short(name, 40), "small"))
    return parts


def roc_svg(data: dict[str, Any], title: str = "") -> Markup:
    """ROC curves twice: linear axes with AUC in the legend, and log-log axes that show the
    low-FPR regime membership-inference audits care about (Carlini et al. 2022)."""
    curves = [c for c in data.get("curves", []) if isinstance(c, dict)][:8]
    series = [(_downsample(_nums(c.get("fpr")), _nums(c.get("tpr"))),
               f"{c.get('name', f'curve {i + 1}')} (AUC {fmt_num(_num(c.get('auc')))})")
              for i, c in enumerate(curves)]
    return Markup(_roc_panel(series, title, log=False) + _roc_panel(series, title, log=True))


def _roc_panel(series: list[tuple[list[tuple[float, float]], str]], title: str,
               log: bool) -> Markup:
    """One ROC panel; on log axes the range starts a decade below the smallest positive FPR."""
    x0, y0, w, h = 52.0, 12.0, 300.0, 300.0
    positive = [x for pts, _ in series for x, _ in pts if x > 0]
    lo = math.floor(math.log10(min(positive))) if log and positive else -3
    lo = max(lo, -6)
    tx = (lambda v: (math.log10(v) - lo) / -lo) if log else (lambda v: v)  # noqa: E731
    sx = lambda v: x0 + tx(v) * w  # noqa: E731
    sy = lambda v: y0 + h - tx(v) * h  # noqa: E731
    ticks = [10.0 ** k for k in range(lo, 1)] if log else [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    body = _frame(x0, y0, w, h, ticks, ticks, sx, sy,
                  "false positive rate" + (" (log)" if log else ""),
                  "true positive rate" + (" (log)" if log else ""))
    body.append(f'<line x1="{sx(ticks[0])}" y1="{sy(ticks[0])}" x2="{sx(1)}" y2="{sy(1)}" class="ref"/>')
    for i, (pts, _) in enumerate(series):
        keep = [(min(max(x, 0), 1), min(max(y, 0), 1)) for x, y in pts]
        if log:
            keep = [(x, y) for x, y in keep if x >= 10.0 ** lo and y >= 10.0 ** lo]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in keep)
        body.append(f'<polyline points="{path}" fill="none" stroke="{PALETTE[i % len(PALETTE)]}" '
                    f'class="series"/>')
    names = [name for _, name in series]
    body += _legend(names, x0 + w * 0.38, y0 + h - 12 - 16 * (len(names) - 1)) if not log \
        else _legend(names, x0 + 8, y0 + 18)
    label = f"{title or 'ROC curve'}{' (log-log)' if log else ''}"
    return _svg(370, 350, body, label, "roc", "; ".join(names))


def line_svg(data: dict[str, Any], title: str = "") -> Markup:
    """Line chart of one or more series over ``x`` (log x axis when ``log_x``)."""
    log_x = bool(data.get("log_x"))
    xs = [x if (x is not None and (not log_x or x > 0)) else None for x in _nums(data.get("x"))]
    series = [s for s in data.get("series", []) if isinstance(s, dict)][:8]
    tx = (lambda v: math.log10(v)) if log_x else (lambda v: v)  # noqa: E731
    xlo, xhi = _extent([tx(x) for x in xs if x is not None])
    ylo, yhi, yticks = nice_domain(*_extent([y for s in series for y in _nums(s.get("y"))]))
    x0, y0, w, h = 58.0, 12.0, 390.0, 220.0
    sx = lambda v: x0 + (tx(v) - xlo) / (xhi - xlo) * w  # noqa: E731
    sy = lambda v: y0 + h - (v - ylo) / (yhi - ylo) * h  # noqa: E731
    xt = log_ticks(xlo, xhi) if log_x else nice_ticks(xlo, xhi)
    body = _frame(x0, y0, w, h, xt or [10 ** xlo], yticks, sx, sy,
                  data.get("xlabel"), data.get("ylabel"))
    for i, s in enumerate(series):
        body += _series(_downsample(xs, _nums(s.get("y"))), sx, sy, PALETTE[i % len(PALETTE)])
    names = [str(s.get("name", f"series {i + 1}")) for i, s in enumerate(series)]
    body += _legend(names, x0 + 8, y0 + 18)
    return _svg(460, 280, body, title or "line chart", "line", _line_desc(data, xs, series, names))


def _line_desc(data: dict[str, Any], xs: list[float | None], series: list[dict[str, Any]],
               names: list[str]) -> str:
    """Each series' points as ``x → y`` pairs (the first MAX_DESC_POINTS), for screen readers."""
    out = []
    for s, name in zip(series, names):
        pts = [(x, y) for x, y in zip(xs, _nums(s.get("y"))) if x is not None and y is not None]
        text = ", ".join(f"{fmt_num(x)} \u2192 {fmt_num(y)}" for x, y in pts[:MAX_DESC_POINTS])
        more = len(pts) - MAX_DESC_POINTS
        out.append(f"{name}: {text}" + (f" (+{more})" if more > 0 else ""))
    return _axes_desc(data.get("xlabel"), data.get("ylabel")) + "; ".join(out)


def _series(pts: list[tuple[float, float]], sx: Any, sy: Any, colour: str) -> list[str]:
    """A polyline, plus point markers when there are few points."""
    path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
    parts = [f'<polyline points="{path}" fill="none" stroke="{colour}" class="series"/>']
    if len(pts) <= 30:
        parts += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{colour}"/>' for x, y in pts]
    return parts


def colour(value: float | None, vmin: float, vmax: float) -> str:
    """Sequential white-to-blue scale, or blue-white-red when the range spans zero."""
    if value is None:
        return "#dddddd"
    if vmin < 0 < vmax:
        t = max(-1.0, min(1.0, value / max(abs(vmin), abs(vmax))))
        end = (178, 24, 43) if t > 0 else (33, 102, 172)
        return _mix((255, 255, 255), end, abs(t))
    t = 0.0 if vmax == vmin else max(0.0, min(1.0, (value - vmin) / (vmax - vmin)))
    return _mix((247, 251, 255), (8, 48, 107), t)


def _mix(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> str:
    """Linear blend of two RGB colours as ``#rrggbb``."""
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(a, b))


def heatmap_svg(data: dict[str, Any], title: str = "") -> Markup:
    """A matrix of coloured cells with row and column labels (e.g. attention weights).

    Cells are square for wide matrices and widen (up to 64 units) when there are few columns."""
    rows = [str(r) for r in data.get("row_labels", [])][:MAX_CELLS]
    cols = [str(c) for c in data.get("col_labels", [])][:MAX_CELLS]
    grid = [_nums(r)[: len(cols)] for r in list(data.get("values", []))[: len(rows)]]
    flat = [v for r in grid for v in r if v is not None]
    vmin = _num(data.get("vmin")) if _num(data.get("vmin")) is not None else min(flat, default=0.0)
    vmax = _num(data.get("vmax")) if _num(data.get("vmax")) is not None else max(flat, default=1.0)
    cw = max(8.0, min(64.0, 440.0 / max(len(cols), 1)))
    ch = min(cw, 26.0)
    longest = max((len(short(c, 12)) for c in cols), default=1)
    x0, y0 = 96.0, 16.0 + longest * 5.6  # room for the column labels, rotated 60 degrees
    body = []
    for j, c in enumerate(cols):
        cx = x0 + j * cw + cw / 2 + 3
        body.append(_text(cx, y0 - 4, short(c, 12), "tick", "start",
                          f' transform="rotate(-60 {cx:.1f} {y0 - 4:.1f})"'))
    for i, r in enumerate(rows):
        body.append(_text(x0 - 4, y0 + i * ch + ch / 2 + 4, short(r, 12), "tick", "end"))
    geometry = (x0, y0, cw, ch)
    if len(rows) * len(cols) <= MAX_TIPS:
        body += _cells_with_tips(grid, rows, cols, geometry, vmin, vmax)
    else:  # large grids: one path per colour level, ~25 bytes a cell instead of ~150
        body += _cells_as_paths(grid, geometry, vmin, vmax)
    ybot = y0 + len(rows) * ch + 16
    body += _colour_key(x0, ybot, vmin, vmax)
    return _svg(max(560.0, x0 + len(cols) * cw + 10), ybot + 24, body, title or "heatmap",
                "heatmap", _heatmap_desc(grid, rows, cols))


def _heatmap_desc(grid: list[list[float | None]], rows: list[str], cols: list[str]) -> str:
    """Size, range and largest cell of a heatmap, for screen readers."""
    cells = [(v, i, j) for i, r in enumerate(grid) for j, v in enumerate(r) if v is not None]
    if not cells:
        return _("{rows} rows \u00d7 {cols} columns, no values").format(rows=len(rows),
                                                                       cols=len(cols))
    top, i, j = min(cells, key=lambda c: (-c[0], c[1], c[2]))  # the first largest cell
    return _("{rows} rows \u00d7 {cols} columns, values from {vmin} to {vmax}; largest at "
             "{row} \u2192 {col}").format(rows=len(rows), cols=len(cols),
                                          vmin=fmt_num(min(c[0] for c in cells)),
                                          vmax=fmt_num(top),
                                          row=rows[i], col=cols[j])


def _cells_with_tips(grid: list[list[float | None]], rows: list[str], cols: list[str],
                     geometry: tuple[float, float, float, float], vmin: float,
                     vmax: float) -> list[str]:
    """One rect per cell with a hover title giving row, column and value."""
    x0, y0, cw, ch = geometry
    out = []
    for i, r in enumerate(rows[: len(grid)]):
        for j, v in enumerate(grid[i]):
            tip = f"<title>{escape(r)} \u2192 {escape(cols[j])}: {escape(fmt_num(v))}</title>"
            out.append(f'<rect x="{x0 + j * cw:.1f}" y="{y0 + i * ch:.1f}" width="{cw:.1f}" '
                       f'height="{ch:.1f}" fill="{colour(v, vmin, vmax)}">{tip}</rect>')
    return out


def _cells_as_paths(grid: list[list[float | None]], geometry: tuple[float, float, float, float],
                    vmin: float, vmax: float, levels: int = 64) -> list[str]:
    """Cells grouped by colour (quantised to ``levels`` steps) into one ``<path>`` per colour."""
    x0, y0, cw, ch = geometry
    by_fill: dict[str, list[str]] = {}
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            q = None if v is None or vmax == vmin else \
                vmin + round((min(max(v, vmin), vmax) - vmin) / (vmax - vmin) * levels) \
                * (vmax - vmin) / levels
            by_fill.setdefault(colour(q if v is not None else None, vmin, vmax), []).append(
                f"M{x0 + j * cw:.1f} {y0 + i * ch:.1f}h{cw:.1f}v{ch:.1f}h-{cw:.1f}z")
    return [f'<path fill="{fill}" d="{"".join(parts)}"/>' for fill, parts in by_fill.items()]


def _colour_key(x: float, y: float, vmin: float, vmax: float) -> list[str]:
    """A small gradient key from vmin to vmax."""
    steps = 20
    parts = [f'<rect x="{x + i * 8:.1f}" y="{y:.1f}" width="8" height="8" '
             f'fill="{colour(vmin + (vmax - vmin) * i / (steps - 1), vmin, vmax)}"/>'
             for i in range(steps)]
    parts.append(_text(x - 4, y + 8, fmt_num(vmin), "tick", "end"))
    parts.append(_text(x + steps * 8 + 4, y + 8, fmt_num(vmax), "tick"))
    return parts
