"""`t3d batch`: one `t3d generate` per line of a prompt file, on a local process pool or on Ray.

Modules, one job each: `prompts` (read the prompt file), `options` (generate's options: check,
merge, canonical form), `naming` (run folders and the job list), `state` (what a run folder holds),
`runner` (one prompt's subprocesses, retries, evaluation: the task both executors run),
`local` and `ray_exec` (the executors), `manifest` (batch.jsonl), `report` (progress, summary,
tables), `command` (the typer command).
"""
