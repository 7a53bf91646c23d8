"""``python -m embinit.study.report STUDY_DIR [--out DIR] [--reference ARM]``."""

import sys

from embinit.study.report.build import main

sys.exit(main())
