#!/usr/bin/env python3
"""Kaldi-compatible queue.pl: submits the jobs to GridEngine as one array job (qsub -t) and waits for them.

  queue.pl [options] [JOB=1:N] <log-file> <command> [<args>...]

The implementation shared by run.pl, queue.pl and slurm.pl is utils/job_runner.py (Python, not
Perl: one tested implementation behind the three runners; docs/runners.md describes the interface).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import job_runner  # noqa: E402  (found next to this script, also through a symlinked utils/)

job_runner.entry_point("queue.pl")
