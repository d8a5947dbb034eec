from pulse.local.child_process import die_with_parent

die_with_parent()

from pulse.cli import main  # noqa: E402 (after the child has asked to die with its parent)

main()
