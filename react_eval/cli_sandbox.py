"""``react-eval sandbox``: build the sandbox image, and remove the containers and task images runs leave."""

from __future__ import annotations

from typing import Optional

import typer

from react_eval.cli_console import console, out, say

sandbox_app = typer.Typer(no_args_is_help=True, help="Manage sandboxes (Docker containers of react-eval runs).")


@sandbox_app.command("build-image")
def sandbox_build_image(
    force: bool = typer.Option(False, "--force", help="Rebuild the sandbox image even when it is up to date."),
    rebuild_base: bool = typer.Option(False, "--rebuild-base", help="Also redo the debootstrap of the Debian base."),
) -> None:
    """Build react-eval-sandbox:latest offline (debootstrap + docker import, then the packaged Dockerfile).
    IMAGE or REACT_EVAL_SANDBOX_IMAGE names another tag; BASE=<image> builds on a registry image instead."""
    from react_eval.sandboxes.image import ImageBuildRefused, build_image

    try:
        code = build_image(["--force"] * force + ["--rebuild-base"] * rebuild_base)
    except ImageBuildRefused as exc:
        say("error:", exc)
        raise typer.Exit(2) from None
    raise typer.Exit(code)


@sandbox_app.command("prune-images")
def sandbox_prune_images(
    dry_run: bool = typer.Option(False, "--dry-run", help="List the images; remove nothing."),
    docker_host: Optional[str] = typer.Option(None, "--docker-host", help="Engine URL (default: DOCKER_HOST or the local socket)."),
) -> None:
    """Remove the environment images built for Harbor tasks (label react-eval.kind=harbor-env); rebuilt on demand."""
    from react_eval.benchmarks.harbor_image import prune_images

    found = prune_images(docker_host, dry_run=dry_run)
    for image in found:
        state = "would remove" if dry_run else ("removed" if image.get("removed") else f"kept: {image.get('error')}")
        out.print(f"{image['id'][7:19]}  {', '.join(image['tags']) or '<untagged>'}  task={image['task']}  {state}",
                  highlight=False)
    console.print(f"{len(found)} Harbor task image(s)" + (" found" if dry_run else " processed"), highlight=False)
    if any(not dry_run and not image.get("removed") for image in found):
        raise typer.Exit(1)


@sandbox_app.command("prune")
def sandbox_prune(
    run_id: Optional[str] = typer.Option(None, "--run", help="Only containers of this run id (default: every run)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be removed; remove nothing."),
    docker_host: list[str] = typer.Option([], "--docker-host", help="Engine URL (default: DOCKER_HOST or the local "
                                           "socket); repeat it for each engine of a multi-host run."),
) -> None:
    """Remove containers left by react-eval runs (label react-eval.run), e.g. after a crash."""
    from react_eval.sandboxes.docker import prune_containers
    from react_eval.types import SandboxError

    try:
        found = prune_containers(run_id=run_id, dry_run=dry_run, hosts=docker_host)
    except SandboxError as exc:
        say("error:", exc)
        raise typer.Exit(1) from None
    verb = "would remove" if dry_run else "removed"
    for c in found:
        state = f"error: {c.error}" if c.error else (verb if dry_run or c.removed else "kept")
        where = f"  host={c.host}" if len(docker_host) > 1 else ""
        out.print(f"{c.id[:12]}  {c.name}  run={c.run_id}  rollout={c.rollout}{where}  ({c.status})  {state}",
                  highlight=False)
    failed = sum(1 for c in found if c.error)
    summary = "would be removed" if dry_run else "removed"
    console.print(f"{len(found) - failed} container(s) {summary}" + (f", {failed} failed" if failed else ""), highlight=False)
    if failed:
        raise typer.Exit(1)
