from pulse.local.child_process import die_with_parent, run_entry_point

die_with_parent()

from pulse.cli import main  # noqa: E402 (after the child has asked to die with its parent)

run_entry_point(main)
