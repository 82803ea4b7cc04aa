"""Unit tests of tools/gpucheck/gpucheck.py's pure helpers, with the system python3 and no torch
(run by tests/test_bundle.c: python3 -m unittest discover -s tests/bundle)."""
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools",
                                "gpucheck"))
import gpucheck  # noqa: E402


class JsonLines(unittest.TestCase):
    def test_bad_lines_are_counted_not_raised(self):
        objs, bad = gpucheck.json_lines('noise\n{"a": 1}\n{"broken": \n[1]\n{"b": 2}\n')
        self.assertEqual(objs, [{"a": 1}, {"b": 2}])
        self.assertEqual(bad, 1)  # '[1]' does not start with '{': not a result line at all

    def test_last_json(self):
        self.assertEqual(gpucheck.last_json('{"a": 1}\nlog line\n{"a": 2}\n'), {"a": 2})
        self.assertIsNone(gpucheck.last_json("no json here\n"))


class Trace(unittest.TestCase):
    def write(self, text):
        f = tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False)
        f.write(text)
        f.close()
        self.addCleanup(os.remove, f.name)
        return f.name

    def test_sites_and_events(self):
        path = self.write('{"vramshim_trace":1}\n{"ev":"site","site":3,"frames":["libc10_cuda.so+0x1"]}\n'
                          '{"ev":"alloc","api":"cuMemAlloc_v2","site":3,"size":4096}\n')
        header, sites, events = gpucheck.load_trace(path)
        self.assertEqual(header["vramshim_trace"], 1)
        self.assertEqual(sites, {3: ["libc10_cuda.so+0x1"]})
        self.assertEqual(len(events), 1)

    def test_a_bad_line_names_file_and_line(self):
        path = self.write('{"vramshim_trace":1}\n{"ev":"alloc"\n')
        with self.assertRaisesRegex(ValueError, r":2: not JSON"):
            gpucheck.load_trace(path)

    def test_no_header(self):
        with self.assertRaisesRegex(ValueError, "no trace header"):
            gpucheck.load_trace(self.write('{"ev":"alloc"}\n'))


class Counters(unittest.TestCase):
    def test_untracked_counter_is_not_a_disagreement(self):
        # The cudaMallocAsync backend leaves allocation.all.allocated at 0.
        self.assertEqual(gpucheck.compare_counter(12, 0), "untracked")
        self.assertEqual(gpucheck.compare_counter(12, None), "untracked")

    def test_equal_and_differ(self):
        self.assertEqual(gpucheck.compare_counter(12, 12), "equal")
        self.assertEqual(gpucheck.compare_counter(0, 0), "equal")
        self.assertEqual(gpucheck.compare_counter(12, 11), "differ")


class ProgramOutput(unittest.TestCase):
    def test_output_and_exit_status_from_the_shell(self):
        os.environ.update(PROG='{"x": 1}', PROG_RC="0")
        self.assertEqual(gpucheck.program_output("PROG"), (0, {"x": 1}))
        os.environ.update(PROG="garbage", PROG_RC="124")
        self.assertEqual(gpucheck.program_output("PROG"), (124, {}))
        self.assertEqual(gpucheck.program_output("NEVER_SET"), (127, {}))

    def test_exit_problems(self):
        self.assertIsNone(gpucheck.exit_problem("p", 0, "log"))
        self.assertEqual(gpucheck.exit_problem("p", 127, "log"), "p missing from the bundle")
        self.assertIn("did not finish", gpucheck.exit_problem("p", 137, "log"))
        self.assertEqual(gpucheck.exit_problem("p", 1, "log"), "p exited 1 (see log)")


class Environment(unittest.TestCase):
    def test_inherited_allocator_settings_are_dropped(self):
        os.environ.update(PYTORCH_CUDA_ALLOC_CONF="expandable_segments:True",
                          PYTORCH_NO_CUDA_MEMORY_CACHING="1", VRAMSHIM_MODE="arena",
                          VRAMSHIM_LOG="info", LD_PRELOAD="/x.so")
        env = gpucheck.clean_env({"A": "1"})
        for k in ("PYTORCH_CUDA_ALLOC_CONF", "PYTORCH_NO_CUDA_MEMORY_CACHING", "VRAMSHIM_MODE",
                  "LD_PRELOAD"):
            self.assertNotIn(k, env)
        self.assertEqual((env["VRAMSHIM_LOG"], env["A"]), ("info", "1"))


class Bounds(unittest.TestCase):
    def test_timeouts_never_pass_the_deadline(self):
        os.environ["VS_CHECK_DEADLINE"] = str(time.time() + 10)
        self.assertLessEqual(gpucheck.bounded(600), 10)
        os.environ["VS_CHECK_DEADLINE"] = str(time.time() - 5)
        self.assertEqual(gpucheck.bounded(600), 1)

    def test_run_times_out_without_raising(self):
        os.environ["VS_CHECK_DEADLINE"] = str(time.time() + 60)
        with tempfile.TemporaryDirectory() as d:
            rc, _, err = gpucheck.run(["sleep", "30"], os.path.join(d, "log"), timeout=1)
            self.assertIsNone(rc)
            self.assertIn("killed after", err)
            rc, _, err = gpucheck.run(["/nonexistent/prog"], os.path.join(d, "log"))
            self.assertIsNone(rc)
            self.assertIn("cannot run", err)


class ResultFile(unittest.TestCase):
    def test_an_exception_still_writes_a_failing_result(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "r.json")
            with gpucheck.Result("x", path) as res:
                res.figures["done"] = 1
                res.ran = True
                raise KeyError("missing")
            with open(path) as f:
                r = json.load(f)
            self.assertEqual(r["status"], "fail")
            self.assertEqual(r["figures"], {"done": 1})
            self.assertIn("raised KeyError", r["detail"])

    def test_sigterm_still_writes_the_result(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "r.json")
            code = ("import os, signal, sys, time; sys.path.insert(0, %r); import gpucheck\n"
                    "with gpucheck.Result('x', %r) as res:\n"
                    "    res.figures['step'] = 1\n"
                    "    os.kill(os.getpid(), signal.SIGTERM)\n"
                    "    time.sleep(30)\n") % (os.path.dirname(gpucheck.__file__), path)
            rc = subprocess.run([sys.executable, "-c", code], timeout=20).returncode
            self.assertEqual(rc, 143)
            with open(path) as f:
                self.assertEqual(json.load(f)["figures"], {"step": 1})

    def test_nothing_ran_is_a_skip_with_its_reason(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "r.json")
            with gpucheck.Result("x", path) as res:
                res.skipped.append("PyTorch: not importable")
            with open(path) as f:
                r = json.load(f)
            self.assertEqual((r["status"], r["detail"]), ("skip", "PyTorch: not importable"))


if __name__ == "__main__":
    unittest.main()
