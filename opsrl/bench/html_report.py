"""The benchmark report as one self-contained HTML page: every image embedded as a base64 data URI.

The page needs nothing beside it (no scripts, no external styles or images), so it can be mailed,
attached to a CI run or opened from an artifact store as it is.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import pandas as pd

from opsrl.bench.summary import DECIMALS, HEADERS, fmt
from opsrl.core.files import atomic_write_text

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1200px;
       padding: 0 1rem; color: #222; }
h1 { font-size: 1.6rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
table { border-collapse: collapse; margin: .8rem 0; font-size: .9rem; }
th, td { border: 1px solid #ccc; padding: .25rem .55rem; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1rem 0; } figure img { max-width: 100%; border: 1px solid #eee; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 1rem; }
.grid figure { margin: 0; } figcaption { font-size: .85rem; color: #555; }
dl { font-size: .85rem; } dt { font-weight: 600; } dd { margin: 0 0 .3rem 1rem; word-break: break-all; }
.note { color: #555; font-size: .9rem; }
"""


def data_uri(png: Path) -> str:
    """A PNG file as a ``data:image/png;base64,...`` URI."""
    return "data:image/png;base64," + base64.b64encode(Path(png).read_bytes()).decode("ascii")


def html_table(df: pd.DataFrame, headers: dict[str, str] | None = None,
               decimals: dict[str, int] | None = None) -> str:
    """``df`` as an HTML table, numbers right-aligned and formatted as in the markdown tables."""
    headers, decimals = headers or {}, decimals or {}
    cols = list(df.columns)
    numeric = [pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]) for c in cols]
    head = "".join(f"<th>{html.escape(headers.get(c, c))}</th>" for c in cols)
    body = []
    for record in df.itertuples(index=False):
        cells = "".join(f'<td{" class=num" if n else ""}>{html.escape(fmt(v, decimals.get(c)))}</td>'
                        for c, v, n in zip(cols, record, numeric))
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _figure(png: Path, caption: str) -> str:
    alt = html.escape(caption, quote=True)
    return f'<figure><img src="{data_uri(png)}" alt="{alt}"><figcaption>{html.escape(caption)}</figcaption></figure>'


def _provenance(meta: dict[str, Any]) -> str:
    if not meta:
        return '<p class="note">(the file holds no provenance)</p>'
    items = []
    for key, value in meta.items():
        text = json.dumps(value, default=str) if isinstance(value, (dict, list)) else str(value)
        items.append(f"<dt>{html.escape(str(key))}</dt><dd>{html.escape(text)}</dd>")
    return f"<dl>{''.join(items)}</dl>"


def write_html(path: Path, *, title: str, summary: pd.DataFrame, notes: str, plots: list[tuple[Path, str]],
               drawings: list[tuple[Path, str]], curves: list[tuple[Path, str]],
               provenance: list[tuple[str, dict[str, Any]]], per_instance: pd.DataFrame) -> Path:
    """Write the report page to ``path`` (atomically) and return it."""
    shown = summary if summary["problem"].nunique() > 1 else summary.drop(columns="problem")
    parts = [f"<h1>{html.escape(title)}</h1>", "<h2>Summary per solver</h2>", html_table(shown, HEADERS, DECIMALS),
             f'<p class="note">{html.escape(notes.replace("*", ""))}</p>']
    parts += [f"<h2>{html.escape(caption)}</h2>{_figure(png, caption)}" for png, caption in plots]
    if drawings:
        parts += ["<h2>Solutions</h2>", '<div class="grid">',
                  *(_figure(png, caption) for png, caption in drawings), "</div>"]
    if curves:
        parts += ["<h2>Training curves and cost trajectories</h2>", *(_figure(png, c) for png, c in curves)]
    parts.append("<h2>Provenance</h2>")
    for name, meta in provenance:
        parts += ([f"<h3>{html.escape(name)}</h3>"] if len(provenance) > 1 else []) + [_provenance(meta)]
    parts += ["<h2>Per instance</h2>", html_table(per_instance, {"mean_objective": "mean objective",
                                                                 "basis": "gap to", "gap_mean_pct": "mean gap %",
                                                                 "wall_mean_s": "mean wall (s)"}, DECIMALS)]
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>'
            f"<body>\n" + "\n".join(parts) + "\n</body></html>\n")
    atomic_write_text(Path(path), page)
    return Path(path)
