"""`mlform ci comment`: a saved plan as a pull-request comment and a job summary.

The logic of a review workflow lives here, so a CI file stays a few lines: it runs
`mlform plan --out plan.json`, this command, then posts the comment (finding the one
to update by its marker) and keeps plan.json for the apply on merge.
"""

from __future__ import annotations

from pathlib import Path

import click


@click.group("ci", help="Helpers for running mlform in CI (pull-request comments).")
def ci_group():
    pass


@ci_group.command("comment", help="Write a saved plan as a pull-request comment body (with a "
                                  "hidden marker to update it in place) and a job summary.")
@click.argument("plan_file", type=click.Path(dir_okay=False, path_type=Path),
                metavar="PLANFILE")
@click.option("--comment-file", type=click.Path(dir_okay=False, path_type=Path),
              metavar="FILE", help="Write the comment body here (default: standard output).")
@click.option("--summary-file", type=click.Path(dir_okay=False, path_type=Path),
              metavar="FILE", help="Append the job summary here, e.g. \"$GITHUB_STEP_SUMMARY\".")
@click.option("--id", "comment_id", metavar="NAME",
              help="The name in the comment's marker (default: the stack's name); one "
                   "comment per NAME on a pull request.")
def comment_cmd(plan_file, comment_file, summary_file, comment_id):
    from ..plan import planfile
    from ..views.pr_comment import marker, render_comment, render_summary

    doc = planfile.load(plan_file)
    digest = planfile.digest(doc)
    name = plan_file.name
    body = render_comment(doc, name, comment_id, digest)
    if comment_file:
        comment_file.write_text(body)
        click.echo(f"Wrote the comment for {marker(doc, comment_id)} to {comment_file}.",
                   err=True)
    else:
        click.echo(body, nl=False)
    if summary_file:
        with open(summary_file, "a") as f:
            f.write(render_summary(doc, name, digest))
