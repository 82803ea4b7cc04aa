#!/usr/bin/env python3
"""Checks that the transcripts in README.md and docs/*.md show what the commands really print.

A transcript is a fenced block (```) with lines starting with "$ ": each such command (joined
with its "\\"-continued lines) runs in bash, and its output (stdout and stderr) must equal the
lines that follow it in the block, up to the next "$ " line or the end of the block. Commands
run in one scratch directory per file, in order (a transcript may use a file an earlier one
wrote), on the simulated driver (LD_LIBRARY_PATH=BUILD/sim), with `vramshim` and
`build/vramshim` meaning BUILD/vramshim and the repository's policy/, tests/ and tools/
reachable by their relative paths. A line "..." in a transcript stands for any lines.

Usage: tools/docs_walk.py [--build DIR] [FILE.md ...]   (default: README.md docs/*.md)
Exit status 0 when every transcript matches, 1 when one differs (each difference is printed as
a unified diff naming the file and line), 2 bad usage.
The rest of the walk (commands without a transcript, prose claims) is a checklist:
docs/docs-walk.md.
"""
import difflib
import glob
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def transcripts(path):
    """(line number, command, expected output lines) for every "$ " command of the file."""
    out, block, fenced = [], None, False
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            fenced = not fenced
            block = None
        elif fenced and line.startswith("$ "):
            start, cmd = i + 1, line[2:]
            while cmd.endswith("\\") and i + 1 < len(lines):
                i += 1
                cmd = cmd[:-1] + " " + lines[i].strip()
            block = (start, cmd, [])
            out.append(block)
        elif fenced and block is not None:
            block[2].append(line)
        i += 1
    return out


def matches(expected, got):
    """Line by line, trailing spaces aside; "..." matches any run of lines (possibly none)."""
    if not expected:
        return not got
    if expected[0] == "...":
        return any(matches(expected[1:], got[k:]) for k in range(len(got) + 1))
    return bool(got) and expected[0].rstrip() == got[0].rstrip() and matches(expected[1:], got[1:])


def walk(path, build):
    scratch = tempfile.mkdtemp(prefix="vs_docs_walk_")
    for name in ("policy", "tests", "tools"):
        os.symlink(os.path.join(ROOT, name), os.path.join(scratch, name))
    os.makedirs(os.path.join(scratch, "bin"))
    os.symlink(build, os.path.join(scratch, "build"))
    os.symlink(os.path.join(build, "vramshim"), os.path.join(scratch, "bin", "vramshim"))
    env = dict(os.environ, PATH=os.path.join(scratch, "bin") + ":" + os.environ["PATH"],
               LD_LIBRARY_PATH=os.path.join(build, "sim"))
    failures = 0
    for line, cmd, expected in transcripts(path):
        run = subprocess.run(["bash", "-c", cmd], cwd=scratch, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
        got = run.stdout.rstrip("\n").split("\n") if run.stdout else []
        while expected and not expected[-1].strip():
            expected = expected[:-1]
        if not matches(expected, got):
            failures += 1
            rel = os.path.relpath(path, ROOT)
            sys.stdout.write("%s:%d: $ %s\n" % (rel, line, cmd))
            sys.stdout.writelines(difflib.unified_diff(
                [e + "\n" for e in expected], [g + "\n" for g in got],
                "%s (documented)" % rel, "actual output (exit %d)" % run.returncode))
    subprocess.run(["rm", "-rf", scratch])
    return failures


def main(argv):
    build = os.path.join(ROOT, "build")
    files = []
    args = iter(argv)
    for a in args:
        if a in ("-h", "--help"):
            print(__doc__.strip())
            return 0
        if a == "--build":
            build = next(args, None)
            if not build:
                sys.stderr.write("docs_walk: --build needs a directory\n")
                return 2
            build = os.path.abspath(build)
        else:
            files.append(a)
    if not os.access(os.path.join(build, "vramshim"), os.X_OK):
        sys.stderr.write("docs_walk: %s/vramshim is not built (make -j2 all)\n" % build)
        return 2
    files = files or [os.path.join(ROOT, "README.md")] + sorted(
        glob.glob(os.path.join(ROOT, "docs", "*.md")))
    checked = sum(len(transcripts(f)) for f in files)
    failures = sum(walk(f, build) for f in files)
    print("docs_walk: %d transcripts in %d files, %d differ" % (checked, len(files), failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
