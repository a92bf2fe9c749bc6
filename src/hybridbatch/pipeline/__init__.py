"""Running the grid: the plan of DVC stages, parallel worker copies, the study runner, the quick check, and
what each stage reads (code dependencies)."""
