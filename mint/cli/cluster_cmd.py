"""``mint cluster``: group the tasks of a profiles.json and write groups.json."""

from __future__ import annotations

from pathlib import Path

import click

from mint.clustering import METHODS, group, load_profiles
from mint.io import atomic_write_json, check_output


@click.command("cluster")
@click.argument("profiles", type=click.Path(path_type=Path))
@click.option("--method", default="mint", show_default=True, help=f"One of: {', '.join(METHODS)}.")
@click.option("--k", "k", default="auto", show_default=True,
              help="Number of groups, or 'auto' (mint: interaction types; others: best silhouette).")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="groups.json to write.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed for random/kmeans/spectral and the bootstrap.")
@click.option("--split-uniqueness", is_flag=True, help="mint: split uniqueness by dominant modality.")
@click.option("--like", type=click.Path(path_type=Path), help="random: copy the group sizes of this groups.json.")
@click.option("--bootstrap", default=200, show_default=True, type=int,
              help="Resamples for the stability report (0 to skip).")
@click.option("--force", is_flag=True, help="Overwrite an existing output.")
def command(profiles: Path, method: str, k: str, out: Path, seed: int, split_uniqueness: bool,
            like: Path | None, bootstrap: int, force: bool) -> None:
    """Group the tasks in PROFILES (a profiles.json) and write groups.json."""
    check_output(out, force)
    data = load_profiles(profiles)
    result = group(data, method=method, k=k, seed=seed, split_uniqueness=split_uniqueness,
                   like=like, bootstrap=bootstrap, source=str(profiles))
    result["params"]["profiles"] = str(profiles)
    if like is not None:
        result["params"]["like"] = str(like)
    atomic_write_json(out, result)
    sizes = ", ".join(f"{g}: {len(ts)}" for g, ts in result["groups"].items())
    stab = result["stability"]
    tail = f"; same partition in {stab['same_partition']:.0%} of {stab['resamples']} resamples" if stab else ""
    click.echo(f"wrote {out}: {method}, {len(result['groups'])} groups ({sizes}){tail}")
