"""`playworld store info` as a person reads it: a header line and a table per feature."""

from __future__ import annotations

from typing import Any


def print_info(d: dict[str, Any]) -> None:
    """Print `maintenance.info(path)` as a header and a per-feature table."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    sources = ", ".join(f"{k}: {v}" for k, v in d["sources"].items()) or "-"
    console.print(
        f"[bold]{d['url']}[/bold]\n"
        f"{d['episodes']} episodes, {d['steps']} steps, {d['duration_s']:.1f} s at {d['fps']:g} Hz"
        f" (sources: {sources})\n"
        f"{human_bytes(d['size_bytes'])} in {d['files']} files, codecs: {', '.join(d['codecs'])}"
        + (
            f"\n[yellow]{d['uncommitted_rows']} uncommitted rows[/yellow]"
            if d["uncommitted_rows"]
            else ""
        ),
        highlight=False,
    )
    table = Table("feature", "kind", "shape", "dtype", "units", "codec", "stored", "ratio")
    for key, f in d["features"].items():
        ratio = f["compression_ratio"]
        table.add_row(
            key,
            f["kind"],
            "x".join(map(str, f["shape"])) or "()",
            f["dtype"],
            f["units"] or "-",
            f["codec"] + (f"-{f['level']}" if f["level"] is not None else ""),
            human_bytes(f["stored_bytes"]),
            f"{ratio:.1f}x" if ratio else "-",
        )
    console.print(table)


def human_bytes(n: int) -> str:
    """1536 -> '1.5 KB'."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""  # unreachable
