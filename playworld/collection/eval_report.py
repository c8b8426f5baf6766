"""What `playworld eval` shows and writes: a table, `eval.json` and a bar chart `eval.png`.

report = run_eval_cli(functools.partial(make_policy, "scripted"), "scripted", out="out/eval")
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from playworld.collection.evaluation import PolicyFactory, evaluate, evaluate_chains


def plot_results(report: dict[str, Any], path: str | Path) -> None:
    """Bar chart (PNG) of success per task with the 95% Wilson interval as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["tasks"])
    rates = np.array([report["tasks"][n]["success_rate"] for n in names])
    ci = np.array([report["tasks"][n]["ci95"] for n in names])
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(names) + 2), 4.5))
    ax.bar(
        range(len(names)),
        rates,
        yerr=[rates - ci[:, 0], ci[:, 1] - rates],
        capsize=3,
        color="#4C72B0",
    )
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("success rate (95% Wilson CI)")
    ax.set_title(f"policy {report['policy']}: {report['overall']['success_rate']:.0%} overall")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def print_table(report: dict[str, Any]) -> None:
    """Print per-task success, interval and mean length as a table."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"playworld eval: policy {report['policy']}")
    for col in ("task", "success", "95% CI", "episodes", "mean length"):
        table.add_column(col, justify="left" if col == "task" else "right")
    for name, r in report["tasks"].items():
        lo, hi = r["ci95"]
        table.add_row(
            name,
            f"{r['success_rate']:.0%}",
            f"[{lo:.2f}, {hi:.2f}]",
            str(r["episodes"]),
            f"{r['mean_length']:.1f}",
        )
    o = report["overall"]
    table.add_row(
        "overall",
        f"{o['success_rate']:.0%}",
        f"[{o['ci95'][0]:.2f}, {o['ci95'][1]:.2f}]",
        str(o["episodes"]),
        "",
    )
    Console().print(table)
    if "chains" in report:
        c = report["chains"]
        steps = " ".join(f"{k}:{v:.0%}" for k, v in c["success_at"].items())
        Console().print(f"chains: success at {steps}; average length {c['avg_len']:.2f}")


def run_eval_cli(
    policy_factory: PolicyFactory,
    name: str,
    tasks: str = "all",
    episodes: int = 20,
    workers: int = 2,
    out: str | Path = "out/eval",
    seed: int = 0,
    chains: int = 0,
    max_steps: int = 100,
    videos: int = 0,
    profile: str = "sim_panda",
    goals: str = "task",
    view: Any = None,
    goal_cache: str | Path | None = None,
) -> int:
    """`playworld eval`: evaluate, print a table, write `eval.json` and `eval.png` into `out`.

    `name` labels the report (the policy's name or folder). Returns the exit code (0).
    `chains > 0` adds that many CALVIN chains of 5 tasks. `goal_cache`: see `evaluate`.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report = evaluate(
        policy_factory,
        tasks,
        episodes,
        seed=seed,
        workers=workers,
        max_steps=max_steps,
        profile=profile,
        video_dir=out / "videos" if videos > 0 else None,
        videos_per_task=videos,
        name=name,
        goals=goals,
        view=view,
        goal_cache=goal_cache,
    )
    if chains > 0:
        report["chains"] = evaluate_chains(
            policy_factory,
            chains,
            seed=seed,
            workers=workers,
            max_steps=max_steps,
            profile=profile,
            goals=goals,
            goal_cache=goal_cache,
        )
    tmp = out / "eval.json.tmp"
    tmp.write_text(json.dumps(report, indent=2))
    tmp.replace(out / "eval.json")
    plot_results(report, out / "eval.png")
    print_table(report)
    print(f"wrote {out / 'eval.json'} and {out / 'eval.png'}")
    return 0
