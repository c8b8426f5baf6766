"""One static HTML page for a run folder: `playworld report RUN_DIR` -> RUN_DIR/report.html.

The page is built from what the folder holds, whoever wrote it, so it works for `make demo`'s
folder and for any run a user puts together:

    demo.json        a pipeline run (`python -m playworld.pipeline.demo`): wall time per stage
    *.zarr/          play stores: episodes, steps, sources, loop rate and jitter per episode,
                     task segments played and succeeded (autoplay's labels)
    **/score.json    world-model scores (`playworld score`): error against the horizon
    **/eval.json     policy evaluations (`playworld eval`): per-task success with Wilson
                     intervals, CALVIN-style chains
    **/deploy.json   deployments: success, latency per tick, twin-robot divergence
    **/*.png         figures written by those commands (shown in their section)
    **/*.mp4         videos; any that is not H.264 is re-encoded into report_assets/ so that
                     browsers play it

Everything the page shows is a relative link to a file in the folder (or in `report_assets/`),
so the folder opens offline and can be copied as a whole.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from playworld.errors import ConfigError

ASSETS = "report_assets"
_CSS = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .6em 0; } td, th { padding: .25em .7em; border: 1px solid #ddd; }
th { background: #f4f4f4; text-align: left; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; border: 1px solid #eee; } video { max-width: 100%; }
figure.video { display: inline-block; max-width: 48%; margin: .3em; vertical-align: top; }
.muted { color: #777; } figure { margin: .8em 0; } figcaption { color: #555; font-size: .9em; }
"""


def build_report(run_dir: str | Path, title: str | None = None) -> Path:
    """Write RUN_DIR/report.html from the folder's contents; returns its path."""
    run = Path(run_dir)
    if not run.is_dir():
        raise ConfigError(f"expected a run folder to report on, found no folder at {run}")
    assets = run / ASSETS
    sections = [
        _run_section(run),
        _stores_section(run, assets),
        _world_model_section(run),
        _eval_section(run, assets),
        _deploy_section(run, assets),
        _videos_section(run, assets),
    ]
    body = "\n".join(s for s in sections if s)
    if not body:
        body = (
            "<p class=muted>This folder holds no store, score, evaluation, deployment or video.</p>"
        )
    page = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{html.escape(title or run.name)}</title><style>{_CSS}</style></head><body>"
        f"<h1>playworld report: {html.escape(title or run.name)}</h1>{body}</body></html>"
    )
    out = run / "report.html"
    tmp = out.with_suffix(".html.tmp")
    tmp.write_text(page)
    tmp.replace(out)
    return out


def links(page: str) -> list[str]:
    """Every relative file the page shows or links (`src='...'`, `href='...'`)."""
    return re.findall(r"(?:src|href)='([^']+)'", page)


def _rel(run: Path, path: Path) -> str:
    return html.escape(path.relative_to(run).as_posix(), quote=True)


def _files(run: Path, pattern: str) -> list[Path]:
    return sorted(p for p in run.rglob(pattern) if ASSETS not in p.relative_to(run).parts)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td class=num>{_fmt(c)}</td>"
            if isinstance(c, int | float)
            else f"<td>{html.escape(str(c))}</td>"
            for c in row
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(x: float) -> str:
    return f"{x:d}" if isinstance(x, int) else f"{x:.3g}"


def _figure(run: Path, png: Path, caption: str = "") -> str:
    cap = f"<figcaption>{html.escape(caption or png.name)}</figcaption>"
    return f"<figure><img src='{_rel(run, png)}' alt='{html.escape(png.name)}'>{cap}</figure>"


def _run_section(run: Path) -> str:
    """Wall time per stage of a pipeline run (`demo.json`, written by `playworld.pipeline.demo`)."""
    path = run / "demo.json"
    if not path.is_file():
        return ""
    timings = json.loads(path.read_text()).get("timings_s") or {}
    rows = [[stage, float(s)] for stage, s in timings.items()]
    return "<h2>Pipeline run</h2><p>Wall time per stage (s):</p>" + _table(["stage", "s"], rows)


def _stores_section(run: Path, assets: Path) -> str:
    from playworld.datasets import PlayStore

    stores = [p for p in _files(run, "*.zarr") if p.is_dir() and (p / "zarr.json").is_file()]
    if not stores:
        return ""
    rows, loop_rows = [], []
    played: dict[Path, list[dict[str, Any]]] = {}
    for path in stores:
        store = PlayStore.open(path)
        try:
            metas = [store.episode(i).metadata for i in range(len(store))]
            played[path] = metas
            sources: dict[str, int] = {}
            for m in metas:
                sources[m.get("source", "?")] = sources.get(m.get("source", "?"), 0) + 1
            steps = store.num_steps
            rows.append(
                [
                    _rel(run, path),
                    len(store),
                    steps,
                    round(steps / store.fps, 1),
                    store.fps,
                    ", ".join(f"{k}: {v}" for k, v in sources.items()),
                ]
            )
            for i, m in enumerate(metas):
                loop = m.get("loop") or {}
                if "rate_ratio" in loop:
                    loop_rows.append(
                        [
                            _rel(run, path),
                            i,
                            "yes" if loop.get("realtime", True) else "no (as fast as possible)",
                            loop.get("ticks", 0),
                            loop.get("rate_ratio", float("nan")),
                            loop.get("jitter_p99_ms", float("nan")),
                            loop.get("overruns", 0),
                        ]
                    )
        finally:
            store.close()
    out = "<h2>Play stores</h2>" + _table(
        ["store", "episodes", "steps", "seconds", "Hz", "sources"], rows
    )
    if loop_rows:
        out += "<p>Control loop per episode:</p>" + _table(
            ["store", "episode", "paced", "ticks", "rate ratio", "jitter p99 (ms)", "overruns"],
            loop_rows[:40],
        )
    for path, metas in played.items():
        png = _tasks_chart(metas, assets, _name(run, path))
        if png is not None:
            out += _figure(run, png, f"{_rel(run, path)}: task segments played and succeeded")
    return out


def _tasks_chart(metas: list[dict[str, Any]], assets: Path, name: str) -> Path | None:
    """Bars of attempts and successes per task over a store's labelled segments (autoplay)."""
    tried: dict[str, int] = {}
    won: dict[str, int] = {}
    for m in metas:
        for seg in m.get("segments") or []:
            tried[seg["task"]] = tried.get(seg["task"], 0) + 1
            won[seg["task"]] = won.get(seg["task"], 0) + bool(seg["success"])
    if not tried:
        return None
    names = sorted(tried)
    fig, ax = _pyplot().subplots(figsize=(7, 0.25 * len(names) + 1.2))
    y = np.arange(len(names))
    ax.barh(y, [tried[n] for n in names], color="lightgray", label="attempts")
    ax.barh(y, [won[n] for n in names], color="tab:green", label="successes")
    ax.set_yticks(y, names, fontsize=7)
    ax.legend(fontsize=7)
    return _save_figure(fig, assets / f"tasks_{name}.png")


def _name(run: Path, path: Path) -> str:
    """A file-name-safe label of a path inside the run folder."""
    rel = path.relative_to(run).as_posix()
    return "run" if rel == "." else rel.replace("/", "_").replace(".", "_")


def _world_model_section(run: Path) -> str:
    scores = _files(run, "score.json")
    if not scores:
        return ""
    out = "<h2>World models</h2>"
    for path in scores:
        data = json.loads(path.read_text())
        flat = [(k, v) for k, v in _flatten(data) if isinstance(v, int | float)]
        out += f"<h3>{_rel(run, path.parent)}</h3>" + _table(["figure", "value"], flat[:60])
        out += _horizon_table(data)
        # the error-vs-horizon figure first, then the others (imagined vs true ...)
        for png in sorted(path.parent.rglob("*.png"), key=lambda p: (p.name != "score.png", p)):
            out += _figure(run, png)
    return out


def _horizon_table(score: dict[str, Any]) -> str:
    """Rows `metric group` x columns `h=...` for every {group: [one value per horizon]} of a
    score (`rmse`, `crps`, ...: see `world_models/score.py`)."""
    hs = score.get("horizons") or []
    rows = [
        [f"{metric} {group}", *values]
        for metric, groups in score.items()
        if isinstance(groups, dict)
        for group, values in groups.items()
        if isinstance(values, list) and len(values) == len(hs)
    ]
    if not hs or not rows:
        return ""
    return "<p>Error against the horizon (steps):</p>" + _table(
        ["metric", *(f"h={h}" for h in hs)], rows
    )


def _flatten(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(data, dict):
        return [kv for k, v in data.items() for kv in _flatten(v, f"{prefix}{k}.")]
    return [(prefix.rstrip("."), data)]


def _eval_section(run: Path, assets: Path) -> str:
    evals = _files(run, "eval.json")
    if not evals:
        return ""
    reports = {_rel(run, p.parent): json.loads(p.read_text()) for p in evals}
    out = "<h2>Policies in the twin</h2>"
    rows = []
    for name, r in reports.items():
        o = r["overall"]
        chains = r.get("chains") or {}
        rows.append(
            [
                name,
                str(r.get("policy", "")),
                o["success_rate"],
                f"[{o['ci95'][0]:.2f}, {o['ci95'][1]:.2f}]",
                o["episodes"],
                chains.get("avg_len", float("nan")),
            ]
        )
    out += _table(["run", "policy", "success", "95% Wilson CI", "episodes", "chain avg len"], rows)
    tasks = sorted({t for r in reports.values() for t in r.get("tasks", {})})
    per_task = []
    for t in tasks:
        row: list[Any] = [t]
        for r in reports.values():
            tr = r.get("tasks", {}).get(t)
            row.append(
                f"{tr['success_rate']:.0%} [{tr['ci95'][0]:.2f}, {tr['ci95'][1]:.2f}]"
                if tr
                else "-"
            )
        per_task.append(row)
    out += _table(["task", *reports], per_task)
    png = _success_chart(reports, assets)
    if png is not None:
        out += _figure(run, png, "success per task, 95% Wilson intervals")
    return out


def _pyplot() -> Any:
    """matplotlib's pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save_figure(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    _pyplot().close(fig)
    return path


def _success_chart(reports: dict[str, dict[str, Any]], assets: Path) -> Path | None:
    plt = _pyplot()
    tasks = sorted({t for r in reports.values() for t in r.get("tasks", {})})
    if not tasks:
        return None
    fig, ax = plt.subplots(figsize=(max(7.0, 0.5 * len(tasks) + 2), 4.5))
    width = 0.8 / len(reports)
    for i, (name, r) in enumerate(reports.items()):
        rate = np.array([r["tasks"].get(t, {}).get("success_rate", np.nan) for t in tasks])
        ci = np.array([r["tasks"].get(t, {}).get("ci95", [np.nan, np.nan]) for t in tasks])
        x = np.arange(len(tasks)) + (i - (len(reports) - 1) / 2) * width
        ax.bar(x, rate, width, yerr=[rate - ci[:, 0], ci[:, 1] - rate], capsize=2, label=name)
    ax.set_xticks(range(len(tasks)), tasks, rotation=60, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("success rate")
    ax.legend(fontsize=8)
    return _save_figure(fig, assets / "success_per_task.png")


def _deploy_section(run: Path, assets: Path) -> str:
    deploys = _files(run, "deploy.json")
    if not deploys:
        return ""
    out = "<h2>Deployment</h2>"
    for path in deploys:
        d = json.loads(path.read_text())
        flat = [(k, v) for k, v in _flatten(d) if isinstance(v, int | float | str)]
        out += f"<h3>{_rel(run, path.parent)}</h3>" + _table(["figure", "value"], flat[:40])
        latency = np.asarray(d.get("latency_ms") or [], float)
        if latency.size:
            name = _name(run, path.parent)
            png = _histogram(latency, assets, name)
            out += _figure(run, png, "observation -> command latency")
    return out


def _histogram(latency_ms: np.ndarray, assets: Path, name: str) -> Path:
    fig, ax = _pyplot().subplots(figsize=(6, 3.2))
    ax.hist(latency_ms, bins=40, color="#4C72B0")
    p50, p99 = np.percentile(latency_ms, [50, 99])
    ax.set_xlabel(f"latency (ms): p50 {p50:.1f}, p99 {p99:.1f}")
    ax.set_ylabel("ticks")
    return _save_figure(fig, assets / f"latency_{name}.png")


def _videos_section(run: Path, assets: Path) -> str:
    from playworld.video import is_h264, transcode_h264

    videos = _files(run, "*.mp4")
    if not videos:
        return ""
    out = "<h2>Videos</h2>"
    for path in videos[:12]:
        shown = path
        if not is_h264(path):
            shown = assets / "video" / path.relative_to(run)
            if not shown.exists() or shown.stat().st_mtime < path.stat().st_mtime:
                transcode_h264(path, shown)
        out += (
            f"<figure class=video><video controls muted preload=metadata "
            f"src='{_rel(run, shown)}' title='{_rel(run, path)}'></video>"
            f"<figcaption>{_rel(run, path)}</figcaption></figure>"
        )
    return out
